//! Custom data type plugins end to end (issue #14), from the shell with the built `semver`
//! library: the issue's ordering example across a restart, bad input (22P02) with the shell
//! going on, the plugin's .slt suite on the redb and memory engines, and a restart without
//! the plugin (only the typed column is refused) and with it again.

use super::{library, run, stderr, stdout, workspace_root};

/// A directory holding only the semver plugin, laid out as `scripts/phantomdb` installs it.
fn semver_plugin_dir() -> tempfile::TempDir {
    phantomdb_testkit::workspace_build();
    let dir = tempfile::tempdir().unwrap();
    let kind = dir.path().join("data_types");
    std::fs::create_dir_all(&kind).unwrap();
    let lib = library("semver");
    std::fs::copy(&lib, kind.join(lib.file_name().unwrap())).unwrap();
    dir
}

fn count_records(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        n += text
            .lines()
            .filter(|l| l.starts_with("statement ") || l.starts_with("query "))
            .count();
    }
    n
}

#[test]
fn semver_sql_suite_passes_on_redb_and_memory() {
    let plugins = semver_plugin_dir();
    let tests = workspace_root().join("plugins/data_types/semver/tests");
    let records = count_records(&tests);
    for engine in ["redb", "memory"] {
        let mut args = vec!["test", "--plugin-dir", plugins.path().to_str().unwrap()];
        if engine == "memory" {
            args.extend(["--engine", "memory"]);
        }
        args.push(tests.to_str().unwrap());
        let out = run(&args);
        assert!(
            out.status.success(),
            "{engine}: {}\n{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            stdout(&out)
                .trim_end()
                .ends_with(&format!("\n{records} passed, 0 failed")),
            "{engine}: {records} records: {}",
            stdout(&out)
        );
    }
}

#[test]
fn semver_orders_by_precedence_across_restarts_and_without_its_plugin() {
    let plugins = semver_plugin_dir();
    let empty = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let (db, with, without) = (
        db.to_str().unwrap(),
        plugins.path().to_str().unwrap(),
        empty.path().to_str().unwrap(),
    );
    let ordered = "v\n1.0.0-rc.1\n1.0.0\n1.9.0\n1.10.0\n";
    let out = run(&[
        db,
        "--plugin-dir",
        with,
        "-c",
        "CREATE TABLE r (v semver)",
        "-c",
        "INSERT INTO r VALUES ('1.10.0'), ('1.9.0'), ('1.0.0-rc.1'), ('1.0.0')",
        "-c",
        "CREATE TABLE plain (i INT)",
        "-c",
        "INSERT INTO plain VALUES (7)",
        "-c",
        ".mode csv",
        "-c",
        "SELECT v FROM r ORDER BY v",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).ends_with(ordered), "{}", stdout(&out));

    // After a restart, and in JSON: formatted text, never storage bytes.
    let out = run(&[
        db,
        "--plugin-dir",
        with,
        "--format",
        "json",
        "-c",
        "SELECT v FROM r ORDER BY v",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json = stdout(&out);
    let at = |s: &str| {
        json.find(s)
            .unwrap_or_else(|| panic!("{s} missing: {json}"))
    };
    assert!(at("\"1.0.0-rc.1\"") < at("\"1.0.0\"") && at("\"1.9.0\"") < at("\"1.10.0\""));

    // Bad input: 22P02 naming the type and the value; the shell goes on (-f keeps going).
    let script = dir.path().join("bad.sql");
    std::fs::write(
        &script,
        "SELECT '1.x'::semver;\nSELECT count(*) AS n FROM r;\n",
    )
    .unwrap();
    let out = run(&[
        db,
        "--plugin-dir",
        with,
        "--format",
        "csv",
        "-c",
        ".errors verbose",
        "-f",
        script.to_str().unwrap(),
    ]);
    assert!(
        stderr(&out).contains("22P02: invalid input syntax for type semver: \"1.x\""),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).ends_with("n\n4\n"), "{}", stdout(&out));

    // Without the plugin: what touches r.v fails, naming column, type and plugin; other
    // tables (and r's row count) still work; nothing is rewritten.
    let missing = "column r.v has type semver from plugin semver (not loaded)";
    for sql in [
        "SELECT v FROM r",
        "SELECT * FROM r WHERE v IS NOT NULL",
        "INSERT INTO r VALUES (NULL)",
        "DELETE FROM r",
    ] {
        let out = run(&[db, "--plugin-dir", without, "-c", sql]);
        assert!(!out.status.success(), "{sql} succeeded");
        assert!(stderr(&out).contains(missing), "{sql}: {}", stderr(&out));
    }
    let out = run(&[
        db,
        "--plugin-dir",
        without,
        "--format",
        "csv",
        "-c",
        "SELECT i FROM plain",
        "-c",
        "SELECT count(*) AS n FROM r",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "i\n7\nn\n4\n");

    // With the plugin again, everything is back.
    let out = run(&[
        db,
        "--plugin-dir",
        with,
        "--format",
        "csv",
        "-c",
        "SELECT v FROM r ORDER BY v",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), ordered);
}
