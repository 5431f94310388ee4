//! End-to-end tests of the `phantomdb` binary: the shell, the sqllogictest suite, and
//! durability across a SIGKILL. They run the real binary as a child process.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

#[path = "cli/crash_engines.rs"]
mod crash_engines;
#[path = "cli/data_types.rs"]
mod data_types;
#[path = "cli/habits.rs"]
mod habits;
#[path = "cli/integrity.rs"]
mod integrity;
#[path = "cli/migration.rs"]
mod migration;
#[path = "cli/query_processors.rs"]
mod query_processors;

fn phantomdb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_phantomdb"))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    phantomdb().args(args).output().expect("phantomdb runs")
}

/// Runs `phantomdb ARGS` with `script` on standard input.
fn run_stdin(args: &[&str], script: &str) -> Output {
    let mut child = phantomdb()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("phantomdb runs");
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .expect("write the script");
    }
    child.wait_with_output().expect("phantomdb finishes")
}

/// The `statement` and `query` records of the .slt files in `dir` (files without
/// `skipif`/`onlyif`, so every record runs).
fn count_records(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "slt") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(!text.contains("skipif") && !text.contains("onlyif"));
            n += text
                .lines()
                .filter(|l| l.starts_with("statement ") || l.starts_with("query "))
                .count();
        }
    }
    n
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn sql_suite_passes_on_the_file_backed_engine() {
    let out = run(&["test", workspace_root().join("tests/slt").to_str().unwrap()]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "slt suite failed:\n{text}\n{}",
        stderr(&out)
    );
    assert!(text.contains(" passed, 0 failed"), "{text}");
    assert!(!text.contains("\n0 passed"), "ran no test files: {text}");
}

#[test]
fn test_command_reports_failures_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.slt");
    std::fs::write(&bad, "query I\nSELECT 1 + 1\n----\n3\n").unwrap();
    let good = dir.path().join("good.slt");
    std::fs::write(&good, "query I\nSELECT 1 + 1\n----\n2\n").unwrap();
    let out = run(&["test", bad.to_str().unwrap(), good.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).trim_end().ends_with("1 passed, 1 failed"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn two_processes_share_a_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let db = db.to_str().unwrap();
    let out = run(&[
        db,
        "-c",
        "CREATE TABLE t(id INT PRIMARY KEY, v TEXT)",
        "-c",
        "INSERT INTO t VALUES (1,'a'),(2,'b')",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&[db, "--format", "csv", "-c", "SELECT count(*) FROM t"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "header and one data row: {lines:?}");
    assert_eq!(lines[1], "2");
}

#[test]
fn formats_csv_and_json() {
    let out = run(&["--format", "json", "-c", "SELECT 1 AS a, 'x' AS b"]);
    assert_eq!(stdout(&out).trim(), r#"[{"a":1,"b":"x"}]"#);
    let out = run(&["--format", "csv", "-c", "SELECT 1 AS a, 'x' AS b"]);
    assert_eq!(stdout(&out), "a,b\n1,x\n");
    let out = run(&["-c", "SELECT 41 + 1 AS answer"]);
    let table = stdout(&out);
    assert!(
        table.contains("| answer |") && table.contains("| 42     |"),
        "{table}"
    );
}

#[test]
fn commands_stop_at_the_first_error_with_a_clear_message() {
    let out = run(&[
        "--format",
        "csv",
        "-c",
        "SELECT 1 AS a",
        "-c",
        "SELEC 2",
        "-c",
        "SELECT 3 AS c",
    ]);
    assert!(!out.status.success());
    assert_eq!(stdout(&out), "a\n1\n", "the third command must not run");
    let err = stderr(&out);
    // psql's form: the message, then the statement's line with a caret under the error.
    assert_eq!(
        err,
        "Error: syntax error at or near \"SELEC\"\nLINE 1: SELEC 2\n        ^\n"
    );
}

#[test]
fn rollback_and_duplicate_key_leave_the_table_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let db = db.to_str().unwrap();
    let out = run(&[
        db,
        "-c",
        "CREATE TABLE t(id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a')",
        "-c",
        "BEGIN; INSERT INTO t VALUES (2, 'b'); ROLLBACK;",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&[db, "-c", "INSERT INTO t VALUES (3, 'c'), (1, 'again')"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("duplicate primary key"),
        "{}",
        stderr(&out)
    );
    let out = run(&[db, "--format", "csv", "-c", "SELECT id FROM t ORDER BY id"]);
    assert_eq!(stdout(&out), "id\n1\n");
}

#[test]
fn tables_and_schema_read_the_system_tables() {
    let script = "CREATE TABLE orders (id BIGINT, region TEXT NOT NULL DEFAULT 'eu', \
                  qty INT, PRIMARY KEY (region, id));\n\
                  CREATE TABLE scratch (v DOUBLE) USING memory;\n\
                  CREATE VIEW big AS SELECT id FROM orders WHERE qty > 10;\n\
                  .tables\n.schema\n.schema scratch\n";
    let out = run_stdin(&["--format", "csv"], script);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "big (view)  orders (redb)  scratch (memory)");
    assert_eq!(
        lines[1],
        "CREATE TABLE orders (id BIGINT NOT NULL, region TEXT NOT NULL DEFAULT 'eu', qty INT, \
         PRIMARY KEY (region, id)) USING redb;"
    );
    assert_eq!(lines[2], "CREATE TABLE scratch (v DOUBLE) USING memory;");
    assert!(
        lines[3].starts_with("CREATE VIEW big AS SELECT id FROM orders"),
        "{text}"
    );
    assert_eq!(lines[4], "CREATE TABLE scratch (v DOUBLE) USING memory;");
    assert_eq!(lines.len(), 5, "{text}");
}

#[test]
fn scripts_on_stdin_report_errors_and_go_on() {
    let out = run_stdin(&["--format", "csv"], "CREATE TABLE t (s TEXT);\nINSERT INTO t VALUES ('a;b');\nSELEC oops;\n.tables\nSELECT s FROM t;\n");
    assert!(
        !out.status.success(),
        "an error makes the exit status non-zero"
    );
    assert_eq!(stdout(&out), "t (redb)\ns\na;b\n");
    assert_eq!(
        stderr(&out)
            .lines()
            .filter(|l| l.starts_with("Error: "))
            .count(),
        1
    );
}

#[test]
fn explain_shows_a_key_lookup() {
    let out = run(&[
        "-c",
        "CREATE TABLE t(id INT PRIMARY KEY, v TEXT)",
        "-c",
        "EXPLAIN SELECT * FROM t WHERE id = 1",
    ]);
    let text = stdout(&out);
    assert!(text.contains("PhantomKeyLookupExec"), "{text}");
    assert!(!text.contains("PhantomScanExec"), "{text}");
}

/// Feeds `script` to a shell on `db` and SIGKILLs it once `marker` has been printed (plus a
/// moment, so that the next statements are being written). Returns every line read.
fn run_and_kill(db: &str, script: String, marker: &str) -> Vec<String> {
    let mut child = phantomdb()
        .args([db, "--format", "csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(script.as_bytes());
    });
    let mut seen = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line == marker;
        seen.push(line);
        if done {
            break;
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(30));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let _ = writer.join();
    assert!(
        seen.iter().any(|l| l == marker),
        "child ended before {marker}: {seen:?}"
    );
    seen
}

/// `(batch, rows)` per batch of table t.
fn batches(db: &str) -> Vec<(i64, i64)> {
    let out = run(&[
        db,
        "--format",
        "csv",
        "-c",
        "SELECT batch, count(*) AS n FROM t GROUP BY batch ORDER BY batch",
    ]);
    assert!(out.status.success(), "reopen after kill: {}", stderr(&out));
    stdout(&out)
        .lines()
        .skip(1)
        .map(|l| {
            let (b, n) = l.split_once(',').unwrap();
            (b.parse().unwrap(), n.parse().unwrap())
        })
        .collect()
}

/// Rows committed before a SIGKILL are all there afterwards, each commit whole; a transaction
/// that was open when the process died leaves no trace.
#[test]
fn committed_data_survives_kill_9() {
    const BATCH: i64 = 2000;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kill.db");
    let db = db.to_str().unwrap();
    let out = run(&[
        db,
        "-c",
        "CREATE TABLE t (id BIGINT PRIMARY KEY, batch INT NOT NULL)",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let insert = |b: i64| {
        format!(
            "INSERT INTO t SELECT value, {b} FROM generate_series({}, {});\nSELECT 'committed {b}' AS m;\n",
            b * BATCH,
            b * BATCH + BATCH - 1
        )
    };

    // 1. Autocommit inserts, killed while later ones are being written.
    let script: String = (0..400).map(insert).collect();
    let seen = run_and_kill(db, script, "committed 12");
    let acknowledged = seen.iter().filter(|l| l.starts_with("committed ")).count() as i64;
    let after_first = batches(db);
    for b in 0..acknowledged {
        assert!(
            after_first.contains(&(b, BATCH)),
            "acknowledged batch {b} missing: {after_first:?}"
        );
    }
    for (b, n) in &after_first {
        assert_eq!(*n, BATCH, "batch {b} is partial: {after_first:?}");
    }

    // 2. An open transaction with many rows written, killed before COMMIT.
    let mut script = String::from("BEGIN;\n");
    for b in 1000..1200 {
        script.push_str(&insert(b));
    }
    script.push_str("COMMIT;\n");
    run_and_kill(db, script, "committed 1005");
    assert_eq!(
        batches(db),
        after_first,
        "an uncommitted transaction left rows behind"
    );

    // The primary key index agrees with the data after recovery.
    let out = run(&[
        db,
        "--format",
        "csv",
        "-c",
        "SELECT batch FROM t WHERE id = 5",
    ]);
    assert_eq!(stdout(&out), "batch\n0\n");
    let out = run(&[db, "-c", "INSERT INTO t VALUES (5, 1)"]);
    assert!(
        stderr(&out).contains("duplicate primary key"),
        "{}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// Plugins, loaded from the built shared libraries (not linked in).

const BUNDLED: &[&str] = &["math_functions", "string_functions"];
const BUNDLED_STORAGE: &[&str] = &["s3_storage"];
const BUNDLED_QUERY_PROCESSORS: &[&str] = &["advanced_optimizer"];

/// The directory cargo put this test's `phantomdb` binary in, where the plugin libraries of
/// the same profile land too.
fn profile_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_phantomdb"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn library(name: &str) -> PathBuf {
    phantomdb_testkit::plugin_library(name)
}

/// Builds the plugin crates once (same target dir and profile as this test) and returns a
/// directory holding only the bundled plugins, laid out as `scripts/phantomdb` installs them.
fn plugin_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        phantomdb_testkit::workspace_build();
        let dir =
            std::env::temp_dir().join(format!("phantomdb-cli-test-plugins-{}", std::process::id()));
        let dir = dir.join("function_extensions");
        std::fs::create_dir_all(&dir).unwrap();
        for p in BUNDLED {
            let lib = library(p);
            std::fs::copy(&lib, dir.join(lib.file_name().unwrap())).unwrap();
        }
        let storage = dir.parent().unwrap().join("storage_backends");
        std::fs::create_dir_all(&storage).unwrap();
        for p in BUNDLED_STORAGE {
            let lib = library(p);
            std::fs::copy(&lib, storage.join(lib.file_name().unwrap())).unwrap();
        }
        let processors = dir.parent().unwrap().join("query_processors");
        std::fs::create_dir_all(&processors).unwrap();
        for p in BUNDLED_QUERY_PROCESSORS {
            let lib = library(p);
            std::fs::copy(&lib, processors.join(lib.file_name().unwrap())).unwrap();
        }
        dir.parent().unwrap().to_path_buf()
    })
}

#[test]
fn plugin_functions_from_a_plugin_directory() {
    let dir = plugin_dir().to_str().unwrap();
    let out = run(&[
        "--plugin-dir",
        dir,
        "--format",
        "csv",
        "-c",
        "SELECT gcd(12, 18), levenshtein('kitten','sitting')",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().nth(1), Some("6,3"), "{}", stdout(&out));
}

#[test]
fn show_plugins_and_unload() {
    let dir = plugin_dir().to_str().unwrap();
    let out = run(&["--plugin-dir", dir, "--format", "csv", "-c", "SHOW PLUGINS"]);
    let text = stdout(&out);
    // A plugin's types are the kinds it registered: builtin has functions, engines and
    // authentication providers.
    for (name, version, types) in [
        (
            "builtin",
            "0.1.0",
            "\"function_extension, storage_backend, authentication\"",
        ),
        ("math_functions", "0.1.0", "function_extension"),
        ("string_functions", "0.1.0", "function_extension"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{name},{version},{types},active"))),
            "{name} missing: {text}"
        );
    }
    let out = run(&[
        "--plugin-dir",
        dir,
        "--format",
        "csv",
        "-c",
        "SELECT gcd(2, 4) AS g",
        "-c",
        "UNLOAD PLUGIN math_functions",
        "-c",
        "SELECT gcd(1, 1)",
    ]);
    assert!(!out.status.success());
    assert_eq!(stdout(&out), "g\n2\n");
    assert!(
        stderr(&out).starts_with("Error: function not found: gcd"),
        "{}",
        stderr(&out)
    );
    // Other plugins keep working after an unload, and the plugin can be loaded again.
    let math = library("math_functions");
    let out = run(&[
        "--plugin-dir",
        dir,
        "--format",
        "csv",
        "-c",
        "UNLOAD PLUGIN math_functions",
        "-c",
        "SELECT soundex('Robert') AS s",
        "-c",
        &format!("LOAD PLUGIN '{}'", math.display()),
        "-c",
        "SELECT gcd(9, 6) AS g",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).ends_with("g\n3\n"), "{}", stdout(&out));
}

#[test]
fn bad_plugins_give_their_own_errors_and_the_shell_goes_on() {
    plugin_dir();
    let not_a_library =
        std::env::temp_dir().join(format!("phantomdb-not-a-lib-{}.so", std::process::id()));
    std::fs::write(&not_a_library, "this is text").unwrap();
    let cases = [
        (library("wrong_abi_plugin"), "ABI 999"),
        (library("failing_init_plugin"), "failed to initialize"),
        (not_a_library.clone(), "is not a shared library"),
        (PathBuf::from("/no/such/plugin.so"), "No such file"),
    ];
    let mut messages = Vec::new();
    for (path, expected) in &cases {
        let out = run(&[
            "--format",
            "csv",
            "-c",
            &format!("LOAD PLUGIN '{}'", path.display()),
            "-c",
            "SELECT 1 AS still_working",
        ]);
        let err = stderr(&out);
        assert!(
            err.starts_with("Error: ") && err.contains(expected),
            "{path:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        messages.push(err);
        // In a script (stdin), the next statement still runs.
        let script = format!(
            "LOAD PLUGIN '{}';\nSELECT 1 AS still_working;\n",
            path.display()
        );
        let out = run_stdin(&["--format", "csv"], &script);
        assert_eq!(stdout(&out), "still_working\n1\n", "{path:?}");
    }
    messages.sort();
    messages.dedup();
    assert_eq!(
        messages.len(),
        cases.len(),
        "each failure has its own message"
    );
    let _ = std::fs::remove_file(not_a_library);
}

#[test]
fn a_panicking_or_lying_plugin_gives_sql_errors() {
    plugin_dir();
    let script = format!(
        "LOAD PLUGIN '{}';\nLOAD PLUGIN '{}';\nSELECT boom(-1);\nSELECT boom(7) AS ok;\n\
         SELECT wrong_length(1);\nSELECT wrong_type(1);\nSELECT * FROM bad_table();\n\
         CREATE TABLE g (s TEXT) USING garbage_storage;\nSELECT s FROM g;\nSELECT boom(8) AS again;\n",
        library("panicking_plugin").display(),
        library("garbage_plugin").display()
    );
    let out = run_stdin(&["--format", "csv"], &script);
    let err = stderr(&out);
    let errors: Vec<&str> = err.lines().collect();
    assert_eq!(errors.len(), 5, "{err}");
    assert!(
        errors[0].contains("panicked") && errors[0].contains("boom"),
        "{err}"
    );
    assert!(errors[1].contains("returned 2 rows, expected 1"), "{err}");
    assert!(errors[2].contains("declares Int64"), "{err}");
    assert!(errors[3].contains("bad_table"), "{err}");
    assert!(
        errors[4].contains("garbage_storage") && errors[4].contains("non-UTF-8"),
        "{err}"
    );
    let text = stdout(&out);
    assert!(
        text.contains("ok\n7\n") && text.ends_with("again\n8\n"),
        "{text}"
    );
}

#[test]
fn plugin_sql_suites_pass() {
    let dir = plugin_dir().to_str().unwrap();
    let root = workspace_root();
    let suites: Vec<PathBuf> = [
        "plugins/function_extensions/math_functions/tests",
        "plugins/function_extensions/string_functions/tests",
        "plugins/query_processors/advanced_optimizer/tests",
    ]
    .iter()
    .map(|s| root.join(s))
    .collect();
    let mut args = vec!["test", "--plugin-dir", dir];
    args.extend(suites.iter().map(|s| s.to_str().unwrap()));
    let out = run(&args);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let records: usize = suites.iter().map(|s| count_records(s)).sum();
    assert!(
        stdout(&out)
            .trim_end()
            .ends_with(&format!("\n{records} passed, 0 failed")),
        "{records} records: {}",
        stdout(&out)
    );
}

/// `phantomdb plugin new` writes a crate that builds, loads and passes its own .slt file.
#[test]
fn scaffolded_plugin_builds_and_passes_its_test() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "plugin",
        "new",
        "demo_plugin",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let krate = dir.path().join("demo_plugin");
    let lib_rs = std::fs::read_to_string(krate.join("src/lib.rs")).unwrap();
    assert!(
        lib_rs.lines().count() <= 30,
        "hello-world plugin stays small:\n{lib_rs}"
    );
    // Same dependency versions as the workspace, so nothing new is downloaded.
    std::fs::copy(
        workspace_root().join("Cargo.lock"),
        krate.join("Cargo.lock"),
    )
    .unwrap();
    let target = profile_dir().parent().unwrap().join("scaffold-test");
    let status = Command::new(env!("CARGO"))
        .current_dir(&krate)
        .args(["build", "--target-dir"])
        .arg(&target)
        .status()
        .unwrap();
    assert!(status.success(), "the scaffolded plugin does not build");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let lib = format!(
        "{}demo_plugin{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    std::fs::copy(target.join("debug").join(&lib), plugins.join(&lib)).unwrap();
    let out = run(&[
        "test",
        "--plugin-dir",
        plugins.to_str().unwrap(),
        krate.join("tests/demo_plugin.slt").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let records = count_records(&krate.join("tests"));
    assert!(records > 0);
    assert!(
        stdout(&out)
            .trim_end()
            .ends_with(&format!("\n{records} passed, 0 failed")),
        "{}",
        stdout(&out)
    );
    // A second scaffold with the same name is refused.
    let out = run(&[
        "plugin",
        "new",
        "demo_plugin",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
}

#[test]
fn sql_suite_passes_on_the_memory_engine() {
    let out = run(&[
        "test",
        "--engine",
        "memory",
        workspace_root().join("tests/slt").to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "slt suite failed on memory:\n{text}\n{}",
        stderr(&out)
    );
    assert!(text.contains(" passed, 0 failed"), "{text}");
}

#[test]
fn an_append_only_engine_refuses_update_delete_and_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let _ = plugin_dir(); // builds the fixtures
    let lib = library("append_only_storage");
    std::fs::copy(&lib, plugins.join(lib.file_name().unwrap())).unwrap();
    let db = dir.path().join("a.db");
    let (db, plugins) = (db.to_str().unwrap(), plugins.to_str().unwrap());
    let out = run(&[
        db,
        "--plugin-dir",
        plugins,
        "--format",
        "csv",
        "-c",
        "CREATE TABLE log (id INT, msg TEXT) USING append_log",
        "-c",
        "INSERT INTO log VALUES (1, 'a'), (2, 'b')",
        "-c",
        "SELECT count(*) AS n FROM log",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).ends_with("n\n2\n"), "{}", stdout(&out));
    for (sql, expected) in [
        (
            "UPDATE log SET msg = 'x' WHERE id = 1",
            "storage engine append_log does not support UPDATE or DELETE",
        ),
        ("DELETE FROM log", "does not support UPDATE or DELETE"),
        (
            "BEGIN; INSERT INTO log VALUES (3, 'c')",
            "does not support transactions",
        ),
    ] {
        let out = run(&[db, "--plugin-dir", plugins, "-c", sql]);
        assert!(!out.status.success(), "{sql} should fail");
        assert!(stderr(&out).contains(expected), "{sql}: {}", stderr(&out));
    }
    // Nothing changed, and the shell shows the table's engine.
    let out = run(&[
        db,
        "--plugin-dir",
        plugins,
        "--format",
        "csv",
        "-c",
        "SELECT count(*) AS n FROM log WHERE msg = 'x'",
        "-c",
        "SELECT name, engine FROM phantomdb_tables()",
    ]);
    assert_eq!(stdout(&out), "n\n0\nname,engine\nlog,append_log\n");
}

/// `phantomdb test --engine s3_storage` with the given plugin configuration.
fn run_suite_on_s3_storage(config: &str) -> Output {
    run(&[
        "test",
        "--plugin-dir",
        plugin_dir().to_str().unwrap(),
        "--plugin-config",
        &format!("s3_storage={config}"),
        "--engine",
        "s3_storage",
        workspace_root().join("tests/slt").to_str().unwrap(),
    ])
}

#[test]
fn sql_suite_passes_on_s3_storage_in_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(r#"{{"path": "{}"}}"#, dir.path().display());
    let out = run_suite_on_s3_storage(&config);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "slt suite failed on s3_storage (local):\n{text}\n{}",
        stderr(&out)
    );
    assert!(text.contains(" passed, 0 failed"), "{text}");
    // The tables really went to Parquet files under the configured path.
    let parquet = walk(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .count();
    assert!(
        parquet > 0,
        "no Parquet files written under {}",
        dir.path().display()
    );
}

#[test]
fn sql_suite_passes_on_s3_storage_against_a_real_s3_server() {
    let root = tempfile::tempdir().unwrap();
    let server = phantomdb_testkit::S3TestServer::start(root.path()).expect("start the S3 server");
    let out = run_suite_on_s3_storage(&server.config_json("slt"));
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "slt suite failed on s3_storage (S3):\n{text}\n{}",
        stderr(&out)
    );
    assert!(text.contains(" passed, 0 failed"), "{text}");
    let objects = walk(&root.path().join(&server.bucket)).len();
    assert!(objects > 0, "nothing was written to the S3 server");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn s3_storage_tables_survive_restarts_and_a_missing_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("phantom-s3");
    let db = dir.path().join("s3.db");
    let db = db.to_str().unwrap();
    let plugins = plugin_dir().to_str().unwrap();
    let create = format!(
        "CREATE TABLE t (id INT, v TEXT) USING s3_storage WITH (path = '{}')",
        data.display()
    );
    let out = run(&[
        db,
        "--plugin-dir",
        plugins,
        "--format",
        "csv",
        "-c",
        &create,
        "-c",
        "INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three')",
        "-c",
        "UPDATE t SET v = 'TWO' WHERE id = 2",
        "-c",
        "DELETE FROM t WHERE id = 3",
        "-c",
        "CREATE TABLE plain (x INT)",
        "-c",
        "INSERT INTO plain VALUES (7)",
        "-c",
        "SELECT id, v FROM t ORDER BY id",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).ends_with("id,v\n1,one\n2,TWO\n"),
        "{}",
        stdout(&out)
    );

    // Restart with the plugin: the rows are there, and EXPLAIN shows the pushed filter.
    let out = run(&[
        db,
        "--plugin-dir",
        plugins,
        "--format",
        "csv",
        "-c",
        "SELECT id, v FROM t ORDER BY id",
        "-c",
        "EXPLAIN SELECT v FROM t WHERE id > 1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("id,v\n1,one\n2,TWO\n"), "{text}");
    assert!(
        text.contains("PhantomScanExec: table=t, engine=s3_storage")
            && text.contains("filters=[id > Int32(1)]"),
        "{text}"
    );

    // Restart without the plugin: that table fails clearly, every other table works.
    let out = run(&[db, "-c", "SELECT * FROM t"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("table t needs storage engine s3_storage (plugin not loaded)"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        db,
        "--format",
        "csv",
        "-c",
        "SELECT x FROM plain",
        "-c",
        "SELECT name, status FROM phantomdb_tables() ORDER BY name",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "x\n7\nname,status\nplain,available\nt,engine not loaded\n"
    );

    // Loading the plugin later makes the table work again; nothing was lost.
    let lib = plugin_dir()
        .join("storage_backends")
        .join(library("s3_storage").file_name().unwrap());
    let out = run(&[
        db,
        "--format",
        "csv",
        "-c",
        &format!("LOAD PLUGIN '{}'", lib.display()),
        "-c",
        "SELECT count(*) AS n FROM t",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).ends_with("n\n2\n"), "{}", stdout(&out));
}

#[test]
fn a_transaction_across_s3_storage_and_redb_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let out = run_stdin(
        &[
            db.to_str().unwrap(),
            "--plugin-dir",
            plugin_dir().to_str().unwrap(),
            "--format",
            "csv",
        ],
        &format!(
            "CREATE TABLE s (id INT, v INT) USING s3_storage WITH (path = '{}');\n\
             CREATE TABLE r (id INT, v INT);\n\
             INSERT INTO s VALUES (1, 10);\n\
             INSERT INTO r VALUES (1, 10);\n\
             BEGIN;\n\
             UPDATE s SET v = 20;\n\
             INSERT INTO s VALUES (2, 5);\n\
             UPDATE r SET v = 20;\n\
             SELECT sum(v) AS inside FROM s;\n\
             ROLLBACK;\n\
             SELECT sum(v) AS s_after FROM s;\n\
             SELECT sum(v) AS r_after FROM r;\n",
            dir.path().join("data").display()
        ),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "inside\n25\ns_after\n10\nr_after\n10\n");
}

/// Peak resident memory of a running process, in bytes (Linux).
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[test]
fn csv_output_streams_and_stops_when_the_reader_goes() {
    // 50 million rows are 400 MB as Int64 alone: the first lines must come without them.
    let mut child = phantomdb()
        .args([
            "--format",
            "csv",
            "-c",
            "SELECT value FROM generate_series(1, 50000000)",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("phantomdb runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Vec<String> = (0..3).map(|_| lines.next().unwrap().unwrap()).collect();
    assert_eq!(first, ["value", "1", "2"]);
    let peak = peak_rss(child.id()).expect("VmHWM of the shell");
    assert!(
        peak < 300 << 20,
        "the shell holds {} MB while streaming",
        peak >> 20
    );
    // Closing the pipe (like `| head -n 3`) ends the shell quietly.
    drop(lines);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?} {}", out.status, stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

/// The shell on a pseudo-terminal, as someone at a keyboard runs it.
struct Terminal {
    master: std::fs::File,
    child: std::process::Child,
    output: std::sync::Arc<std::sync::Mutex<String>>,
    _home: Option<tempfile::TempDir>,
}

impl Terminal {
    fn start() -> Terminal {
        let home = tempfile::tempdir().unwrap();
        let mut t = Terminal::start_in(home.path(), &[]);
        t._home = Some(home);
        t
    }

    /// The shell with `args`, and `home` as its HOME (where its history is kept).
    fn start_in(home: &Path, args: &[&str]) -> Terminal {
        use std::os::fd::FromRawFd;
        use std::os::unix::process::CommandExt;
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty fills in two new descriptors, which the files below then own.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: fresh descriptors owned by nobody else.
        let (master, slave) = unsafe {
            (
                std::fs::File::from_raw_fd(master),
                std::fs::File::from_raw_fd(slave),
            )
        };
        let mut cmd = phantomdb();
        cmd.args(args)
            .env("HOME", home)
            .env("TERM", "xterm")
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // A session of its own with the terminal as its controlling terminal, so
                // Ctrl-C on it reaches the shell as SIGINT.
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("phantomdb runs");
        drop(cmd); // closes this process's copies of the terminal's slave side
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut reader, &mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Terminal {
            master,
            child,
            output,
            _home: None,
        }
    }

    fn send(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
    }

    fn text(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits (up to a minute) until the screen shows `text` after position `from`.
    fn wait_for(&self, text: &str, from: usize) -> usize {
        for _ in 0..600 {
            let screen = self.text();
            if let Some(at) = screen.get(from..).and_then(|s| s.find(text)) {
                return from + at + text.len();
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("no {text:?} on the terminal:\n{}", self.text());
    }
}

#[test]
fn ctrl_c_interrupts_the_running_statement_and_the_shell_goes_on() {
    let mut t = Terminal::start();
    let mut at = t.wait_for("phantomdb> ", 0);
    t.send(
        "SELECT sum(a.value * b.value) FROM generate_series(1, 200000) a, \
         generate_series(1, 200000) b;\r",
    );
    // Ctrl-C until the statement reports it was interrupted (the first may arrive before
    // the line editor has handed the terminal back).
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(300));
        if t.text()[at..].contains("Interrupted") {
            break;
        }
        t.send("\x03");
    }
    at = t.wait_for("Interrupted", at);
    t.wait_for("phantomdb> ", at);
    t.send("SELECT 40 + 2 AS answer;\r");
    at = t.wait_for("42", at);

    // A statement timeout reads as an error, not as an interruption.
    // Each line only once the prompt is back: the line editor drops keys typed ahead.
    t.wait_for("phantomdb> ", at);
    t.send("SET statement_timeout = '100ms';\r");
    at = t.wait_for("'100ms';", at);
    at = t.wait_for("phantomdb> ", at);
    t.send(
        "SELECT sum(a.value * b.value) FROM generate_series(1, 200000) a, \
         generate_series(1, 200000) b;\r",
    );
    at = t.wait_for("canceling statement due to statement timeout", at);
    // At an empty prompt, Ctrl-C once warns and twice exits.
    t.wait_for("phantomdb> ", at);
    t.send("\x03");
    t.wait_for("Ctrl-C again to exit", at);
    t.send("\x03");
    let status = t.child.wait().unwrap();
    assert!(status.success(), "{status:?}\n{}", t.text());
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[test]
fn serve_refuses_a_database_without_a_login_role() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let out = run(&["serve", db.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("no role that can log in")
            && err.contains("CREATE ROLE admin LOGIN SUPERUSER"),
        "{err}"
    );
}

#[test]
fn serve_finishes_running_statements_on_sigterm() {
    use phantomdb_testkit::tokio_postgres::{connect, NoTls};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db_str = db.to_str().unwrap();
    let out = run(&[
        db_str,
        "-c",
        "CREATE ROLE admin LOGIN SUPERUSER PASSWORD 'pw'",
        "-c",
        "CREATE TABLE big(id BIGINT PRIMARY KEY, v BIGINT)",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let port = free_port();
    let mut server = phantomdb()
        .args(["serve", db_str, "--listen", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::piped())
        .spawn()
        .expect("phantomdb serve");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let inserted = runtime.block_on(async {
        let conninfo = format!("host=127.0.0.1 port={port} user=admin password=pw dbname=s");
        let mut tries = 0;
        let (client, connection) = loop {
            match connect(&conninfo, NoTls).await {
                Ok(c) => break c,
                Err(_) if tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("server did not come up: {e}"),
            }
        };
        tokio::spawn(connection);
        // A statement that runs for a while; SIGTERM arrives in the middle of it.
        let statement = tokio::spawn(async move {
            client
                .execute(
                    "INSERT INTO big SELECT value, value * 2 FROM generate_series(1, 3000000) AS s(value)",
                    &[],
                )
                .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
        statement.await.expect("join").expect("the running statement finished")
    });
    let status = server.wait().expect("wait");
    assert!(status.success(), "serve exits cleanly after SIGTERM");
    assert_eq!(inserted, 3_000_000);
    let out = run(&[db_str, "--format", "csv", "-c", "SELECT count(*) FROM big"]);
    assert_eq!(
        stdout(&out).lines().last(),
        Some("3000000"),
        "{}",
        stderr(&out)
    );
}
