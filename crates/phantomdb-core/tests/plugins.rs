//! The plugin manager with real plugin libraries: registry, clashes, and load/unload while
//! other threads run queries that call plugin functions.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use phantomdb::arrow::array::AsArray;
use phantomdb::arrow::datatypes::Int64Type;
use phantomdb::Database;

/// Builds the bundled plugins once (same target dir and profile as this test binary) and
/// returns the directory holding the libraries.
fn profile_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
        let target = profile.parent().unwrap();
        let profile_name = match profile.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev".to_string(),
            Some(other) => other.to_string(),
        };
        let status = Command::new(env!("CARGO"))
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
            .args(["build", "--profile", &profile_name, "--target-dir"])
            .arg(target)
            // The same package set as the other plugin tests, so one build serves them all.
            .args([
                "-p",
                "math_functions",
                "-p",
                "string_functions",
                "-p",
                "panicking_plugin",
            ])
            .args([
                "-p",
                "wrong_abi_plugin",
                "-p",
                "failing_init_plugin",
                "-p",
                "garbage_plugin",
            ])
            .status()
            .unwrap();
        assert!(status.success(), "building the plugins failed");
        profile
    })
}

fn library(name: &str) -> PathBuf {
    profile_dir().join(format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

/// A copy of plugin `name` whose manifest says it is plugin `new_name`.
fn renamed_copy(name: &str, new_name: &str, dir: &Path) -> PathBuf {
    use phantomdb_plugin_abi::{manifest_offsets, MANIFEST_NAME_LEN, PHANTOMDB_PLUGIN_MAGIC};
    let mut data = std::fs::read(library(name)).unwrap();
    let at = data
        .windows(PHANTOMDB_PLUGIN_MAGIC.len())
        .position(|w| w == PHANTOMDB_PLUGIN_MAGIC)
        .unwrap();
    let field =
        &mut data[at + manifest_offsets::NAME..at + manifest_offsets::NAME + MANIFEST_NAME_LEN];
    field.fill(0);
    field[..new_name.len()].copy_from_slice(new_name.as_bytes());
    let out = dir.join(format!("{new_name}.so"));
    std::fs::write(&out, data).unwrap();
    out
}

#[test]
fn registry_lists_builtin_and_loaded_plugins() {
    let db = Database::open_in_memory().unwrap();
    let plugins = db.plugins();
    assert!(plugins.is_loaded("builtin"));
    assert_eq!(plugins.plugin_count(), 1);
    let info = plugins
        .load_plugin(library("math_functions"), "{}")
        .unwrap();
    assert_eq!(info.name, "math_functions");
    assert!(info.functions.contains(&"gcd".to_string()));
    assert_eq!(plugins.plugin_count(), 2);
    assert_eq!(plugins.plugins_by_type("function_extension").len(), 2);
    assert_eq!(
        plugins.get_plugin("math_functions").unwrap().version,
        "0.1.0"
    );

    // The same plugin twice is refused clearly.
    let again = plugins
        .load_plugin(library("math_functions"), "{}")
        .unwrap_err();
    assert!(again.to_string().contains("already loaded"), "{again}");

    // Another plugin providing the same function names is refused (no silent shadowing).
    let dir = tempfile::tempdir().unwrap();
    let twin = renamed_copy("math_functions", "math_twin", dir.path());
    let clash = plugins.load_plugin(&twin, "{}").unwrap_err();
    assert!(
        clash.to_string().contains("clashes with function"),
        "{clash}"
    );
    assert!(!plugins.is_loaded("math_twin"));

    // Built-ins cannot be unloaded.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = rt.block_on(plugins.unload_plugin("builtin")).unwrap_err();
    assert!(e.to_string().contains("cannot be unloaded"), "{e}");
    rt.block_on(plugins.unload_plugin("math_functions"))
        .unwrap();
    assert!(!plugins.is_loaded("math_functions"));
    // Now the twin's names are free.
    plugins.load_plugin(&twin, "{}").unwrap();
    let c = db.connect().unwrap();
    let rs = c.execute("SELECT gcd(12, 18)").unwrap().concat().unwrap();
    assert_eq!(rs.column(0).as_primitive::<Int64Type>().value(0), 6);
}

#[test]
fn directory_loading_skips_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("function_extensions");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::copy(
        library("string_functions"),
        nested.join("libstring_functions.so"),
    )
    .unwrap();
    std::fs::write(dir.path().join("broken.so"), b"not a library").unwrap();
    std::fs::write(dir.path().join("README.txt"), b"ignored").unwrap();
    let db = Database::open_in_memory().unwrap();
    let result = db
        .plugins()
        .load_plugins_from_directory(dir.path())
        .unwrap();
    assert_eq!(result.loaded.len(), 1, "{result:?}");
    assert_eq!(result.loaded[0].name, "string_functions");
    assert_eq!(result.failed.len(), 1);
    assert!(
        result.failed[0].1.to_string().contains("broken.so"),
        "{result:?}"
    );
}

/// Readers call plugin functions in a loop while another thread unloads and reloads the
/// plugin: every answer is right or a clear "function not found"; nothing crashes.
#[test]
fn queries_run_while_plugins_load_and_unload() {
    let db = Database::open_in_memory().unwrap();
    let math = library("math_functions");
    db.plugins().load_plugin(&math, "{}").unwrap();
    db.execute("CREATE TABLE pairs (a BIGINT, b BIGINT)")
        .unwrap();
    db.execute("INSERT INTO pairs SELECT value * 6, value * 4 FROM generate_series(1, 2000)")
        .unwrap();
    // gcd(6v, 4v) = 2v, so the sum over v = 1..2000 is 2 * 2000 * 2001 / 2.
    let expected: i64 = 2000 * 2001;

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let not_found = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            let stop = stop.clone();
            let answered = answered.clone();
            let not_found = not_found.clone();
            std::thread::spawn(move || {
                let c = db.connect().unwrap();
                while !stop.load(Ordering::Relaxed) {
                    match c.execute("SELECT sum(gcd(a, b)) FROM pairs") {
                        Ok(rs) => {
                            let batch = rs.concat().unwrap();
                            assert_eq!(
                                batch.column(0).as_primitive::<Int64Type>().value(0),
                                expected
                            );
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            assert!(
                                e.to_string().contains("function not found: gcd"),
                                "unexpected error: {e}"
                            );
                            not_found.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for _ in 0..15 {
        std::thread::sleep(std::time::Duration::from_millis(15));
        rt.block_on(db.plugins().unload_plugin("math_functions"))
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        db.plugins().load_plugin(&math, "{}").unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(30));
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("a reader failed");
    }
    assert!(answered.load(Ordering::Relaxed) > 0, "no query succeeded");
    assert!(db.plugins().is_loaded("math_functions"));
}
