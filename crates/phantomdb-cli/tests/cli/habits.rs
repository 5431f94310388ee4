//! The shell and `phantomdb test` with the habits of sqlite3, duckdb and psql: statements
//! answered one at a time through pipes, readable errors, column names as written, `.dump`
//! and `.read`, `.import`, completion, history, progress, and record-level test results.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use super::{phantomdb, plugin_dir, run, run_stdin, stderr, stdout, workspace_root, Terminal};

/// The shell as a coprocess: statements written one at a time, output read line by line.
struct Coprocess {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    errors: Receiver<String>,
}

impl Coprocess {
    fn start(args: &[&str]) -> Coprocess {
        let mut child = phantomdb()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("phantomdb runs");
        let stdin = child.stdin.take().unwrap();
        let lines = reader(child.stdout.take().unwrap());
        let errors = reader(child.stderr.take().unwrap());
        Coprocess {
            child,
            stdin,
            lines,
            errors,
        }
    }

    fn write(&mut self, text: &str) {
        self.stdin.write_all(text.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next `n` lines of standard output. The shell still has its standard input open
    /// (nothing more is written), so they can only come from statements already written.
    fn read(&self, n: usize) -> Vec<String> {
        (0..n).map(|_| next_line(&self.lines)).collect()
    }

    fn read_error(&self) -> String {
        next_line(&self.errors)
    }
}

fn reader(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn next_line(rx: &Receiver<String>) -> String {
    // Generous, so that only a shell that waits for more input fails (it would wait forever).
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(line) => line,
        Err(RecvTimeoutError::Timeout) => panic!("the shell did not answer"),
        Err(RecvTimeoutError::Disconnected) => panic!("the shell ended"),
    }
}

#[test]
fn a_coprocess_gets_each_answer_before_writing_the_next_statement() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let mut shell = Coprocess::start(&[db.to_str().unwrap(), "--format", "csv"]);
    shell.write("SELECT 1;\n");
    assert_eq!(shell.read(2), ["1", "1"]);
    shell.write("CREATE TABLE t (id INT PRIMARY KEY, body TEXT);\n");
    // A statement over several lines, with a `;` in a string and in a dollar-quoted string.
    shell.write("INSERT INTO t VALUES (1, 'a;b'),\n  (2, $$c;d$$);\nSELECT count(*) AS n\n");
    shell.write("  FROM t;\n");
    assert_eq!(shell.read(2), ["n", "2"]);
    // An error is reported at once, and the shell goes on.
    shell.write("SELECT 1/0;\n");
    assert_eq!(shell.read_error(), "Error: division by zero");
    shell.write(".tables\n");
    assert_eq!(shell.read(1), ["t (redb)"]);
    shell.write("SELECT body FROM t ORDER BY id;\n");
    assert_eq!(shell.read(3), ["body", "a;b", "c;d"]);
    drop(shell.stdin);
    let status = shell.child.wait().unwrap();
    assert!(
        !status.success(),
        "a failed statement makes the exit status non-zero"
    );
}

#[test]
fn errors_read_like_postgres_with_line_caret_and_sqlstate() {
    let out = run(&["-c", "SELECT 1;\nSELECT * FROM t WHER x"]);
    assert_eq!(
        stderr(&out),
        "Error: syntax error at or near \"x\"\nLINE 2: SELECT * FROM t WHER x\n                             ^\n"
    );
    let out = run(&["-c", ".errors verbose", "-c", "SELECT * FROM nosuch"]);
    assert_eq!(
        stderr(&out),
        "Error: 42P01: table \"nosuch\" does not exist\n"
    );
    let out = run(&["-c", ".errors verbose", "-c", "SELECT 10 / 0"]);
    assert_eq!(stderr(&out), "Error: 22012: division by zero\n");
    let out = run(&["-c", ".errors verbose", "-c", "SELEC 1"]);
    assert_eq!(
        stderr(&out),
        "Error: 42601: syntax error at or near \"SELEC\"\nLINE 1: SELEC 1\n        ^\n\
         DETAIL: expected an SQL statement\n"
    );
    // In JSON mode, one JSON object per error.
    let out = run(&[
        "--format",
        "json",
        "-c",
        "SELECT nosuch FROM (SELECT 1 AS a) t",
    ]);
    let error: serde_json::Value = serde_json::from_str(stderr(&out).trim()).unwrap();
    assert_eq!(error["error"], "column \"nosuch\" does not exist");
    assert_eq!(error["sqlstate"], "42703");
    let out = run(&["--format", "json", "-c", "SELECT 'open"]);
    let error: serde_json::Value = serde_json::from_str(stderr(&out).trim()).unwrap();
    assert_eq!(error["sqlstate"], "42601");
    assert_eq!(error["position"]["column"], 8);
}

/// Text that only Rust's `Debug` output or type names would put in a message.
const DEBUG_TEXT: &[&str] = &[
    "Error(",
    "DataFusionError",
    "ParserError",
    "TokenizerError",
    "ArrowError",
    "Some(",
    "None",
    "Box<",
    "Arc<",
    "{ ",
    "Error during planning",
    "Arrow error",
    "SQL error",
    "Schema error",
];

fn assert_readable(message: &str) {
    assert!(
        !message.contains(['\t', '\n']) && !message.contains("\\n"),
        "one line: {message:?}"
    );
    for bad in DEBUG_TEXT {
        assert!(!message.contains(bad), "{bad:?} in the message {message:?}");
    }
}

/// Every error the SQL suites provoke (on every statement they expect to fail), and a list of
/// common mistakes, reads without Rust debug text.
#[test]
fn no_error_message_shows_rust_debug_text() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("errors.log");
    let root = workspace_root();
    let out = run(&[
        "test",
        "--error-log",
        log.to_str().unwrap(),
        "--plugin-dir",
        plugin_dir().to_str().unwrap(),
        root.join("tests/slt").to_str().unwrap(),
        root.join("plugins/function_extensions/math_functions/tests")
            .to_str()
            .unwrap(),
        root.join("plugins/function_extensions/string_functions/tests")
            .to_str()
            .unwrap(),
    ]);
    assert!(out.status.success(), "{}", stdout(&out));
    let logged = std::fs::read_to_string(&log).unwrap();
    let messages: Vec<&str> = logged.lines().collect();
    assert!(messages.len() >= 20, "few errors logged: {logged}");
    for line in &messages {
        let (sqlstate, message) = line.split_once('\t').expect("SQLSTATE<TAB>message");
        assert_eq!(sqlstate.len(), 5, "{line}");
        assert_readable(message);
    }
    let mistakes = [
        "SELEC 1",
        "SELECT 1 +",
        "SELECT 1 2",
        "SELECT * FROM nosuch",
        "SELECT nosuch FROM (SELECT 1 AS a) t",
        "SELECT 1 / 0",
        "SELECT CAST('x' AS INT)",
        "SELECT no_such_function(1)",
        "SELECT abs('x', 'y')",
        "CREATE TABLE t (a INT PRIMARY KEY)",
        "CREATE TABLE t (a INT PRIMARY KEY)",
        "INSERT INTO t VALUES (1), (1)",
        "INSERT INTO t VALUES ('x')",
        "INSERT INTO t (nosuch) VALUES (1)",
        "UPDATE t SET nosuch = 1",
        "DROP TABLE nosuch",
        "COMMIT",
        "SET statement_timeout = 'soon'",
        "COPY t FROM '/no/such/file.csv'",
        "SELECT a FROM t, t",
        "CREATE TABLE u (a INT) USING no_such_engine",
        "EXECUTE nosuch",
    ];
    let script: String = mistakes.iter().map(|m| format!("{m};\n")).collect();
    let unterminated = run(&["-c", "SELECT 'unterminated"]);
    assert!(
        stderr(&unterminated).starts_with("Error: unterminated string literal\nLINE 1: "),
        "{}",
        stderr(&unterminated)
    );
    let out = run_stdin(&["--format", "json"], &script);
    let errors: Vec<serde_json::Value> = stderr(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per error"))
        .collect();
    assert_eq!(errors.len(), mistakes.len() - 1, "{}", stderr(&out));
    for e in &errors {
        assert_readable(e["error"].as_str().unwrap());
        assert_eq!(e["sqlstate"].as_str().unwrap().len(), 5, "{e}");
    }
}

/// Literals and function calls on literals are named as written; DuckDB, the reference,
/// names them the same.
#[test]
fn result_columns_are_named_as_written_like_duckdb() {
    let items = "1, 'a', abs(-3), gcd(12,18), lower('ABC'), 2.5, 1 AS x";
    let out = run(&[
        "--plugin-dir",
        plugin_dir().to_str().unwrap(),
        "--format",
        "json",
        "-c",
        &format!("SELECT {items}"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let ours: Vec<String> = rows[0].as_object().unwrap().keys().cloned().collect();
    let python = workspace_root().join("bench/.venv/bin/python");
    let duck = std::process::Command::new(&python)
        .args([
            "-c",
            &format!(
                "import duckdb, json; print(json.dumps(duckdb.sql(\"SELECT {items}\").columns))"
            ),
        ])
        .output()
        .unwrap_or_else(|e| panic!("{} with duckdb is needed: {e}", python.display()));
    assert!(duck.status.success(), "{}", stderr(&duck));
    let mut theirs: Vec<String> = serde_json::from_str(stdout(&duck).trim()).unwrap();
    // serde_json's objects are ordered by key.
    theirs.sort();
    assert_eq!(ours, theirs);
    // The table header shows them too, and prepared statements describe them so.
    let out = run(&["--format", "csv", "-c", "SELECT 1 + 1, 'x' || 'y' AS xy"]);
    assert_eq!(stdout(&out), "1 + 1,xy\n2,xy\n");
}

#[test]
fn dump_and_read_recreate_tables_rows_types_and_engines() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let dump = dir.path().join("dump.sql");
    let setup = "\
        CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL, price DOUBLE DEFAULT 0, \
            qty INT, ok BOOLEAN, day DATE, at TIMESTAMP, amount DECIMAL(10,2));\n\
        INSERT INTO items VALUES (1, 'it''s', 1.5, 3, true, DATE '2024-02-29', \
            TIMESTAMP '2024-01-02 03:04:05', 12.34),\n\
            (2, 'two\nlines', -0.1, NULL, false, NULL, NULL, NULL),\n\
            (3, '', 1e-7, -5, NULL, DATE '1970-01-01', TIMESTAMP '1999-12-31 23:59:59.5', -0.01);\n\
        INSERT INTO items (id, name) SELECT value, 'n' || value FROM generate_series(10, 260);\n\
        CREATE TABLE \"Mixed Case\" (k TEXT, \"order\" INT, PRIMARY KEY (k)) USING memory;\n\
        INSERT INTO \"Mixed Case\" VALUES ('a', 1), ('b', NULL);\n\
        CREATE TABLE empty (x INT);\n\
        CREATE VIEW cheap AS SELECT id, name FROM items WHERE price < 1;\n";
    let out = run_stdin(&[a.to_str().unwrap()], setup);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&[
        a.to_str().unwrap(),
        "-c",
        &format!(".output {}", dump.display()),
        "-c",
        ".dump",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&[
        b.to_str().unwrap(),
        "-c",
        &format!(".read {}", dump.display()),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let snapshot = |db: &Path| {
        let out = run(&[
            db.to_str().unwrap(),
            "--format",
            "csv",
            "-c",
            ".schema",
            "-c",
            "SELECT * FROM phantomdb_tables() ORDER BY name",
            "-c",
            "SELECT * FROM phantomdb_columns() ORDER BY table_name, position",
            "-c",
            "SELECT * FROM items ORDER BY id",
            "-c",
            "SELECT * FROM \"Mixed Case\" ORDER BY k",
            "-c",
            "SELECT count(*) AS n FROM empty",
            "-c",
            "SELECT * FROM cheap ORDER BY id",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let (before, after) = (snapshot(&a), snapshot(&b));
    assert!(before.contains("2,\"two\nlines\",-0.1"), "{before}");
    assert!(before.contains("USING memory"), "{before}");
    assert_eq!(before, after);
    // One table alone.
    let out = run(&[a.to_str().unwrap(), "-c", ".dump empty"]);
    assert_eq!(
        stdout(&out),
        "BEGIN;\nCREATE TABLE empty (x INT) USING redb;\nCOMMIT;\n"
    );
}

#[test]
fn import_output_mode_open_plugins_and_engines() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("people.csv");
    std::fs::write(&csv, "id,name,score\n1,ann,2.5\n2,bob,\n3,\"c, d\",4\n").unwrap();
    let other = dir.path().join("other.db");
    let results = dir.path().join("results.txt");
    let script = format!(
        ".import {csv} people\n\
         .mode markdown\n\
         SELECT id, name, score FROM people ORDER BY id;\n\
         .import {csv} people\n\
         .output {results}\n\
         .mode csv\n\
         SELECT count(*) AS n FROM people;\n\
         .output\n\
         .schema people\n\
         .open {other}\n\
         CREATE TABLE o (x INT);\n\
         .tables\n\
         .plugins\n\
         .engines\n",
        csv = csv.display(),
        results = results.display(),
        other = other.display()
    );
    let out = run_stdin(&[], &script);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with(
            "| id | name | score |\n|---|---|---|\n| 1 | ann | 2.5 |\n| 2 | bob | NULL |\n\
             | 3 | c, d | 4.0 |\n"
        ),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&results).unwrap(), "n\n6\n");
    assert!(
        text.contains("CREATE TABLE people (id BIGINT, name TEXT, score DOUBLE) USING redb;"),
        "{text}"
    );
    assert!(text.contains("\no (redb)\n"), "{text}");
    assert!(text.contains("builtin 0.1.0 ("), "{text}");
    assert!(
        text.contains("memory (plugin builtin): transactions"),
        "{text}"
    );
}

#[test]
fn test_runner_counts_records_and_reports_each_failure() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hundred.slt");
    let mut text = String::from("statement ok\nCREATE TABLE t (i INT, r DOUBLE, s TEXT)\n\n");
    let mut wrong_lines = Vec::new();
    let mut line = 4;
    for i in 1..=99 {
        // Three results are wrong on purpose.
        let wrong = [20, 50, 80].contains(&i);
        if wrong {
            wrong_lines.push(line);
        }
        let expected = if wrong { i + 1000 } else { i };
        text.push_str(&format!("query I\nSELECT {i}\n----\n{expected}\n\n"));
        line += 5;
    }
    std::fs::write(&file, &text).unwrap();
    let out = run(&["test", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let report = stdout(&out);
    assert!(
        report.trim_end().ends_with("\n97 passed, 3 failed"),
        "{report}"
    );
    for l in &wrong_lines {
        assert!(
            report.contains(&format!("{}:{l}: query result mismatch", file.display())),
            "line {l}: {report}"
        );
    }
    assert!(
        report.contains("-   1020\n+   20"),
        "expected and actual: {report}"
    );
    // --fail-fast stops at the first failure.
    let out = run(&["test", "--fail-fast", file.to_str().unwrap()]);
    assert!(
        stdout(&out).trim_end().ends_with("\n20 passed, 1 failed"),
        "{}",
        stdout(&out)
    );

    // Values as sqllogictest writes them, and `halt` ends a file.
    let conventions = dir.path().join("conventions.slt");
    std::fs::write(
        &conventions,
        "query IRT\nSELECT 1, 2.5, NULL\n----\n1 2.500 NULL\n\n\
         query T\nSELECT ''\n----\n(empty)\n\n\
         query R\nSELECT CAST(1 AS DOUBLE) / 3\n----\n0.333\n\n\
         halt\n\nquery I\nSELECT 'never runs'\n----\n1\n",
    )
    .unwrap();
    let out = run(&["test", conventions.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(
        stdout(&out).trim_end().ends_with("\n3 passed, 0 failed"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn tab_completion_history_and_progress_at_a_terminal() {
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("t.db");
    let mut t = Terminal::start_in(home.path(), &[db.to_str().unwrap()]);
    let mut at = t.wait_for("phantomdb> ", 0);
    t.send("CREATE TABLE shipments (id INT, customer_name TEXT);\r");
    at = t.wait_for("phantomdb> ", at);
    // Table, column and keyword completion.
    t.send("SELECT customer_n\t FR\t ship\t;\r");
    at = t.wait_for("customer_name", at);
    at = t.wait_for("+---------------+", at);
    at = t.wait_for("phantomdb> ", at);
    assert!(
        t.text().contains("SELECT customer_name FROM shipments"),
        "{}",
        t.text()
    );
    // A statement over 2 s shows its progress; Ctrl-C cancels it.
    t.send(
        "SELECT sum(a.value * b.value) FROM generate_series(1, 200000) a, \
         generate_series(1, 200000) b;\r",
    );
    at = t.wait_for("running for", at);
    t.send("\x03");
    at = t.wait_for("Interrupted", at);
    t.wait_for("phantomdb> ", at);
    t.send(".quit\r");
    assert!(t.child.wait().unwrap().success());

    // The history is there in the next session: Up brings back the last statement.
    let mut t = Terminal::start_in(home.path(), &[db.to_str().unwrap()]);
    let at = t.wait_for("phantomdb> ", 0);
    t.send("\x1b[A\x1b[A");
    let at = t.wait_for("generate_series(1, 200000) b;", at);
    t.send("\x03");
    let at = t.wait_for("phantomdb> ", at);
    t.send(".quit\r");
    t.wait_for(".quit", at);
    let status = t.child.wait().unwrap();
    assert!(status.success(), "{status:?}\n{}", t.text());
}
