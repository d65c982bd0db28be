//! The test switches exist only in builds with the `test-hooks` feature (issue 12, item 7).
//! This file is its own test process (so setting variables races with nothing) and is
//! compiled only without the feature, as every build users run is: there, `DR_TEST_CLOCK`,
//! `DR_TEST_NOW` and `DR_TEST_INSECURE_KDF` must change nothing.
#![cfg(not(feature = "test-hooks"))]

use dr_vault::KdfParams;

#[test]
fn without_the_feature_test_variables_move_no_clock_and_weaken_no_key() {
    // This test binary runs this one test: no other thread reads the environment.
    std::env::set_var("DR_TEST_CLOCK", "1");
    std::env::set_var("DR_TEST_NOW", "2001-02-03T04:05:06Z");
    std::env::set_var("DR_TEST_INSECURE_KDF", "1");
    let now = dr_vault::clock::now();
    assert!(now.year() >= 2026, "the clock read DR_TEST_NOW: {now}");
    assert_eq!(KdfParams::for_new_vault(), KdfParams::STRONG);
}
