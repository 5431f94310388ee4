//! Opening a database file: any bytes, as a database file, opened, read and checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    phantomdb_fuzz::harness::open_file(data);
});
