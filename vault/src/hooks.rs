//! Points where the test suite can freeze a writer, compiled to nothing but a branch on a
//! constant in builds without the `test-hooks` feature (every build users run).

/// Stops this process (SIGSTOP, as a debugger or an overloaded host would) when
/// `DR_TEST_STOP_AT` names `point`; it goes on when someone sends SIGCONT. Tests use it to
/// pause a writer at an exact step and see what others do meanwhile.
pub(crate) fn stop_point(point: &str) {
    if cfg!(feature = "test-hooks") && std::env::var("DR_TEST_STOP_AT").as_deref() == Ok(point) {
        // `kill` rather than a new dependency for one signal in test builds.
        let _ = std::process::Command::new("kill")
            .args(["-STOP", &std::process::id().to_string()])
            .status();
    }
}
