#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dbx_fuzz::vector_filter_json(data));
