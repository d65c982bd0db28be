//! The one clock everything reads. Tests move it with `DR_TEST_NOW` (RFC 3339), honoured only
//! in builds with the `test-hooks` feature (the test suite's) and only when `DR_TEST_CLOCK=1`
//! is also set: a release build, and the provider users install, never read either, so no
//! variable in anyone's environment can skew a real vault's retention or drills.

/// The current time (UTC).
pub fn now() -> time::OffsetDateTime {
    if cfg!(feature = "test-hooks") && std::env::var("DR_TEST_CLOCK").as_deref() == Ok("1") {
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
