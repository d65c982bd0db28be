//! The one clock everything reads. Tests move it with `DR_TEST_NOW` (RFC 3339), honoured only
//! when `DR_TEST_CLOCK=1` is also set, so a stray variable can never skew a real vault.

/// The current time (UTC).
pub fn now() -> time::OffsetDateTime {
    if std::env::var("DR_TEST_CLOCK").as_deref() == Ok("1") {
        if let Ok(text) = std::env::var("DR_TEST_NOW") {
            if let Ok(t) =
                time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            {
                return t;
            }
        }
    }
    time::OffsetDateTime::now_utc()
}
