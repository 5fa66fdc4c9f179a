#![no_main]
// PLACEHOLDER: to be replaced by the real target before anything is called done.
use libfuzzer_sys::fuzz_target;
fuzz_target!(|data: &[u8]| {
    let _ = data;
});
