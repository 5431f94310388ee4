//! Roles, password verifiers and table privileges (included by `tests/engine.rs`).

use phantomdb::arrow::array::AsArray;
use phantomdb::datafusion::common::ScalarValue;
use phantomdb::{Connection, Database, ScramVerifier, Statement};

use super::scalar;

/// Runs `sql`, expecting it to be refused for lack of privileges; returns the message.
fn denied(c: &Connection, sql: &str) -> String {
    match c.execute(sql) {
        Ok(_) => panic!("{sql}: ran, but should have been denied"),
        Err(e) => {
            assert_eq!(e.sqlstate().code(), "42501", "{sql}: {e}");
            e.to_string()
        }
    }
}

/// Runs `sql`, which must succeed.
fn ok(c: &Connection, sql: &str) {
    c.execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The SQLSTATE `sql` fails with.
fn code(c: &Connection, sql: &str) -> String {
    match c.execute(sql) {
        Ok(_) => panic!("{sql}: should have failed"),
        Err(e) => e.sqlstate().code().to_string(),
    }
}

/// The rows of `phantomdb_roles()` as `name|login|superuser|has_password`.
fn roles(c: &Connection) -> Vec<String> {
    let b = c
        .execute("SELECT name, login, superuser, has_password FROM phantomdb_roles() ORDER BY name")
        .unwrap()
        .concat()
        .unwrap();
    (0..b.num_rows())
        .map(|r| {
            (0..b.num_columns())
                .map(|i| {
                    phantomdb::arrow::util::display::array_value_to_string(b.column(i), r).unwrap()
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

/// A PostgreSQL 15 verifier of the password `pw` (as `\password` would send it).
const PG_VERIFIER: &str = "SCRAM-SHA-256$4096:qSpBLLLNui8W//hgpKkRfg==$cjQSPh3laBga/Dqk/DH2YD4/hS54JeB4X+HN9IsIlS8=:fTYDljNYoepzt8sHeuA+BtY3Q9pn46N3aneAzZLzRfk=";

#[test]
fn roles_persist_with_scram_verifiers_and_never_their_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roles.phantomdb");
    {
        let db = Database::open(&path).unwrap();
        assert!(!db.has_login_role().unwrap());
        let c = db.connect().unwrap();
        ok(
            &c,
            "CREATE ROLE admin LOGIN SUPERUSER PASSWORD 'horse-battery-7731'",
        );
        ok(&c, "CREATE ROLE reader WITH NOLOGIN NOSUPERUSER");
        ok(
            &c,
            &format!("CREATE USER psql_user PASSWORD '{PG_VERIFIER}'"),
        );
        ok(&c, "CREATE ROLE nopass LOGIN PASSWORD NULL");
        assert_eq!(code(&c, "CREATE ROLE admin"), "42710");
        assert_eq!(code(&c, "CREATE ROLE public"), "42939");
        assert_eq!(
            code(&c, "CREATE ROLE bad PASSWORD 'SCRAM-SHA-256$4096:x$y:z'"),
            "22023"
        );
        assert_eq!(code(&c, "ALTER ROLE ghost LOGIN"), "42704");
        assert_eq!(code(&c, "DROP ROLE ghost"), "42704");
        ok(&c, "DROP ROLE IF EXISTS ghost");
        // Transactional like other DDL.
        ok(&c, "BEGIN");
        ok(&c, "CREATE ROLE temp LOGIN");
        ok(&c, "ROLLBACK");
        assert!(db.role("temp").unwrap().is_none());
        ok(
            &c,
            "ALTER ROLE reader WITH LOGIN PASSWORD 'second-secret-99'",
        );
        ok(&c, "ALTER ROLE nopass NOLOGIN");
    }
    let bytes = std::fs::read(&path).unwrap();
    for secret in ["horse-battery-7731", "second-secret-99"] {
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "the password {secret} is in the database file");
    }
    let db = Database::open(&path).unwrap();
    assert!(db.has_login_role().unwrap());
    let admin = db.role("admin").unwrap().expect("admin survived reopening");
    assert!(admin.login && admin.superuser);
    let v = admin.verifier.expect("admin has a password");
    assert_eq!(v.iterations, 4096);
    assert_eq!(v.salt.len(), 16);
    assert!(v.to_string().starts_with("SCRAM-SHA-256$4096:"));
    assert_eq!(ScramVerifier::parse(&v.to_string()), Some(v.clone()));
    let recomputed = ScramVerifier::from_password("horse-battery-7731", &v.salt, v.iterations);
    assert_eq!(recomputed, v);
    assert_ne!(
        ScramVerifier::from_password("wrong", &v.salt, v.iterations),
        v
    );
    let reader = db.role("reader").unwrap().unwrap();
    assert!(reader.login && !reader.superuser);
    let rv = reader.verifier.unwrap();
    assert_eq!(
        ScramVerifier::from_password("second-secret-99", &rv.salt, rv.iterations),
        rv
    );
    // A pre-hashed verifier is stored as given; CREATE USER implies LOGIN.
    let psql = db.role("psql_user").unwrap().unwrap();
    assert!(psql.login);
    assert_eq!(psql.verifier.unwrap().to_string(), PG_VERIFIER);
    let nopass = db.role("nopass").unwrap().unwrap();
    assert!(!nopass.login && nopass.verifier.is_none());
    let c = db.connect().unwrap();
    assert_eq!(
        roles(&c),
        vec![
            "admin|true|true|true",
            "nopass|false|false|false",
            "psql_user|true|false|true",
            "reader|true|false|true",
        ]
    );
    ok(&c, "DROP ROLE nopass, psql_user");
    assert!(db.role("psql_user").unwrap().is_none());
    assert_eq!(roles(&c).len(), 2);
}

#[test]
fn only_superusers_manage_roles_plugins_and_database_settings() {
    let db = Database::open_in_memory().unwrap();
    let owner = db.connect().unwrap();
    ok(&owner, "CREATE ROLE alice LOGIN PASSWORD 'a'");
    ok(&owner, "CREATE ROLE admin LOGIN SUPERUSER");
    let alice = db.connect_as("alice").unwrap();
    for sql in [
        "CREATE ROLE eve",
        "ALTER ROLE alice SUPERUSER",
        "ALTER ROLE admin PASSWORD 'x'",
        "DROP ROLE admin",
        "LOAD PLUGIN '/nonexistent/libplugin.so'",
        "UNLOAD PLUGIN builtin",
        "SET default_table_access_method = 'memory'",
    ] {
        denied(&alice, sql);
    }
    let engine = owner
        .execute("SHOW default_table_access_method")
        .unwrap()
        .concat()
        .unwrap();
    let engine = engine.column(engine.num_columns() - 1).as_string::<i32>();
    assert_eq!(engine.value(0), "redb");
    assert!(db.role("eve").unwrap().is_none());
    assert!(!db.role("alice").unwrap().unwrap().superuser);
    // A role may change its own password, as in PostgreSQL.
    let before = db.role("alice").unwrap().unwrap().verifier;
    ok(&alice, "ALTER ROLE alice PASSWORD 'new'");
    let after = db.role("alice").unwrap().unwrap().verifier.unwrap();
    assert_ne!(before, Some(after.clone()));
    assert_eq!(
        ScramVerifier::from_password("new", &after.salt, after.iterations),
        after
    );
    // Non-superusers see only their own row; names that are not roles see none.
    assert_eq!(roles(&alice), vec!["alice|true|false|true"]);
    assert!(roles(&db.connect_as("mallory").unwrap()).is_empty());
    // A superuser role manages roles; the bootstrap connection sees everything.
    let admin = db.connect_as("admin").unwrap();
    ok(&admin, "CREATE ROLE eve");
    ok(&admin, "ALTER ROLE alice SUPERUSER");
    assert_eq!(roles(&admin).len(), 3);
    // ... and the new superuser is one from its next statement on.
    ok(&alice, "CREATE ROLE bob");
    ok(&admin, "ALTER ROLE alice NOSUPERUSER");
    denied(&alice, "CREATE ROLE carol");
    assert_eq!(roles(&owner).len(), 4);
}

/// A database with `items` (3 rows, owned by the database owner), a `secret` table, and the
/// roles `alice` and `bob` (no privileges).
fn shop() -> (Database, Connection) {
    let db = Database::open_in_memory().unwrap();
    let owner = db.connect().unwrap();
    ok(
        &owner,
        "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT, price DOUBLE);
         INSERT INTO items VALUES (1, 'apple', 1.5), (2, 'pear', 2.0), (3, 'fig', 0.5);
         CREATE TABLE secret (id BIGINT PRIMARY KEY, code TEXT);
         INSERT INTO secret VALUES (1, 'x1'), (2, 'x2');
         CREATE ROLE alice LOGIN;
         CREATE ROLE bob LOGIN",
    );
    (db, owner)
}

#[test]
fn grants_and_revokes_apply_to_the_next_statement_of_open_connections() {
    let (db, owner) = shop();
    let alice = db.connect_as("alice").unwrap();
    let mallory = db.connect_as("mallory").unwrap();
    let msg = denied(&alice, "SELECT * FROM items");
    assert_eq!(msg, "permission denied for table items");
    ok(&owner, "GRANT SELECT ON TABLE items TO alice");
    assert_eq!(scalar(&alice, "SELECT count(*) FROM items"), 3);
    denied(&mallory, "SELECT * FROM items");
    denied(&alice, "SELECT * FROM secret");
    ok(&owner, "REVOKE SELECT ON items FROM alice");
    denied(&alice, "SELECT * FROM items");
    // PUBLIC reaches every user, stored role or not.
    ok(&owner, "GRANT SELECT ON items, secret TO PUBLIC");
    assert_eq!(scalar(&alice, "SELECT count(*) FROM secret"), 2);
    assert_eq!(scalar(&mallory, "SELECT count(*) FROM items"), 3);
    ok(&owner, "REVOKE ALL PRIVILEGES ON items, secret FROM PUBLIC");
    denied(&mallory, "SELECT * FROM items");
    // Inside a transaction too: privileges come from the statement's snapshot.
    ok(&owner, "GRANT ALL ON items TO alice");
    ok(&alice, "BEGIN");
    ok(&alice, "INSERT INTO items VALUES (4, 'kiwi', 3.0)");
    ok(&alice, "COMMIT");
    assert_eq!(scalar(&owner, "SELECT count(*) FROM items"), 4);
    // Only the owner grants; grantees must exist.
    denied(&alice, "GRANT SELECT ON items TO bob");
    denied(&alice, "GRANT SELECT ON secret TO alice");
    assert_eq!(code(&owner, "GRANT SELECT ON items TO ghost"), "42704");
    assert_eq!(code(&owner, "GRANT SELECT ON nowhere TO alice"), "42P01");
    assert_eq!(
        code(&owner, "GRANT SELECT ON items TO alice WITH GRANT OPTION"),
        "0A000"
    );
    // System tables stay readable by everyone.
    assert!(scalar(&mallory, "SELECT count(*) FROM phantomdb_tables()") >= 2);
    assert!(scalar(&mallory, "SELECT count(*) FROM phantomdb_columns()") >= 5);
}

#[test]
fn every_table_a_query_reads_needs_select() {
    let (db, owner) = shop();
    ok(&owner, "GRANT SELECT ON items TO alice");
    let alice = db.connect_as("alice").unwrap();
    let out = std::env::temp_dir().join(format!("phantomdb-denied-{}.csv", std::process::id()));
    let out = out.display();
    for sql in [
        "SELECT * FROM secret".to_string(),
        "SELECT count(*) FROM secret".into(),
        "SELECT * FROM items WHERE id IN (SELECT id FROM secret)".into(),
        "SELECT * FROM items WHERE EXISTS (SELECT 1 FROM secret WHERE secret.id = items.id)".into(),
        "SELECT name, (SELECT max(code) FROM secret) FROM items".into(),
        "WITH s AS (SELECT id FROM secret) SELECT * FROM items JOIN s USING (id)".into(),
        "SELECT id FROM items UNION ALL SELECT id FROM secret".into(),
        "SELECT * FROM items i JOIN secret s ON i.id = s.id".into(),
        "SELECT * FROM (SELECT * FROM (SELECT code FROM secret) a) b".into(),
        "EXPLAIN SELECT * FROM secret".into(),
        "EXPLAIN ANALYZE SELECT * FROM secret".into(),
        "CREATE TABLE stolen AS SELECT * FROM secret".into(),
    ] {
        assert_eq!(
            denied(&alice, &sql),
            "permission denied for table secret",
            "{sql}"
        );
    }
    // COPY TO a file is refused before what it reads: it needs a superuser (who reads all).
    for sql in [
        format!("COPY secret TO '{out}'"),
        format!("COPY (SELECT * FROM items, secret) TO '{out}'"),
    ] {
        assert_eq!(
            denied(&alice, &sql),
            "permission denied to COPY to or from a file",
            "{sql}"
        );
    }
    assert!(!std::path::Path::new(&out.to_string()).exists());
    assert_eq!(code(&owner, "SELECT * FROM stolen"), "42P01");
    // A streamed query is checked before its first row.
    match alice.execute_stream("SELECT * FROM items WHERE id IN (SELECT id FROM secret)") {
        Ok(_) => panic!("a denied query streamed"),
        Err(e) => assert_eq!(e.sqlstate().code(), "42501"),
    }
    // What alice may read still works, through all the same shapes.
    assert_eq!(
        scalar(
            &alice,
            "WITH s AS (SELECT id FROM items) SELECT count(*) FROM items WHERE id IN \
             (SELECT id FROM s) AND EXISTS (SELECT 1 FROM items x WHERE x.id = items.id)"
        ),
        3
    );
    let mut stream = alice.execute_stream("SELECT * FROM items").unwrap();
    let mut rows = 0;
    while let Some(batch) = stream.next_batch() {
        rows += batch.unwrap().num_rows();
    }
    assert_eq!(rows, 3);
}

#[test]
fn views_read_their_tables_with_their_owners_privileges() {
    let (db, owner) = shop();
    let alice = db.connect_as("alice").unwrap();
    let bob = db.connect_as("bob").unwrap();
    // A view of the database owner: a grant on the view alone is enough.
    ok(
        &owner,
        "CREATE VIEW cheap AS SELECT name FROM items WHERE price < 2",
    );
    denied(&alice, "SELECT * FROM cheap");
    ok(&owner, "GRANT SELECT ON cheap TO alice");
    assert_eq!(scalar(&alice, "SELECT count(*) FROM cheap"), 2);
    denied(&alice, "SELECT * FROM items");
    assert_eq!(
        denied(
            &alice,
            "SELECT * FROM cheap WHERE name IN (SELECT code FROM secret)"
        ),
        "permission denied for table secret"
    );
    // Views are still inlined after the check: a key predicate reaches the table's index.
    ok(&owner, "CREATE VIEW named AS SELECT id, name FROM items");
    ok(&owner, "GRANT SELECT ON named TO alice");
    let plan = super::explain(&alice, "SELECT name FROM named WHERE id = 2");
    assert!(plan.contains("PhantomKeyLookupExec"), "{plan}");
    assert_eq!(scalar(&alice, "SELECT count(*) FROM named WHERE id = 2"), 1);
    // A view owned by bob reads `secret` as bob.
    ok(&owner, "GRANT SELECT ON secret TO bob");
    ok(&bob, "CREATE VIEW codes AS SELECT code FROM secret");
    ok(
        &bob,
        "CREATE VIEW code_count AS SELECT count(*) AS n FROM codes",
    );
    ok(&bob, "GRANT SELECT ON code_count TO alice");
    assert_eq!(scalar(&alice, "SELECT n FROM code_count"), 2);
    denied(&alice, "SELECT * FROM codes");
    denied(&alice, "SELECT * FROM secret");
    // Revoking the owner's access to the base table breaks the view for everyone.
    ok(&owner, "REVOKE SELECT ON secret FROM bob");
    assert_eq!(
        denied(&alice, "SELECT n FROM code_count"),
        "permission denied for table secret"
    );
    denied(&bob, "SELECT * FROM codes");
    ok(&owner, "GRANT SELECT ON secret TO bob");
    assert_eq!(scalar(&alice, "SELECT n FROM code_count"), 2);
    // Only the owner drops or replaces a view.
    assert_eq!(
        denied(&alice, "DROP VIEW code_count"),
        "must be owner of view code_count"
    );
    denied(&alice, "CREATE OR REPLACE VIEW codes AS SELECT 1 AS code");
    ok(
        &bob,
        "CREATE OR REPLACE VIEW codes AS SELECT code FROM secret WHERE id = 1",
    );
    assert_eq!(scalar(&alice, "SELECT n FROM code_count"), 1);
    ok(&bob, "DROP VIEW code_count");
}

#[test]
fn writes_need_their_privileges_and_denied_ones_change_nothing() {
    let (db, owner) = shop();
    let alice = db.connect_as("alice").unwrap();
    let total = |c: &Connection| scalar(c, "SELECT sum(price * 100 + id) FROM items");
    let before = total(&owner);
    denied(&alice, "INSERT INTO items VALUES (9, 'x', 1.0)");
    ok(&owner, "GRANT INSERT ON items TO alice");
    ok(&alice, "INSERT INTO items VALUES (4, 'kiwi', 3.0)");
    assert_eq!(
        denied(
            &alice,
            "INSERT INTO items SELECT id + 10, code, 0 FROM secret"
        ),
        "permission denied for table secret"
    );
    // INSERT alone does not let alice read the table back.
    denied(
        &alice,
        "INSERT INTO items SELECT id + 10, name, price FROM items",
    );
    let with_kiwi = total(&owner);
    assert_eq!(with_kiwi, before + 304);
    // UPDATE without SELECT: only when the statement reads no column of the table.
    denied(&alice, "UPDATE items SET price = 0");
    ok(&owner, "GRANT UPDATE ON items TO alice");
    ok(&alice, "UPDATE items SET name = 'same'");
    for sql in [
        "UPDATE items SET price = 0 WHERE id = 1",
        "UPDATE items SET price = price + 1",
        "UPDATE items SET price = 0 WHERE EXISTS (SELECT 1 FROM secret s WHERE s.id = items.id)",
        "UPDATE items AS i SET price = 0 WHERE i.id = 2",
    ] {
        denied(&alice, sql);
    }
    assert_eq!(total(&owner), with_kiwi);
    ok(&owner, "GRANT SELECT ON items TO alice");
    ok(&alice, "UPDATE items SET price = price + 1 WHERE id = 4");
    assert_eq!(
        denied(
            &alice,
            "UPDATE items SET price = 0 WHERE id IN (SELECT id FROM secret)"
        ),
        "permission denied for table secret"
    );
    // DELETE.
    denied(&alice, "DELETE FROM items WHERE id = 4");
    ok(&owner, "GRANT DELETE ON items TO alice");
    denied(
        &alice,
        "DELETE FROM items WHERE id IN (SELECT id FROM secret)",
    );
    ok(&alice, "DELETE FROM items WHERE id = 4");
    assert_eq!(scalar(&owner, "SELECT count(*) FROM items"), 3);
    // Owner-only: TRUNCATE, DROP, ALTER, GRANT.
    for (sql, msg) in [
        ("TRUNCATE items", "must be owner of table items"),
        ("DROP TABLE items", "must be owner of table items"),
        (
            "ALTER TABLE items ADD COLUMN note TEXT",
            "must be owner of table items",
        ),
        (
            "ALTER TABLE items RENAME TO mine",
            "must be owner of table items",
        ),
        (
            "CREATE OR REPLACE TABLE items (id INT)",
            "must be owner of table items",
        ),
    ] {
        assert_eq!(denied(&alice, sql), msg, "{sql}");
    }
    assert_eq!(scalar(&owner, "SELECT count(*) FROM items"), 3);
    assert_eq!(
        scalar(
            &owner,
            "SELECT count(*) FROM phantomdb_columns() WHERE table_name = 'items'"
        ),
        3
    );
    // COPY FROM: see the two tests below.
}

/// PostgreSQL's hint for a COPY to or from a file by a role that is not a superuser.
const COPY_FILE_HINT: &str = "Only roles with privileges of the superuser may COPY to or from \
     a file. Anyone can COPY to stdout or from stdin. psql's \\copy command also works for \
     anyone.";

#[test]
fn copy_to_or_from_a_file_needs_a_superuser() {
    let (db, owner) = shop();
    ok(&owner, "GRANT SELECT, INSERT ON items TO alice, PUBLIC");
    let alice = db.connect_as("alice").unwrap();
    let mallory = db.connect_as("mallory").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rows.csv");
    std::fs::write(&csv, "id,name,price\n7,plum,1.0\n").unwrap();
    let out = |name: &str| dir.path().join(name);
    let statements = [
        format!("COPY items FROM '{}'", csv.display()),
        format!("COPY items (id, name) FROM '{}'", csv.display()),
        // Before the table or the file is looked at: nothing about either leaks.
        format!("COPY nowhere FROM '{}'", csv.display()),
        format!("COPY items FROM '{}'", out("missing.csv").display()),
        format!("COPY items TO '{}'", out("items.csv").display()),
        format!(
            "COPY (SELECT name FROM items) TO '{}'",
            out("q.csv").display()
        ),
        format!("COPY (SELECT 1 AS one) TO '{}'", out("one.csv").display()),
        format!("EXPLAIN ANALYZE COPY items TO '{}'", out("e.csv").display()),
    ];
    for c in [&alice, &mallory] {
        for sql in &statements {
            let e = c.execute(sql).expect_err(sql);
            assert_eq!(e.sqlstate().code(), "42501", "{sql}: {e}");
            assert_eq!(
                e.to_string(),
                "permission denied to COPY to or from a file",
                "{sql}"
            );
            assert_eq!(e.hint(), Some(COPY_FILE_HINT), "{sql}");
        }
        // In a transaction, the denied COPY changes nothing either.
        ok(c, "BEGIN");
        ok(c, "INSERT INTO items VALUES (5, 'lime', 1.0)");
        denied(c, &statements[0]);
        c.execute("ROLLBACK").unwrap();
    }
    assert_eq!(scalar(&owner, "SELECT count(*) FROM items"), 3);
    let written: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(written, ["rows.csv"]);
    // Other errors keep no hint.
    assert_eq!(alice.execute("DROP TABLE items").unwrap_err().hint(), None);

    // Superusers: the database owner, a stored superuser, a role made one.
    ok(&owner, &format!("COPY items FROM '{}'", csv.display()));
    assert_eq!(scalar(&owner, "SELECT count(*) FROM items WHERE id = 7"), 1);
    ok(&owner, "CREATE ROLE root SUPERUSER LOGIN");
    let root = db.connect_as("root").unwrap();
    ok(
        &root,
        &format!("COPY items TO '{}'", out("items.csv").display()),
    );
    let items = std::fs::read_to_string(out("items.csv")).unwrap();
    assert!(items.contains("plum") && items.contains("apple"), "{items}");
    ok(
        &root,
        &format!(
            "COPY (SELECT name FROM items WHERE id = 7) TO '{}'",
            out("q.csv").display()
        ),
    );
    assert_eq!(
        std::fs::read_to_string(out("q.csv")).unwrap(),
        "name\nplum\n"
    );
    ok(&owner, "ALTER ROLE alice SUPERUSER");
    ok(&alice, "DELETE FROM items WHERE id = 7");
    ok(&alice, &format!("COPY items FROM '{}'", csv.display()));
    assert_eq!(scalar(&owner, "SELECT count(*) FROM items"), 4);
    ok(&owner, "ALTER ROLE alice NOSUPERUSER");
    denied(
        &alice,
        &format!("COPY items TO '{}'", out("again.csv").display()),
    );
    assert!(!out("again.csv").exists());
}

#[test]
fn a_client_file_loads_with_insert_and_without_superuser() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (db, owner) = shop();
    let alice = db.connect_as("alice").unwrap();
    let bob = db.connect_as("bob").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("client.csv");
    std::fs::write(&csv, "8,grape\n9,\n").unwrap();
    // As the network server builds it for `COPY items (id, name) FROM STDIN`.
    let mut statements =
        phantomdb::parse("COPY items (id, name) FROM '' WITH (FORMAT csv, HEADER false)").unwrap();
    let Some(Statement::CopyFrom(mut copy)) = statements.pop() else {
        panic!("not a COPY FROM");
    };
    copy.path = csv.display().to_string();
    let load = |c: &Connection| rt.block_on(c.copy_from_client_file(copy.clone()));

    // Without INSERT: denied for the table, with SELECT or not; nothing loaded.
    ok(&owner, "GRANT SELECT ON items TO bob");
    for c in [&alice, &bob] {
        let e = load(c).expect_err("loaded without INSERT");
        assert_eq!(e.sqlstate().code(), "42501", "{e}");
        assert_eq!(e.to_string(), "permission denied for table items");
        assert_eq!(e.hint(), None);
    }
    assert_eq!(scalar(&owner, "SELECT count(*) FROM items"), 3);

    // With INSERT (and no superuser), the client's file loads; columns not named take their
    // DEFAULT or NULL, as in COPY FROM.
    ok(&owner, "GRANT INSERT ON items TO alice");
    let rs = load(&alice).unwrap();
    assert_eq!(rs.rows_affected, Some(2));
    assert_eq!(
        scalar(
            &owner,
            "SELECT count(*) FROM items WHERE id IN (8, 9) AND price IS NULL"
        ),
        2
    );
    // The same file named in SQL stays a server file.
    denied(&alice, &format!("COPY items FROM '{}'", csv.display()));
    // Constraints apply as for any COPY: loading it again violates the primary key.
    assert_eq!(load(&alice).unwrap_err().sqlstate().code(), "23505");
    // Revoked: denied again.
    ok(&owner, "REVOKE INSERT ON items FROM alice");
    assert_eq!(load(&alice).unwrap_err().sqlstate().code(), "42501");
    assert_eq!(scalar(&owner, "SELECT count(*) FROM items"), 5);
}

#[test]
fn prepared_statements_and_their_fast_paths_are_checked_at_every_execution() {
    let (db, owner) = shop();
    ok(&owner, "GRANT SELECT, INSERT ON items TO alice");
    let alice = db.connect_as("alice").unwrap();
    let lookup = alice
        .prepare("SELECT name FROM items WHERE id = $1")
        .unwrap();
    let insert = alice
        .prepare("INSERT INTO items VALUES ($1, $2, $3)")
        .unwrap();
    let range = alice
        .prepare("SELECT count(*) FROM items WHERE id >= $1")
        .unwrap();
    ok(
        &alice,
        "PREPARE get(BIGINT) AS SELECT name FROM items WHERE id = $1",
    );
    let one = [ScalarValue::from(1i64)];
    assert_eq!(lookup.query(&one).unwrap().num_rows(), 1);
    assert_eq!(
        insert
            .execute(&[
                ScalarValue::from(5i64),
                ScalarValue::from("lime"),
                ScalarValue::from(1.0f64)
            ])
            .unwrap(),
        1
    );
    assert_eq!(range.query(&one).unwrap().num_rows(), 1);
    assert_eq!(alice.execute("EXECUTE get(2)").unwrap().num_rows(), 1);
    ok(&owner, "REVOKE ALL ON items FROM alice");
    let expect_denied = |r: phantomdb::Result<phantomdb::ResultSet>| {
        let e = r.map(|_| ()).unwrap_err();
        assert_eq!(e.sqlstate().code(), "42501", "{e}");
    };
    expect_denied(lookup.query(&one));
    expect_denied(lookup.query(&[ScalarValue::Int64(None)]));
    expect_denied(insert.query(&[
        ScalarValue::from(6i64),
        ScalarValue::from("lemon"),
        ScalarValue::from(1.0f64),
    ]));
    expect_denied(range.query(&one));
    expect_denied(alice.execute("EXECUTE get(2)"));
    assert_eq!(scalar(&owner, "SELECT count(*) FROM items"), 4);
    // Preparing is checked too.
    assert_eq!(
        alice
            .prepare("SELECT code FROM secret WHERE id = $1")
            .unwrap_err()
            .sqlstate()
            .code(),
        "42501"
    );
    ok(&owner, "GRANT SELECT ON items TO alice");
    let rs = lookup.query(&one).unwrap().concat().unwrap();
    let name = phantomdb::arrow::util::display::array_value_to_string(rs.column(0), 0).unwrap();
    assert_eq!(name, "apple");
}

#[test]
fn tables_belong_to_the_role_that_creates_them() {
    let (db, owner) = shop();
    let alice = db.connect_as("alice").unwrap();
    let bob = db.connect_as("bob").unwrap();
    ok(&alice, "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT)");
    ok(&alice, "INSERT INTO notes VALUES (1, 'hi')");
    assert_eq!(scalar(&alice, "SELECT count(*) FROM notes"), 1);
    denied(&bob, "SELECT * FROM notes");
    ok(&alice, "GRANT SELECT ON notes TO bob");
    assert_eq!(scalar(&bob, "SELECT count(*) FROM notes"), 1);
    denied(&bob, "DROP TABLE notes");
    // A role that owns objects cannot be dropped; its grants go when it does.
    assert_eq!(code(&owner, "DROP ROLE alice"), "2BP01");
    ok(&owner, "GRANT SELECT ON items TO bob");
    ok(&owner, "DROP ROLE bob");
    ok(&owner, "CREATE ROLE bob");
    denied(&bob, "SELECT * FROM items");
    denied(&bob, "SELECT * FROM notes");
    // Superusers own everything.
    ok(&owner, "ALTER TABLE notes RENAME TO memos");
    ok(
        &alice,
        "INSERT INTO memos VALUES (2, 'renamed, still mine')",
    );
    ok(&owner, "DROP TABLE memos");
    ok(&owner, "DROP ROLE alice");
}

#[test]
fn a_database_file_without_roles_opens_with_its_tables_owned_by_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("format-1.phantomdb");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/format-1.phantomdb"),
        &path,
    )
    .unwrap();
    let db = Database::open(&path).unwrap();
    assert!(db.role("phantomdb").unwrap().is_none());
    assert!(!db.has_login_role().unwrap());
    let owner = db.connect().unwrap();
    assert_eq!(scalar(&owner, "SELECT count(*) FROM cheap"), 2);
    ok(&owner, "CREATE ROLE alice LOGIN PASSWORD 'pw'");
    let alice = db.connect_as("alice").unwrap();
    denied(&alice, "SELECT * FROM items");
    denied(&alice, "SELECT * FROM cheap");
    ok(&owner, "GRANT SELECT ON cheap TO alice");
    assert_eq!(scalar(&alice, "SELECT count(*) FROM cheap"), 2);
    drop((alice, owner, db));
    let db = Database::open(&path).unwrap();
    assert!(db.role("alice").unwrap().unwrap().login);
    let alice = db.connect_as("alice").unwrap();
    assert_eq!(scalar(&alice, "SELECT count(*) FROM cheap"), 2);
}

#[test]
fn members_of_a_role_hold_its_privileges_until_revoked() {
    let (db, owner) = shop();
    ok(
        &owner,
        "CREATE ROLE readers; CREATE ROLE staff; CREATE ROLE carol LOGIN",
    );
    ok(&owner, "GRANT SELECT ON items TO readers");
    let carol = db.connect_as("carol").unwrap();
    denied(&carol, "SELECT * FROM items");
    assert!(!db.is_member_of("carol", "readers").unwrap());

    // carol is in staff, staff is in readers: carol reads through both.
    ok(&owner, "GRANT readers TO staff");
    ok(&owner, "GRANT staff TO carol");
    assert!(db.is_member_of("carol", "readers").unwrap());
    assert!(db.is_member_of("carol", "staff").unwrap());
    assert!(db.is_member_of("carol", "carol").unwrap());
    assert!(!db.is_member_of("readers", "carol").unwrap());
    assert!(!db.is_member_of("nobody", "nobody").unwrap());
    ok(&carol, "SELECT * FROM items");
    denied(&carol, "INSERT INTO items VALUES (9, 'x', 1.0)");

    // No cycles, no unknown roles, superusers only.
    assert_eq!(code(&owner, "GRANT carol TO readers"), "0LP01");
    assert_eq!(code(&owner, "GRANT readers TO readers"), "0LP01");
    assert_eq!(code(&owner, "GRANT nosuch TO carol"), "42704");
    assert_eq!(code(&owner, "GRANT readers TO nosuch"), "42704");
    denied(&carol, "GRANT readers TO carol");

    // Dropping a group ends its memberships; revoking ends one.
    ok(&owner, "REVOKE staff FROM carol");
    assert!(!db.is_member_of("carol", "readers").unwrap());
    denied(&carol, "SELECT * FROM items");
    ok(&owner, "GRANT staff TO carol");
    ok(&carol, "SELECT * FROM items");
    ok(&owner, "DROP ROLE staff");
    assert!(!db.is_member_of("carol", "staff").unwrap());
    denied(&carol, "SELECT * FROM items");
}
