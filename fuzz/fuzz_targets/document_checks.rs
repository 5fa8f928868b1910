#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dbx_fuzz::document_checks(data));
