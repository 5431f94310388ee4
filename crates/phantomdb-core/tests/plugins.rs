//! The plugin manager with real plugin libraries: registry, clashes, and load/unload while
//! other threads run queries that call plugin functions.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use phantomdb::arrow::array::AsArray;
use phantomdb::arrow::datatypes::Int64Type;
use phantomdb::plugins::ComponentKind;
use phantomdb::Database;

fn library(name: &str) -> PathBuf {
    phantomdb_testkit::plugin_library(name)
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
    // The builtin plugin provides functions, engines and the server's own authentication
    // providers, and says so.
    let builtin = plugins.get_plugin("builtin").unwrap();
    assert_eq!(
        builtin.types,
        ["function_extension", "storage_backend", "authentication"]
    );
    assert_eq!(
        builtin.names(ComponentKind::StorageEngine),
        ["redb", "memory"]
    );
    assert_eq!(
        builtin.names(ComponentKind::AuthProvider),
        ["scram", "reject"]
    );
    let before = plugins.snapshot().generation();
    let info = plugins
        .load_plugin(library("math_functions"), "{}")
        .unwrap();
    assert_eq!(info.name, "math_functions");
    assert!(info.names(ComponentKind::Function).contains(&"gcd"));
    assert_eq!(info.types, ["function_extension"]);
    assert_eq!(plugins.plugin_count(), 2);
    assert!(
        plugins.snapshot().generation() > before,
        "a load moves the generation"
    );
    assert_eq!(plugins.plugins_by_type("function_extension").len(), 2);
    assert_eq!(plugins.plugins_by_type("storage_backend").len(), 1);
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
fn an_unload_drains_the_statements_that_use_the_plugin() {
    let db = Database::open_in_memory().unwrap();
    db.plugins()
        .load_plugin(library("math_functions"), "{}")
        .unwrap();
    let c = db.connect().unwrap();
    // An open result stream is a running statement: it holds the plugin.
    let mut stream = c
        .execute_stream("SELECT gcd(value, 6) FROM generate_series(1, 100000)")
        .unwrap();
    assert!(stream.next_batch().is_some());
    let manager = db.plugins().clone();
    let unload = std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(manager.unload_plugin("math_functions"))
    });
    // The plugin drains: still listed, its functions gone for new statements.
    let state = |db: &Database| {
        text_rows(
            &db.connect().unwrap(),
            "SELECT state FROM phantomdb_plugins() WHERE name = 'math_functions'",
        )
    };
    let mut seen = Vec::new();
    for _ in 0..2000 {
        seen = state(&db);
        if seen == [["draining"]] {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(seen, [["draining"]]);
    let err = c.execute("SELECT gcd(4, 6)").unwrap_err();
    assert!(err.to_string().contains("gcd"), "{err}");
    // The running statement finishes, then the unload completes.
    let mut rows = 0;
    while let Some(batch) = stream.next_batch() {
        rows += batch.unwrap().num_rows();
    }
    assert!(rows > 0);
    drop(stream);
    unload.join().unwrap().unwrap();
    assert!(state(&db).is_empty());
    assert!(!db.plugins().is_loaded("math_functions"));
}

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
/// Every row of `sql`'s result, each value displayed as text (NULL as "").
fn text_rows(c: &phantomdb::Connection, sql: &str) -> Vec<Vec<String>> {
    let batch = c
        .execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .concat()
        .unwrap();
    (0..batch.num_rows())
        .map(|row| {
            (0..batch.num_columns())
                .map(|col| text_cell(&batch, col, row))
                .collect()
        })
        .collect()
}

/// One value of a batch, displayed as text (NULL as "").
fn text_cell(batch: &phantomdb::arrow::array::RecordBatch, col: usize, row: usize) -> String {
    phantomdb::arrow::util::display::array_value_to_string(batch.column(col), row).unwrap()
}

/// A plugin built against the frozen ABI 1.1 SDK (`plugins/fixtures/abi_1_1_plugin`, see its
/// README) loads and works in this host without a rebuild: its scalar function and its
/// transactional storage engine, both through the ABI as it was at 1.1. If this fails, the
/// host broke compatibility with ABI 1.1: fix the host, never the fixture.
#[test]
fn a_plugin_built_for_abi_1_1_loads_and_works() {
    let lib = library("abi_1_1_plugin");

    // The library really is an ABI 1.1 build, and this host still speaks ABI 1.x.
    let manifest = phantomdb_plugin_host::inspect(&lib).unwrap();
    assert_eq!((manifest.abi_major, manifest.abi_minor), (1, 1));
    assert_eq!(
        phantomdb_plugin_abi::PHANTOMDB_PLUGIN_ABI_MAJOR,
        1,
        "a new ABI major version retires the ABI 1.1 fixture"
    );

    let db = Database::open_in_memory().unwrap();
    let info = db.plugins().load_plugin(&lib, "{}").unwrap();
    assert_eq!(info.name, "abi_1_1_plugin");
    assert_eq!(info.version, "0.1.0");
    assert_eq!(info.names(ComponentKind::Function), ["abi11_add"]);
    assert_eq!(info.names(ComponentKind::StorageEngine), ["abi11_memory"]);
    // Its types come from what it registered: both kinds.
    assert_eq!(info.types, ["function_extension", "storage_backend"]);
    assert_eq!(
        info.interfaces,
        ["phantomdb.functions/1", "phantomdb.storage/1"]
    );
    let c = db.connect().unwrap();

    // The scalar function.
    assert_eq!(text_rows(&c, "SELECT abi11_add(40, 2)"), [["42"]]);

    // The storage engine: create, insert, read back.
    c.execute("CREATE TABLE t (id BIGINT, v TEXT) USING abi11_memory")
        .unwrap();
    c.execute("INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, NULL)")
        .unwrap();
    assert_eq!(
        text_rows(&c, "SELECT id, v FROM t ORDER BY id"),
        [["1", "one"], ["2", "two"], ["3", ""]]
    );

    // Transactions: uncommitted rows are seen by their transaction only; ROLLBACK undoes.
    c.execute("BEGIN; INSERT INTO t VALUES (4, 'four')")
        .unwrap();
    let other = db.connect().unwrap();
    assert_eq!(text_rows(&c, "SELECT count(*) FROM t"), [["4"]]);
    assert_eq!(text_rows(&other, "SELECT count(*) FROM t"), [["3"]]);
    c.execute("COMMIT").unwrap();
    assert_eq!(text_rows(&other, "SELECT count(*) FROM t"), [["4"]]);
    c.execute("BEGIN; DELETE FROM t").unwrap();
    c.execute("ROLLBACK").unwrap();
    assert_eq!(text_rows(&c, "SELECT count(*) FROM t"), [["4"]]);

    // UPDATE and DELETE (by row id), and the function applied to the engine's rows.
    c.execute("UPDATE t SET v = 'TWO' WHERE id = 2").unwrap();
    c.execute("DELETE FROM t WHERE id = 3").unwrap();
    assert_eq!(
        text_rows(&c, "SELECT id, v, abi11_add(id, 100) FROM t ORDER BY id"),
        [
            ["1", "one", "101"],
            ["2", "TWO", "102"],
            ["4", "four", "104"]
        ]
    );

    // The registry shows the plugin and both of its interfaces.
    assert_eq!(
        text_rows(
            &c,
            "SELECT name, version, state, interfaces FROM phantomdb_plugins() \
             WHERE name = 'abi_1_1_plugin'"
        ),
        [[
            "abi_1_1_plugin",
            "0.1.0",
            "active",
            "phantomdb.functions/1, phantomdb.storage/1"
        ]]
    );
    let show = c.execute("SHOW PLUGINS").unwrap().concat().unwrap();
    let col = |name: &str| {
        show.schema()
            .index_of(name)
            .unwrap_or_else(|_| panic!("SHOW PLUGINS has no column {name}"))
    };
    let row = (0..show.num_rows())
        .find(|&r| text_cell(&show, col("name"), r) == "abi_1_1_plugin")
        .expect("SHOW PLUGINS lists abi_1_1_plugin");
    assert_eq!(text_cell(&show, col("version"), row), "0.1.0");
    assert_eq!(
        text_cell(&show, col("type"), row),
        "function_extension, storage_backend"
    );
    assert_eq!(
        text_cell(&show, col("interfaces"), row),
        "phantomdb.functions/1, phantomdb.storage/1"
    );

    // Beside a plugin read through `phantomdb.functions/2` (ABI 1.7: a signature naming a
    // custom type): both kinds of function work in one statement, and the ABI 1.1 engine,
    // whose `phantomdb.storage/1` always carried Arrow C schemas, stores a column of the custom
    // type as its storage type.
    let uuid = db.plugins().load_plugin(library("uuid"), "{}").unwrap();
    assert_eq!(
        uuid.interfaces,
        ["phantomdb.functions/2", "phantomdb.types/1"]
    );
    c.execute("CREATE TABLE ids (id uuid, n BIGINT) USING abi11_memory")
        .unwrap();
    c.execute(
        "INSERT INTO ids VALUES (gen_random_uuid(), 1), \
         ('c232ab00-9414-11ec-b3c8-9f6bdeced846', 2)",
    )
    .unwrap();
    assert_eq!(
        text_rows(
            &c,
            "SELECT abi11_add(n, 10), uuid_version(id) FROM ids ORDER BY n"
        ),
        [["11", "4"], ["12", "1"]]
    );
    assert_eq!(
        text_rows(&c, "SELECT id FROM ids WHERE n = 2"),
        [["c232ab00-9414-11ec-b3c8-9f6bdeced846"]]
    );
}

/// The single value of `sql`'s result, as an integer.
fn int(c: &phantomdb::Connection, sql: &str) -> phantomdb::Result<i64> {
    let batch = c.execute(sql)?.concat()?;
    let col = phantomdb::arrow::compute::cast(
        batch.column(0),
        &phantomdb::arrow::datatypes::DataType::Int64,
    )?;
    Ok(col.as_primitive::<Int64Type>().value(0))
}

/// Whether `e` is one of the errors concurrent work may legitimately get: a write conflict,
/// a busy writer, or a function whose plugin is being reloaded.
fn expected_under_load(e: &phantomdb::Error) -> bool {
    matches!(e.sqlstate().code(), "40001" | "55P03" | "42883")
}

#[test]
fn sixteen_threads_of_mixed_work_keep_every_total_exact() {
    const ACCOUNTS: i64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Database::open(dir.path().join("load.phantomdb")).unwrap());
    let math = library("math_functions");
    db.plugins().load_plugin(&math, "{}").unwrap();
    let setup = db.connect().unwrap();
    setup
        .execute("CREATE TABLE acct (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)")
        .unwrap();
    setup
        .execute(&format!(
            "INSERT INTO acct SELECT value, 100 FROM generate_series(1, {ACCOUNTS})"
        ))
        .unwrap();
    setup
        .execute("CREATE TABLE log (thread BIGINT, n BIGINT) USING memory")
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let logged = Arc::new(AtomicUsize::new(0));
    let unexpected = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    let mut threads = Vec::new();
    for t in 0..16i64 {
        let (db, stop, logged, unexpected) =
            (db.clone(), stop.clone(), logged.clone(), unexpected.clone());
        let math = math.clone();
        threads.push(std::thread::spawn(move || {
            let mut c = db.connect().unwrap();
            c.set_busy_timeout(std::time::Duration::from_millis(50));
            let reloader = (t == 15).then(|| tokio::runtime::Runtime::new().unwrap());
            let mut i = 0i64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let result: phantomdb::Result<()> = match t % 8 {
                    // Transfers between accounts: the total never changes.
                    0..=2 => {
                        let (from, to) = ((t + i) % ACCOUNTS + 1, (t * 7 + i * 3) % ACCOUNTS + 1);
                        c.execute(&format!(
                            "BEGIN; UPDATE acct SET balance = balance - 1 WHERE id = {from}; \
                             UPDATE acct SET balance = balance + 1 WHERE id = {to}; COMMIT"
                        ))
                        .map(|_| ())
                    }
                    // Readers: every snapshot has the full total.
                    3 | 4 => int(&c, "SELECT sum(balance) FROM acct")
                        .map(|sum| assert_eq!(sum, ACCOUNTS * 100, "a snapshot lost money")),
                    // Appends to an engine table, counted when they commit.
                    5 => c
                        .execute(&format!("INSERT INTO log VALUES ({t}, {i})"))
                        .map(|_| {
                            logged.fetch_add(1, Ordering::Relaxed);
                        }),
                    // DDL on tables of its own, each created and dropped in one transaction.
                    6 => c
                        .execute(&format!(
                            "BEGIN; CREATE TABLE scratch_{t}_{i} AS SELECT value \
                             FROM generate_series(1, 50); DROP TABLE scratch_{t}_{i}; COMMIT"
                        ))
                        .map(|_| ()),
                    // Plugin functions, while one thread reloads their plugin.
                    _ if t == 15 => reloader
                        .as_ref()
                        .expect("the reloading thread has a runtime")
                        .block_on(db.plugins().unload_plugin("math_functions"))
                        .and_then(|_| db.plugins().load_plugin(&math, "{}").map(|_| ())),
                    _ => int(&c, "SELECT gcd(12, 18)").map(|g| assert_eq!(g, 6)),
                };
                if let Err(e) = result {
                    if c.execute("ROLLBACK").is_err() {
                        // Not in a transaction: nothing to roll back.
                    }
                    if !expected_under_load(&e) {
                        unexpected.lock().push(format!("thread {t}: {e} ({e:?})"));
                    }
                }
            }
        }));
    }
    std::thread::sleep(std::time::Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    for th in threads {
        th.join().expect("a worker panicked");
    }
    let unexpected = unexpected.lock();
    assert!(unexpected.is_empty(), "unexpected errors: {unexpected:#?}");
    let c = db.connect().unwrap();
    assert_eq!(
        int(&c, "SELECT sum(balance) FROM acct").unwrap(),
        ACCOUNTS * 100
    );
    assert_eq!(
        int(&c, "SELECT count(*) FROM log").unwrap(),
        logged.load(Ordering::Relaxed) as i64
    );
    assert!(logged.load(Ordering::Relaxed) > 0, "no append committed");
    assert_eq!(
        int(
            &c,
            "SELECT count(*) FROM phantomdb_tables() WHERE name LIKE 'scratch%'"
        )
        .unwrap(),
        0
    );
    assert!(db.plugins().is_loaded("math_functions"));
}

#[test]
fn authentication_providers_of_a_plugin_decide_and_their_failures_are_errors() {
    use phantomdb::plugins::auth::{AuthDecision, AuthOptions, AuthRequest};
    let db = Database::open_in_memory().unwrap();
    let plugins = db.plugins();
    let info = plugins.load_plugin(library("auth_fixtures"), "{}").unwrap();
    assert_eq!(info.types, ["authentication"]);
    assert_eq!(info.interfaces, ["phantomdb.auth/1"]);
    assert_eq!(
        info.names(ComponentKind::AuthProvider),
        ["test_password", "panicking", "hanging", "failing"]
    );
    let provider = |name: &str| {
        plugins
            .auth_provider(name)
            .and_then(|p| p.provider)
            .unwrap_or_else(|| panic!("provider {name}"))
    };
    let mut options = AuthOptions::new();
    assert!(provider("test_password")
        .check_options(&options)
        .unwrap_err()
        .contains("option password (a string) is required"));
    options.insert("password".into(), "pw".into());
    options.insert("role".into(), "staff".into());
    provider("test_password").check_options(&options).unwrap();
    let request = |password: &'static str, options: &'static AuthOptions| AuthRequest {
        user: "alice",
        password,
        database: "shop",
        client_addr: "127.0.0.1",
        tls: true,
        options,
    };
    let options: &'static AuthOptions = Box::leak(Box::new(options));
    assert_eq!(
        provider("test_password").authenticate(&request("pw", options)),
        Ok(AuthDecision::accept_as("staff"))
    );
    assert_eq!(
        provider("test_password").authenticate(&request("", options)),
        Ok(AuthDecision::reject(
            "wrong password for alice from 127.0.0.1"
        ))
    );
    let panicked = provider("panicking")
        .authenticate(&request("pw", options))
        .unwrap_err();
    assert!(panicked.contains("panicked"), "{panicked}");
    assert!(panicked.contains("cannot decide for alice"), "{panicked}");
    let failed = provider("failing")
        .authenticate(&request("pw", options))
        .unwrap_err();
    assert!(failed.contains("directory server unreachable"), "{failed}");
    // Still usable after the panic; `scram` and `reject` are the server's (no implementation).
    assert!(provider("test_password")
        .authenticate(&request("pw", options))
        .is_ok());
    assert!(plugins.auth_provider("scram").unwrap().provider.is_none());
    // Unloaded: gone from the registry; a caller still holding it gets an error, not a crash.
    let held = provider("test_password");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(plugins.unload_plugin("auth_fixtures")).unwrap();
    assert!(plugins.auth_provider("test_password").is_none());
    let e = held.authenticate(&request("pw", options)).unwrap_err();
    assert!(e.contains("has been shut down"), "{e}");
}
