//! workload.toml: parsing arbitrary text never panics; whatever parses is valid (the
//! controllers built from it work).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_workload::{ControlSystem, Sample, Workload};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(w) = Workload::parse(text, "fuzz.toml") else {
        return;
    };
    let mut c = ControlSystem::new(&w);
    for i in 0..3 {
        let _ = c.feed(Sample {
            cpu_percent: i * 50,
            bandwidth: u64::MAX >> i,
            peers: i,
        });
    }
});
