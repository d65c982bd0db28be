//! The one clock everything reads, and the one way times are written.
//!
//! Tests move the clock with `DR_TEST_NOW` (RFC 3339), honoured only in builds with the
//! `test-hooks` feature (the test suite's) and only when `DR_TEST_CLOCK=1` is also set: a
//! release build, and the provider users install, never read either, so no variable in
//! anyone's environment can skew a real vault's retention or drills.
//!
//! Times in the API are `OffsetDateTime`. On disk (manifests, summaries, config, key files)
//! they stay the text written when the object was made, since a MAC covers those bytes; they
//! are parsed once, where they are read ([`parse`]), and written in one spelling
//! ([`rfc3339_nanos`]).

use time::OffsetDateTime;

/// The current time (UTC).
pub fn now() -> OffsetDateTime {
    if cfg!(feature = "test-hooks") && std::env::var("DR_TEST_CLOCK").as_deref() == Ok("1") {
        if let Ok(text) = std::env::var("DR_TEST_NOW") {
            if let Some(t) = parse(&text) {
                return t;
            }
        }
    }
    OffsetDateTime::now_utc()
}

/// RFC 3339 UTC with nanoseconds, always nine digits: snapshots taken in the same second must
/// still sort in the order they were taken ("latest" depends on it), as text too.
pub fn rfc3339_nanos(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

/// Any RFC 3339 time (every spelling this project has ever written is one).
pub fn parse(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// `#[serde(serialize_with = "clock::serialize_nanos")]`: a time in JSON output as
/// [`rfc3339_nanos`] spells it, the same text the vault records.
pub fn serialize_nanos<S: serde::Serializer>(
    t: &OffsetDateTime,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&rfc3339_nanos(*t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_with_nine_digits_and_read_back_exactly() {
        let t = parse("2026-12-02T10:11:12.5+01:00").unwrap();
        assert_eq!(rfc3339_nanos(t), "2026-12-02T09:11:12.500000000Z");
        assert_eq!(parse(&rfc3339_nanos(t)), Some(t));
        assert_eq!(parse("2026-12-02 10:11"), None);
    }
}
