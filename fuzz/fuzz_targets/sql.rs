//! SQL front end: any bytes, as SQL text, parsed and planned through a connection.
#![no_main]

libfuzzer_sys::fuzz_target!(
    // PhantomDB catches panics of redb and decoders itself (they become XX001 errors), but
    // libfuzzer-sys's panic hook aborts on any panic, caught or not. A quiet hook lets the
    // caught ones be; a panic escaping the harness still aborts the run (libfuzzer-sys checks).
    init: std::panic::set_hook(Box::new(|_| {})),
    |data: &[u8]| {
        phantomdb_fuzz::harness::sql(data);
    }
);
