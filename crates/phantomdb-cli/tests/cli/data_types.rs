//! Custom data type plugins end to end (issue #14), from the shell with the built `semver`
//! and `uuid` libraries (and the `priority_type` fixture, a type ordered by sort keys): the
//! issue's ordering example across a restart, bad input (22P02) with the shell going on, the
//! plugins' .slt suites on the redb, memory and s3_storage (a real S3-protocol server on
//! loopback) engines, a key lookup on a `uuid` primary key, a restart without the plugin
//! (only the typed table is refused) and with it again, and `UNLOAD PLUGIN` of a type in use.

use super::{library, run, stderr, stdout, workspace_root};

/// A directory holding the type plugins (and `s3_storage`), laid out as `scripts/phantomdb`
/// installs them.
fn type_plugin_dir() -> tempfile::TempDir {
    phantomdb_testkit::workspace_build();
    let dir = tempfile::tempdir().unwrap();
    for (kind, names) in [
        ("data_types", &["semver", "uuid"][..]),
        ("storage_backends", &["s3_storage"][..]),
        ("fixtures", &["priority_type"][..]),
    ] {
        let kind = dir.path().join(kind);
        std::fs::create_dir_all(&kind).unwrap();
        for name in names {
            let lib = library(name);
            std::fs::copy(&lib, kind.join(lib.file_name().unwrap())).unwrap();
        }
    }
    dir
}

/// The records of the .slt files under `dir` that run on `engine` (`onlyif`/`skipif`
/// conditions on the engine's label are honoured).
fn count_records(dir: &std::path::Path, engine: &str) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let mut runs = true;
        for line in text.lines() {
            if let Some(label) = line.strip_prefix("onlyif ") {
                runs &= label.trim() == engine;
            } else if let Some(label) = line.strip_prefix("skipif ") {
                runs &= label.trim() != engine;
            } else if line.starts_with("statement ") || line.starts_with("query ") {
                n += usize::from(runs);
                runs = true;
            }
        }
    }
    n
}

#[test]
fn type_sql_suites_pass_on_redb_memory_and_s3_storage() {
    let plugins = type_plugin_dir();
    let root = tempfile::tempdir().unwrap();
    let server = phantomdb_testkit::S3TestServer::start(root.path()).expect("start the S3 server");
    for (plugin, folder) in [
        ("semver", "data_types"),
        ("uuid", "data_types"),
        ("priority_type", "fixtures"),
    ] {
        let tests = workspace_root().join(format!("plugins/{folder}/{plugin}/tests"));
        for engine in ["redb", "memory", "s3_storage"] {
            let records = count_records(&tests, engine);
            let config = format!("s3_storage={}", server.config_json(plugin));
            let mut args = vec!["test", "--plugin-dir", plugins.path().to_str().unwrap()];
            if engine != "redb" {
                args.extend(["--engine", engine]);
            }
            if engine == "s3_storage" {
                args.extend(["--plugin-config", &config]);
            }
            args.push(tests.to_str().unwrap());
            let out = run(&args);
            assert!(
                out.status.success(),
                "{plugin} on {engine}: {}\n{}",
                stdout(&out),
                stderr(&out)
            );
            assert!(
                stdout(&out)
                    .trim_end()
                    .ends_with(&format!("\n{records} passed, 0 failed")),
                "{plugin} on {engine}: {records} records: {}",
                stdout(&out)
            );
        }
    }
    // The s3_storage runs wrote their tables to the server.
    let written = std::fs::read_dir(root.path().join(&server.bucket))
        .unwrap()
        .count();
    assert!(written > 0, "nothing was written to the S3 server");
}

#[test]
fn semver_orders_by_precedence_across_restarts_and_without_its_plugin() {
    let plugins = type_plugin_dir();
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

#[test]
fn uuid_keys_are_looked_up_formatted_and_refused_without_the_plugin() {
    let plugins = type_plugin_dir();
    let empty = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("u.db");
    let (db, with, without) = (
        db.to_str().unwrap(),
        plugins.path().to_str().unwrap(),
        empty.path().to_str().unwrap(),
    );
    let out = run(&[
        db,
        "--plugin-dir",
        with,
        "--format",
        "csv",
        "-c",
        "CREATE TABLE accounts (id uuid PRIMARY KEY, owner TEXT)",
        "-c",
        "INSERT INTO accounts VALUES ('{6BA7B810-9DAD-11D1-80B4-00C04FD430C8}', 'ann'), \
         ('6ba7b8119dad11d180b400c04fd430c8', 'bob')",
        "-c",
        "CREATE TABLE plain (i INT)",
        "-c",
        "INSERT INTO plain VALUES (7)",
        "-c",
        "EXPLAIN SELECT owner FROM accounts WHERE id = '6ba7b811-9dad-11d1-80b4-00c04fd430c8'",
        "-c",
        "SELECT owner FROM accounts WHERE id = '6ba7b811-9dad-11d1-80b4-00c04fd430c8'",
        "-c",
        ".schema accounts",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("PhantomKeyLookupExec: table=accounts"),
        "no key lookup: {text}"
    );
    assert!(text.contains("owner\nbob\n"), "{text}");
    assert!(
        text.contains("CREATE TABLE accounts (id uuid NOT NULL, owner TEXT, PRIMARY KEY (id))"),
        "{text}"
    );

    // Bad input: 22P02 naming the type and the value; the shell goes on (-f keeps going).
    let script = dir.path().join("bad.sql");
    std::fs::write(
        &script,
        "SELECT '12345'::uuid;\nINSERT INTO accounts VALUES ('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'dup');\nSELECT count(*) AS n FROM accounts;\n",
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
    let err = stderr(&out);
    assert!(
        err.contains("22P02: invalid input syntax for type uuid: \"12345\""),
        "{err}"
    );
    assert!(
        err.contains("duplicate primary key (id) = (6ba7b810-9dad-11d1-80b4-00c04fd430c8)"),
        "{err}"
    );
    assert!(stdout(&out).ends_with("n\n2\n"), "{}", stdout(&out));

    // Without the plugin: the table is reported, reads and writes of it fail naming the
    // column, type and plugin; other tables work.
    let out = run(&[
        db,
        "--plugin-dir",
        without,
        "--format",
        "csv",
        "-c",
        "SELECT name, status FROM phantomdb_tables() ORDER BY name",
        "-c",
        "SELECT i FROM plain",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "name,status\naccounts,type uuid from plugin uuid not loaded\nplain,available\ni\n7\n"
    );
    let missing = "column accounts.id has type uuid from plugin uuid (not loaded)";
    for sql in [
        "SELECT id FROM accounts",
        "INSERT INTO accounts (owner) VALUES ('cy')",
        "UPDATE accounts SET owner = 'x'",
    ] {
        let out = run(&[db, "--plugin-dir", without, "-c", sql]);
        assert!(!out.status.success(), "{sql} succeeded");
        assert!(stderr(&out).contains(missing), "{sql}: {}", stderr(&out));
    }

    // With the plugin again, everything is back, unchanged.
    let out = run(&[
        db,
        "--plugin-dir",
        with,
        "--format",
        "csv",
        "-c",
        "SELECT id, owner FROM accounts ORDER BY id",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "id,owner\n6ba7b810-9dad-11d1-80b4-00c04fd430c8,ann\n6ba7b811-9dad-11d1-80b4-00c04fd430c8,bob\n"
    );
}

#[test]
fn unloading_a_type_plugin_in_use_leaves_its_tables_failing_until_it_is_loaded_again() {
    let plugins = type_plugin_dir();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("unload.db");
    let lib = plugins
        .path()
        .join("data_types")
        .join(library("semver").file_name().unwrap());
    let script = dir.path().join("unload.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE TABLE r (v semver);\n\
             INSERT INTO r VALUES ('1.10.0'), ('1.9.0');\n\
             CREATE TABLE plain (i INT);\n\
             INSERT INTO plain VALUES (7);\n\
             UNLOAD PLUGIN semver;\n\
             SELECT v FROM r;\n\
             INSERT INTO r VALUES ('2.0.0');\n\
             SELECT i FROM plain;\n\
             SELECT name, status FROM phantomdb_tables() ORDER BY name;\n\
             LOAD PLUGIN '{}';\n\
             SELECT v FROM r ORDER BY v;\n",
            lib.display()
        ),
    )
    .unwrap();
    let out = run(&[
        db.to_str().unwrap(),
        "--plugin-dir",
        plugins.path().to_str().unwrap(),
        "--format",
        "csv",
        "-c",
        ".errors verbose",
        "-f",
        script.to_str().unwrap(),
    ]);
    let (text, err) = (stdout(&out), stderr(&out));
    // The unload is allowed; the table then fails as after a restart without the plugin
    // (the read and the write), other tables work.
    let missing = "column r.v has type semver from plugin semver (not loaded)";
    assert_eq!(err.matches(missing).count(), 2, "{err}");
    assert!(text.contains("i\n7\n"), "{text}");
    assert!(
        text.contains(
            "name,status\nplain,available\nr,type semver from plugin semver not loaded\n"
        ),
        "{text}"
    );
    // Loading it again brings the table back, unchanged.
    assert!(text.ends_with("v\n1.9.0\n1.10.0\n"), "{text}\n{err}");
}
