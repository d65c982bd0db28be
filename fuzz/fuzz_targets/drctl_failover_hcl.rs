#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| (fuzz_targets::target("drctl_failover_hcl").unwrap().run)(data));
