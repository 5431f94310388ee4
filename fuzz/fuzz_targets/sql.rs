//! SQL front end: any bytes, as SQL text, parsed and planned through a connection.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    phantomdb_fuzz::harness::sql(data);
});
