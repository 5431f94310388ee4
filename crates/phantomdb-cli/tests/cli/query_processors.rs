//! Query processor plugins end to end (issue #15): `row_level_security` (its .slt suite,
//! EXPLAIN), `audit_log` (the shell's streaming path, a deny-list, psql against
//! `phantomdb serve`), and rewrites that panic, fail or return plans the host refuses, in
//! modes `fail` and `skip` (the `garbage_plugin` fixture).

use std::path::Path;
use std::process::Stdio;

use super::{free_port, library, phantomdb, run, run_stdin, stderr, stdout, workspace_root};

/// A directory holding only the given plugin libraries (so `--plugin-dir` loads just them).
fn only_plugins(names: &[&str]) -> tempfile::TempDir {
    phantomdb_testkit::workspace_build();
    let dir = tempfile::tempdir().unwrap();
    for name in names {
        let lib = library(name);
        std::fs::copy(&lib, dir.path().join(lib.file_name().unwrap())).unwrap();
    }
    dir
}

const RLS_CONFIG: &str = r#"row_level_security={"policies": {
    "orders": "tenant_id = current_setting('app.tenant')::int",
    "notes": {"using": "author = current_user OR shared", "check": "author = current_user"}}}"#;

fn records(file: &Path) -> usize {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("statement ") || l.starts_with("query "))
        .count()
}

#[test]
fn row_level_security_suite_passes() {
    let plugins = only_plugins(&["row_level_security"]);
    let suite = workspace_root()
        .join("plugins/query_processors/row_level_security/tests/row_level_security.slt");
    let out = run(&[
        "test",
        "--plugin-dir",
        plugins.path().to_str().unwrap(),
        "--plugin-config",
        RLS_CONFIG,
        suite.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out)
            .trim_end()
            .ends_with(&format!("{} passed, 0 failed", records(&suite))),
        "{}",
        stdout(&out)
    );
}

#[test]
fn row_level_security_shows_in_explain_and_binds_the_owner_only_when_asked() {
    let plugins = only_plugins(&["row_level_security"]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rls.db");
    let out = run(&[
        "--plugin-dir",
        plugins.path().to_str().unwrap(),
        "--plugin-config",
        RLS_CONFIG,
        "--format",
        "csv",
        db.to_str().unwrap(),
        "-c",
        "CREATE TABLE orders (id INT, tenant_id INT)",
        "-c",
        "INSERT INTO orders VALUES (1, 1), (2, 2), (3, 2)",
        "-c",
        "SELECT count(*) AS owner_sees FROM orders",
        "-c",
        "SET phantomdb.rls_enforce = on",
        "-c",
        "SET app.tenant = '2'",
        "-c",
        "SELECT count(*) AS tenant_sees FROM orders",
        "-c",
        "EXPLAIN SELECT id FROM orders",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("owner_sees\n3\n"), "{text}");
    assert!(text.contains("tenant_sees\n2\n"), "{text}");
    assert!(
        text.contains("Filter: orders.tenant_id = Int32(2)"),
        "{text}"
    );
    assert!(
        text.contains("query_processors,changed by: row_level_security (analyzed)"),
        "{text}"
    );
}

#[test]
fn row_level_security_refuses_a_bad_configuration() {
    let plugins = only_plugins(&["row_level_security"]);
    let out = run(&[
        "--plugin-dir",
        plugins.path().to_str().unwrap(),
        "--plugin-config",
        r#"row_level_security={"policies": {"orders": ""}}"#,
        "-c",
        "SELECT 1",
    ]);
    assert!(
        stderr(&out).contains("the using expression of table orders is empty"),
        "{}",
        stderr(&out)
    );
}

fn audit_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn audit_config(path: &Path) -> String {
    format!(
        r#"audit_log={{"path": {}, "deny": ["(?i)^\\s*drop\\s+table"]}}"#,
        serde_json::Value::from(path.to_str().unwrap())
    )
}

#[test]
fn audit_log_writes_one_line_per_statement_from_the_shell() {
    let plugins = only_plugins(&["audit_log"]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let db = dir.path().join("a.db");
    let config = audit_config(&log);
    let args = [
        "--plugin-dir",
        plugins.path().to_str().unwrap(),
        "--plugin-config",
        &config,
        "--format",
        "csv",
        db.to_str().unwrap(),
    ];
    // Three statements, one a syntax error, through the shell's streaming path.
    let out = run_stdin(
        &args,
        "CREATE TABLE t (id INT);\nSELEC 1;\nINSERT INTO t VALUES (1), (2);\n",
    );
    assert!(stderr(&out).contains("syntax error"), "{}", stderr(&out));
    let lines = audit_lines(&log);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["sql"], "CREATE TABLE t (id INT)");
    assert_eq!(lines[0]["error"], serde_json::Value::Null);
    assert_eq!(lines[1]["sql"], "SELEC 1;");
    assert_eq!(lines[1]["error"]["sqlstate"], "42601");
    assert_eq!(lines[1]["rows"], serde_json::Value::Null);
    assert_eq!(lines[2]["rows"], 2);
    for line in &lines {
        assert_eq!(line["user"], "phantomdb");
        assert_eq!(line["database"], "a");
        assert!(line["time"].as_str().unwrap().ends_with('Z'), "{line}");
        assert!(line["duration_us"].is_u64(), "{line}");
    }

    // A query's rows are counted as they stream; a password is masked; the deny-list
    // refuses with 42501 and the table is still there.
    let out = run_stdin(
        &args,
        ".errors verbose\nSELECT * FROM t;\nCREATE ROLE r PASSWORD 'hunter2';\nDROP TABLE t;\nSELECT count(*) AS n FROM t;\n",
    );
    assert!(
        stderr(&out).contains("Error: 42501: statement rejected by query processor audit_log"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).ends_with("n\n2\n"), "{}", stdout(&out));
    let lines = audit_lines(&log);
    assert_eq!(lines.len(), 7, "{lines:?}");
    assert_eq!(lines[3]["sql"], "SELECT * FROM t");
    assert_eq!(lines[3]["rows"], 2);
    assert_eq!(lines[4]["sql"], "CREATE ROLE r PASSWORD '***'");
    assert!(!std::fs::read_to_string(&log).unwrap().contains("hunter2"));
    assert_eq!(lines[5]["error"]["sqlstate"], "42501");
    assert_eq!(lines[6]["rows"], 1);
}

#[test]
fn audit_log_sees_statements_from_psql() {
    let plugins = only_plugins(&["audit_log"]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let db = dir.path().join("served.db");
    let out = run(&[
        db.to_str().unwrap(),
        "-c",
        "CREATE ROLE admin LOGIN SUPERUSER PASSWORD 'pw'",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = audit_lines(&log).len();
    let port = free_port();
    let config = audit_config(&log);
    let mut server = phantomdb()
        .args([
            "serve",
            "--plugin-dir",
            plugins.path().to_str().unwrap(),
            "--plugin-config",
            &config,
            db.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("phantomdb serve");
    let psql = |sql: &str| {
        std::process::Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "admin",
                "-d",
                "served",
                "-X",
                "-A",
                "-t",
                "-c",
                sql,
            ])
            .env("PGPASSWORD", "pw")
            .output()
            .expect("psql runs")
    };
    let mut tries = 0;
    while !psql("SELECT 1").status.success() {
        tries += 1;
        assert!(tries < 100, "server did not come up");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = psql("CREATE TABLE p (id INT)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = psql("SELEC 2");
    assert!(!out.status.success());
    let out = psql("DROP TABLE p");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rejected by query processor audit_log"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = server.kill();
    let _ = server.wait();
    let lines: Vec<serde_json::Value> = audit_lines(&log).into_iter().skip(before).collect();
    let find = |sql: &str| {
        lines
            .iter()
            .find(|l| l["sql"] == sql)
            .unwrap_or_else(|| panic!("no line for {sql}: {lines:?}"))
            .clone()
    };
    assert_eq!(find("CREATE TABLE p (id INT)")["user"], "admin");
    assert_eq!(find("SELEC 2")["error"]["sqlstate"], "42601");
    assert_eq!(find("DROP TABLE p")["error"]["sqlstate"], "42501");
}

fn garbage_shell(script: &str) -> (String, String) {
    let plugins = only_plugins(&["garbage_plugin"]);
    let out = run_stdin(
        &[
            "--plugin-dir",
            plugins.path().to_str().unwrap(),
            "--format",
            "csv",
        ],
        &format!(
            ".errors verbose\nCREATE TABLE t (id INT, v TEXT);\nINSERT INTO t VALUES (1, 'a'), (2, 'b');\n{script}"
        ),
    );
    (stdout(&out), stderr(&out))
}

const BAD_MODES: &[(&str, &str)] = &[
    ("panic", "panicked"),
    ("error", "was asked to fail"),
    ("missing_column", "no_such_column"),
    ("change_schema", "the plan's output changed"),
    ("bad_version", "plan form version 99"),
    ("bad_literal", "not-a-type"),
    ("bad_sql", "this is not ( SQL"),
];

#[test]
fn a_failing_rewrite_in_mode_fail_fails_the_statement_and_the_next_one_works() {
    let mut script = String::new();
    for (mode, _) in BAD_MODES {
        script.push_str(&format!(
            "SET bad_rewrite_fail.mode = '{mode}';\nSELECT v FROM t WHERE id = 2;\nRESET bad_rewrite_fail.mode;\nSELECT count(*) AS ok FROM t;\n"
        ));
    }
    let (out, err) = garbage_shell(&script);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("Error")).collect();
    assert_eq!(errors.len(), BAD_MODES.len(), "{err}");
    for ((mode, expected), error) in BAD_MODES.iter().zip(&errors) {
        assert!(
            error.starts_with("Error: 38000: ")
                && error.contains("query processor bad_rewrite_fail failed")
                && error.contains(expected),
            "{mode}: {error}"
        );
    }
    assert_eq!(out.matches("ok\n2\n").count(), BAD_MODES.len(), "{out}");
}

#[test]
fn a_failing_rewrite_in_mode_skip_runs_the_statement_unrewritten() {
    let mut script = String::new();
    for (mode, _) in BAD_MODES {
        script.push_str(&format!(
            "SET bad_rewrite_skip.mode = '{mode}';\nSELECT v FROM t WHERE id = 2;\n"
        ));
    }
    let (out, err) = garbage_shell(&script);
    assert!(!err.contains("Error"), "{err}");
    assert_eq!(out.matches("v\nb\n").count(), BAD_MODES.len(), "{out}");
}
