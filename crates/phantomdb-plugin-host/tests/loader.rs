//! Loads the real, separately built plugin libraries (`cdylib`s) and exercises the loader.
//!
//! The plugins are built by the test itself (`phantomdb_testkit::workspace_build`) into the
//! same target directory, so the tests work from a clean tree. Set `PHANTOMDB_PLUGIN_DIR` to
//! a directory holding prebuilt libraries to skip the build.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, StringArray};
use phantomdb_plugin_host::{
    inspect, load, CallError, FunctionKind, LoadError, LoadedPlugin, PluginState,
};

const HOST_VERSION: &str = "0.1.0";

fn lib_path(name: &str) -> PathBuf {
    phantomdb_testkit::plugin_library(name)
}

fn loaded(name: &str) -> LoadedPlugin {
    load(lib_path(name), HOST_VERSION).unwrap_or_else(|e| panic!("load {name}: {e}"))
}

/// Loads and initialises a plugin once per process (loading is idempotent per path).
fn initialized(name: &'static str) -> LoadedPlugin {
    static INIT: OnceLock<std::sync::Mutex<Vec<&'static str>>> = OnceLock::new();
    let plugin = loaded(name);
    let mut done = INIT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if !done.contains(&name) {
        plugin.initialize("").expect("initialize");
        done.push(name);
    }
    plugin
}

/// Copies a plugin library to a fresh temporary path (a separate load "generation").
fn copy_of(name: &str, dir: &tempfile::TempDir) -> PathBuf {
    let dst = dir.path().join(format!("copy_of_{name}.so"));
    std::fs::copy(lib_path(name), &dst).expect("copy plugin");
    dst
}

fn index_of(p: &LoadedPlugin, name: &str) -> usize {
    p.function(name)
        .unwrap_or_else(|| panic!("function {name} not declared"))
        .index
}

fn i64s(v: &[Option<i64>]) -> ArrayRef {
    Arc::new(Int64Array::from(v.to_vec()))
}

fn strs(v: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

fn scalar(p: &LoadedPlugin, name: &str, args: &[ArrayRef]) -> Result<ArrayRef, CallError> {
    let rows = args.first().map(|a| a.len()).unwrap_or(1);
    p.call_scalar(index_of(p, name), args, rows)
}

fn as_i64(a: &ArrayRef) -> Vec<Option<i64>> {
    a.as_primitive::<Int64Type>().iter().collect()
}

#[test]
fn inspect_reads_manifest_without_loading() {
    let m = inspect(lib_path("math_functions")).expect("inspect");
    assert_eq!(m.name, "math_functions");
    assert_eq!(m.version.to_string(), env!("CARGO_PKG_VERSION"));
    assert_eq!(m.plugin_type, phantomdb_plugin_host::PluginType::Functions);
    assert_eq!(
        m.abi_major,
        phantomdb_plugin_host::PHANTOMDB_PLUGIN_ABI_MAJOR
    );
    assert!(m.description.contains("gcd"));
    assert!(m.accepts_host(&semver::Version::new(0, 1, 5)));
    assert!(!m.accepts_host(&semver::Version::new(0, 2, 0)));
}

#[test]
fn math_scalar_functions() {
    let p = initialized("math_functions");
    assert_eq!(p.state(), PluginState::Initialized);
    // Read through `/2`. Its `cosine_similarity` takes lists, which have no `/1` type code, so
    // the plugin does not offer `/1` (a host before ABI 1.7 would miss that function).
    assert!(p.interface_names().contains(&"phantomdb.functions/2"));
    assert!(!p.has_interface("phantomdb.functions/1"));
    assert!(!p.has_interface("phantomdb.nonexistent/1"));
    let gcd = p.function("gcd").expect("gcd");
    assert_eq!(gcd.kind, FunctionKind::Scalar);
    assert_eq!(gcd.arg_types, vec![arrow_schema::DataType::Int64; 2]);
    assert_eq!(gcd.return_type, Some(arrow_schema::DataType::Int64));

    let r = scalar(
        &p,
        "gcd",
        &[
            i64s(&[Some(12), Some(0), None]),
            i64s(&[Some(18), Some(5), Some(3)]),
        ],
    )
    .expect("gcd");
    assert_eq!(as_i64(&r), vec![Some(6), Some(5), None]);

    let r = scalar(&p, "lcm", &[i64s(&[Some(4)]), i64s(&[Some(6)])]).expect("lcm");
    assert_eq!(as_i64(&r), vec![Some(12)]);
    let r = scalar(&p, "factorial", &[i64s(&[Some(5), Some(21)])]).expect("factorial");
    assert_eq!(as_i64(&r), vec![Some(120), None]);
    let r = scalar(&p, "fibonacci", &[i64s(&[Some(10)])]).expect("fibonacci");
    assert_eq!(as_i64(&r), vec![Some(55)]);
    let r = scalar(&p, "is_prime", &[i64s(&[Some(97), Some(91), None])]).expect("is_prime");
    let b: Vec<Option<bool>> = r.as_boolean().iter().collect();
    assert_eq!(b, vec![Some(true), Some(false), None]);

    // Empty batch.
    let r = p
        .call_scalar(index_of(&p, "gcd"), &[i64s(&[]), i64s(&[])], 0)
        .expect("empty batch");
    assert_eq!(r.len(), 0);

    let stats = p.stats(index_of(&p, "gcd")).expect("stats");
    assert!(stats.calls >= 2);
    assert!(stats.rows >= 3);
}

#[test]
fn host_validates_arguments() {
    let p = initialized("math_functions");
    let err = scalar(&p, "gcd", &[strs(&[Some("12")]), i64s(&[Some(1)])]).expect_err("type");
    assert!(matches!(err, CallError::InvalidArguments { .. }), "{err}");
    assert!(
        err.to_string().contains("argument 1 has type Utf8"),
        "{err}"
    );
    let err = scalar(&p, "gcd", &[i64s(&[Some(12)])]).expect_err("arity");
    assert!(
        err.to_string().contains("got 1 arguments, expected 2"),
        "{err}"
    );
    let err = p
        .call_scalar(
            index_of(&p, "gcd"),
            &[i64s(&[Some(1)]), i64s(&[Some(1)])],
            2,
        )
        .expect_err("rows");
    assert!(matches!(err, CallError::InvalidArguments { .. }), "{err}");
    let err = p
        .call_scalar(index_of(&p, "geometric_mean"), &[], 1)
        .expect_err("kind");
    assert!(matches!(err, CallError::NoSuchFunction { .. }), "{err}");
    let err = p.call_scalar(10_000, &[], 1).expect_err("index");
    assert!(matches!(err, CallError::NoSuchFunction { .. }), "{err}");
}

#[test]
fn aggregate_geometric_mean() {
    let p = initialized("math_functions");
    let idx = index_of(&p, "geometric_mean");
    let decl = &p.functions()[idx];
    assert_eq!(decl.kind, FunctionKind::Aggregate);
    assert_eq!(decl.state_types.len(), 3);

    let f64s = |v: &[f64]| -> ArrayRef { Arc::new(Float64Array::from(v.to_vec())) };
    let mut whole = p.create_accumulator(idx).expect("acc");
    whole
        .update(&[f64s(&[1.0, 2.0, 4.0, 8.0])])
        .expect("update");
    let v = whole.evaluate().expect("evaluate");
    let v = v.as_primitive::<Float64Type>().value(0);
    assert!((v - 8f64.sqrt()).abs() < 1e-9, "{v}");

    // Two partial accumulators merged through their state.
    let mut a = p.create_accumulator(idx).expect("acc a");
    let mut b = p.create_accumulator(idx).expect("acc b");
    a.update(&[f64s(&[1.0, 2.0])]).expect("update a");
    b.update(&[f64s(&[4.0])]).expect("update b");
    b.update(&[f64s(&[8.0])]).expect("update b2");
    let state = b.state().expect("state");
    assert_eq!(state.len(), 3);
    assert!(state.iter().all(|s| s.len() == 1));
    a.merge(&state).expect("merge");
    let v = a.evaluate().expect("evaluate merged");
    let v = v.as_primitive::<Float64Type>().value(0);
    assert!((v - 8f64.sqrt()).abs() < 1e-9, "{v}");

    // Empty aggregate is NULL.
    let mut empty = p.create_accumulator(idx).expect("acc");
    assert!(empty.evaluate().expect("evaluate").is_null(0));

    // Wrong state shape is rejected by the host.
    let err = a.merge(&[f64s(&[1.0])]).expect_err("bad state");
    assert!(matches!(err, CallError::InvalidArguments { .. }), "{err}");
}

#[test]
fn string_functions_and_table_function() {
    let p = initialized("string_functions");
    // Every type of its signatures has a `/1` code: offered to hosts before ABI 1.7 too.
    assert_eq!(p.interface_names(), ["phantomdb.functions/2"]);
    assert!(p.has_interface("phantomdb.functions/1"));
    let r = scalar(
        &p,
        "levenshtein",
        &[
            strs(&[Some("kitten"), Some(""), None]),
            strs(&[Some("sitting"), Some("abc"), Some("x")]),
        ],
    )
    .expect("levenshtein");
    assert_eq!(as_i64(&r), vec![Some(3), Some(3), None]);

    let r = scalar(&p, "soundex", &[strs(&[Some("Robert"), Some("Tymczak")])]).expect("soundex");
    let s: Vec<Option<&str>> = r.as_string::<i32>().iter().collect();
    assert_eq!(s, vec![Some("R163"), Some("T522")]);

    let r = scalar(&p, "slugify", &[strs(&[Some("Hello, World! 2024")])]).expect("slugify");
    assert_eq!(r.as_string::<i32>().value(0), "hello-world-2024");

    let idx = index_of(&p, "split_to_rows");
    assert_eq!(p.functions()[idx].kind, FunctionKind::Table);
    assert_eq!(p.functions()[idx].return_type, None);
    let (schema, batches) = p
        .call_table(idx, &[strs(&[Some("a,b,,c")]), strs(&[Some(",")])])
        .expect("split_to_rows");
    assert_eq!(schema.fields().len(), 1);
    assert_eq!(schema.field(0).name(), "value");
    let values: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_string::<i32>()
                .iter()
                .map(|v| v.unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(values, vec!["a", "b", "", "c"]);

    // Table function arguments must be one-row literals.
    let err = p
        .call_table(idx, &[strs(&[Some("a"), Some("b")]), strs(&[Some(",")])])
        .expect_err("two rows");
    assert!(matches!(err, CallError::InvalidArguments { .. }), "{err}");
}

#[test]
fn not_a_library_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("not_a_plugin.so");
    std::fs::write(&path, "this is just text, not a shared library\n").expect("write");
    for err in [
        inspect(&path).expect_err("inspect"),
        load(&path, HOST_VERSION).expect_err("load"),
    ] {
        assert!(matches!(err, LoadError::NotALibrary { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("not_a_plugin.so"), "{msg}");
        assert!(msg.contains("not a shared library"), "{msg}");
    }
    let missing = dir.path().join("missing.so");
    let err = load(&missing, HOST_VERSION).expect_err("missing");
    assert!(matches!(err, LoadError::Io { .. }), "{err}");
    assert!(err.to_string().contains("missing.so"), "{err}");
}

#[test]
fn library_without_manifest_is_not_a_plugin() {
    // Any shared library that is not a PhantomDB plugin: the proc-macro libraries in deps/.
    let deps = phantomdb_testkit::workspace_build().join("deps");
    let found = std::fs::read_dir(&deps).ok().and_then(|entries| {
        entries.filter_map(Result::ok).map(|e| e.path()).find(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            n.starts_with("libthiserror_impl") && n.ends_with(std::env::consts::DLL_SUFFIX)
        })
    });
    let Some(other) = found else {
        eprintln!(
            "no non-plugin shared library found in {}; skipping",
            deps.display()
        );
        return;
    };
    let err = inspect(&other).expect_err("no manifest");
    assert!(matches!(err, LoadError::NoManifest { .. }), "{err}");
    assert!(
        err.to_string().contains("is not a PhantomDB plugin"),
        "{err}"
    );
}

/// Copies `name` and patches bytes of the manifest (located by its magic) in the copy.
fn patched_copy(name: &str, dir: &tempfile::TempDir, offset: usize, bytes: &[u8]) -> PathBuf {
    let path = copy_of(name, dir);
    let mut data = std::fs::read(&path).expect("read");
    let magic = phantomdb_plugin_abi::PHANTOMDB_PLUGIN_MAGIC;
    let at = data
        .windows(magic.len())
        .position(|w| w == magic)
        .expect("manifest magic in file");
    data[at + offset..at + offset + bytes.len()].copy_from_slice(bytes);
    let out = dir.path().join(format!("patched_{name}_{offset}.so"));
    std::fs::write(&out, data).expect("write");
    out
}

#[test]
fn wrong_magic_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = patched_copy("math_functions", &dir, 0, b"XXXXXXXX");
    let err = load(&path, HOST_VERSION).expect_err("bad magic");
    assert!(matches!(err, LoadError::BadMagic { .. }), "{err}");
    assert!(err.to_string().contains("wrong magic"), "{err}");
}

#[test]
fn wrong_platform_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let off = phantomdb_plugin_abi::manifest_offsets::PLATFORM;
    let mut platform = [0u8; phantomdb_plugin_abi::MANIFEST_PLATFORM_LEN];
    platform[..11].copy_from_slice(b"riscv64-os9");
    let path = patched_copy("math_functions", &dir, off, &platform);
    let err = load(&path, HOST_VERSION).expect_err("platform");
    assert!(matches!(err, LoadError::WrongPlatform { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("riscv64-os9"), "{msg}");
    assert!(
        msg.contains(&phantomdb_plugin_abi::current_platform_string()),
        "{msg}"
    );
}

#[test]
fn wrong_abi_is_a_clear_error() {
    let path = lib_path("wrong_abi_plugin");
    for err in [
        inspect(&path).expect_err("inspect"),
        load(&path, HOST_VERSION).expect_err("load"),
    ] {
        match &err {
            LoadError::AbiMismatch {
                expected, found, ..
            } => {
                assert_eq!(*expected, phantomdb_plugin_host::PHANTOMDB_PLUGIN_ABI_MAJOR);
                assert_eq!(*found, 999);
            }
            other => panic!("expected AbiMismatch, got {other}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("libwrong_abi_plugin"), "{msg}");
        assert!(msg.contains("999"), "{msg}");
        assert!(
            msg.contains("rebuild the plugin with phantomdb-plugin-sdk"),
            "{msg}"
        );
    }
}

#[test]
fn host_version_outside_plugin_range_is_rejected() {
    let err = load(lib_path("math_functions"), "0.2.0").expect_err("range");
    assert!(
        matches!(err, LoadError::HostVersionRejected { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("requires PhantomDB >=0.1, <0.2"), "{msg}");
    assert!(msg.contains("this is PhantomDB 0.2.0"), "{msg}");
    let err = load(lib_path("math_functions"), "not-semver").expect_err("bad version");
    assert!(matches!(err, LoadError::InvalidHostVersion { .. }), "{err}");
}

#[test]
fn failing_initialize_is_a_clear_error_and_can_be_retried() {
    let p = loaded("failing_init_plugin");
    let idx = index_of(&p, "identity");
    let err = p
        .call_scalar(idx, &[i64s(&[Some(1)])], 1)
        .expect_err("not init");
    assert!(matches!(err, CallError::InvalidState { .. }), "{err}");
    let err = p.initialize("{}").expect_err("init fails");
    match &err {
        CallError::Plugin {
            plugin,
            function,
            message,
        } => {
            assert_eq!(plugin, "failing_init_plugin");
            assert_eq!(function, "initialize");
            assert!(
                message.contains("missing required setting `ok`"),
                "{message}"
            );
        }
        other => panic!("expected CallError::Plugin, got {other}"),
    }
    assert_eq!(p.state(), PluginState::Loaded);
    p.initialize(r#"{"ok":true}"#)
        .expect("init with good config");
    let r = p.call_scalar(idx, &[i64s(&[Some(7)])], 1).expect("call");
    assert_eq!(as_i64(&r), vec![Some(7)]);
}

#[test]
fn panic_becomes_error_and_plugin_keeps_working() {
    let p = initialized("panicking_plugin");
    for _ in 0..3 {
        let err = scalar(&p, "boom", &[i64s(&[Some(1), Some(-1)])]).expect_err("panic");
        match &err {
            CallError::Plugin {
                function, message, ..
            } => {
                assert_eq!(function, "boom");
                assert!(message.contains("panicked"), "{message}");
                assert!(message.contains("boom: negative input"), "{message}");
            }
            other => panic!("expected CallError::Plugin, got {other}"),
        }
        let r = scalar(&p, "boom", &[i64s(&[Some(1), Some(2)])]).expect("next call works");
        assert_eq!(as_i64(&r), vec![Some(1), Some(2)]);
    }
    let stats = p.stats(index_of(&p, "boom")).expect("stats");
    assert!(stats.errors >= 3);
}

#[test]
fn garbage_results_are_rejected() {
    let p = initialized("garbage_plugin");
    let err = scalar(&p, "wrong_length", &[i64s(&[Some(1), Some(2)])]).expect_err("length");
    assert!(matches!(err, CallError::InvalidResult { .. }), "{err}");
    assert!(
        err.to_string().contains("returned 3 rows, expected 2"),
        "{err}"
    );

    let err = scalar(&p, "wrong_type", &[i64s(&[Some(1)])]).expect_err("type");
    assert!(matches!(err, CallError::InvalidResult { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("returned an array of type Utf8, but the function declares Int64"),
        "{err}"
    );

    let err = scalar(&p, "fails", &[i64s(&[Some(1)])]).expect_err("fails");
    assert!(matches!(err, CallError::Plugin { .. }), "{err}");
    assert!(
        err.to_string().contains("this function always fails"),
        "{err}"
    );

    let err = p
        .call_table(index_of(&p, "bad_table"), &[])
        .expect_err("bad table");
    assert!(matches!(err, CallError::InvalidResult { .. }), "{err}");
}

#[test]
fn lifecycle_is_tracked() {
    // A private copy, so shutting it down does not affect other tests.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = copy_of("math_functions", &dir);
    let p = load(&path, HOST_VERSION).expect("load copy");
    assert_eq!(p.state(), PluginState::Loaded);
    let again = load(&path, HOST_VERSION).expect("load again");
    assert_eq!(again.state(), PluginState::Loaded);
    let err = scalar(&p, "gcd", &[i64s(&[Some(1)]), i64s(&[Some(1)])]).expect_err("not init");
    assert!(err.to_string().contains("is not initialized"), "{err}");
    p.initialize("").expect("init");
    // Same file again: the same plugin (idempotent), already initialised.
    assert_eq!(again.state(), PluginState::Initialized);
    let err = again.initialize("").expect_err("twice");
    assert!(err.to_string().contains("already initialized"), "{err}");
    let mut acc = p
        .create_accumulator(index_of(&p, "geometric_mean"))
        .expect("acc");
    scalar(&p, "gcd", &[i64s(&[Some(4)]), i64s(&[Some(6)])]).expect("call");
    p.shutdown().expect("shutdown");
    assert_eq!(p.state(), PluginState::ShutDown);
    let err = scalar(&p, "gcd", &[i64s(&[Some(1)]), i64s(&[Some(1)])]).expect_err("after");
    assert!(err.to_string().contains("has been shut down"), "{err}");
    let err = acc.evaluate().expect_err("acc after shutdown");
    assert!(matches!(err, CallError::InvalidState { .. }), "{err}");
    drop(acc); // freeing after shutdown is allowed
    assert!(p.shutdown().is_err());
}

#[test]
fn concurrent_calls_from_many_threads() {
    let math = initialized("math_functions");
    let strings = initialized("string_functions");
    let gcd = index_of(&math, "gcd");
    let lev = index_of(&strings, "levenshtein");
    let geo = index_of(&math, "geometric_mean");
    std::thread::scope(|s| {
        for t in 0..8i64 {
            let math = math.clone();
            let strings = strings.clone();
            s.spawn(move || {
                for i in 0..200i64 {
                    let a: Vec<Option<i64>> = (0..64).map(|k| Some((k + 1) * 6 + t + i)).collect();
                    let b: Vec<Option<i64>> = (0..64).map(|k| Some((k + 1) * 4)).collect();
                    let r = math
                        .call_scalar(gcd, &[i64s(&a), i64s(&b)], 64)
                        .expect("gcd");
                    let r = r.as_primitive::<Int64Type>();
                    for k in 0..64 {
                        let (x, y) = (a[k as usize].unwrap_or(0), b[k as usize].unwrap_or(0));
                        let mut g = (x, y);
                        while g.1 != 0 {
                            g = (g.1, g.0 % g.1);
                        }
                        assert_eq!(r.value(k as usize), g.0);
                    }
                    let r = strings
                        .call_scalar(lev, &[strs(&[Some("kitten")]), strs(&[Some("sitting")])], 1)
                        .expect("levenshtein");
                    assert_eq!(r.as_primitive::<Int64Type>().value(0), 3);
                    if i % 20 == 0 {
                        let mut acc = math.create_accumulator(geo).expect("acc");
                        acc.update(&[Arc::new(Float64Array::from(vec![2.0, 8.0])) as ArrayRef])
                            .expect("update");
                        let v = acc.evaluate().expect("evaluate");
                        let v = v.as_primitive::<Float64Type>().value(0);
                        assert!((v - 4.0).abs() < 1e-9);
                    }
                }
            });
        }
    });
}

#[test]
fn loaded_plugin_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LoadedPlugin>();
    assert_send_sync::<phantomdb_plugin_host::PluginAccumulator>();
}

#[test]
fn untyped_null_and_sliced_arguments() {
    let p = initialized("math_functions");
    // An untyped NULL argument (e.g. a SQL NULL literal) is passed as a typed all-null array.
    let null: ArrayRef = Arc::new(arrow_array::NullArray::new(2));
    let r = scalar(&p, "gcd", &[null, i64s(&[Some(1), Some(2)])]).expect("null arg");
    assert_eq!(as_i64(&r), vec![None, None]);
    // Sliced arrays (non-zero offset) cross the boundary correctly.
    let a = i64s(&[Some(100), Some(12), Some(9)]).slice(1, 2);
    let b = i64s(&[Some(18), Some(6), Some(1)]).slice(0, 2);
    let r = scalar(&p, "gcd", &[a, b]).expect("sliced");
    assert_eq!(as_i64(&r), vec![Some(6), Some(3)]);
}
