//! Points where the test suite can freeze a writer, compiled to nothing but a branch on a
//! constant in builds without the `test-hooks` feature (every build users run).

/// Stops this process (SIGSTOP, as a debugger or an overloaded host would) when
/// `DR_TEST_STOP_AT` names `point`; it goes on when someone sends SIGCONT. Tests use it to
/// pause a writer at an exact step and see what others do meanwhile.
pub(crate) fn stop_point(point: &str) {
    if cfg!(feature = "test-hooks") && std::env::var("DR_TEST_STOP_AT").as_deref() == Ok(point) {
        stop_this_process();
    }
}

/// SIGSTOP raised by the calling thread at itself. Sent to the process as a whole (`kill
/// -STOP <pid>`), the signal is taken by whichever thread the kernel wakes first, and the
/// others stop only once that one has run: on a loaded host the caller went on meanwhile
/// and deleted what the test expected to find at the stop. Raised at the calling thread,
/// it is handled before the call returns.
#[cfg(feature = "test-hooks")]
fn stop_this_process() {
    // SAFETY: raise(3) has no preconditions; SIGSTOP cannot be caught, so no handler runs.
    unsafe {
        libc::raise(libc::SIGSTOP);
    }
}

#[cfg(not(feature = "test-hooks"))]
fn stop_this_process() {}
