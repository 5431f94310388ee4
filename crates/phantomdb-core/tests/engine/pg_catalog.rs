//! The PostgreSQL compatibility catalog (included by `tests/engine.rs`): the catalog queries
//! psql 15, psycopg 3, SQLAlchemy 2 and tokio-postgres send, captured from a real PostgreSQL
//! 15 (`tests/data/pg_clients/*.sql`), run through `phantomdb::pg_catalog::rewrite` against
//! a database with the same table and view.

use phantomdb::arrow::array::{Array, RecordBatch};
use phantomdb::arrow::util::display::array_value_to_string;
use phantomdb::datafusion::common::ScalarValue;
use phantomdb::pg_catalog::rewrite;
use phantomdb::{Connection, Database};

/// One captured query: its name, the values bound to `$1, $2, ...` (none: run as text).
struct Captured {
    name: String,
    params: Vec<String>,
    sql: String,
}

/// The queries of a fixture file: blocks starting with `-- query: name`, an optional
/// `-- params: 'a', 'b'` line, then the SQL.
fn captured(file: &str) -> Vec<Captured> {
    let path = format!(
        "{}/tests/data/pg_clients/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out: Vec<Captured> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("-- query: ") {
            let name = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            out.push(Captured {
                name,
                params: Vec::new(),
                sql: String::new(),
            });
        } else if let Some(rest) = line.strip_prefix("-- params: ") {
            let q = out.last_mut().expect("params after a query line");
            q.params = rest
                .split(", ")
                .map(|p| p.trim_matches('\'').to_string())
                .collect();
        } else if let Some(q) = out.last_mut() {
            q.sql.push_str(line);
            q.sql.push('\n');
        }
    }
    out
}

/// A database like the one the queries were captured against.
fn database() -> (Database, Connection) {
    let db = Database::open_in_memory().unwrap();
    let c = db.connect().unwrap();
    c.execute(
        "CREATE TABLE t (id INT PRIMARY KEY, name TEXT NOT NULL, price DOUBLE DEFAULT 0, \
         created TIMESTAMP); CREATE VIEW v AS SELECT id, name FROM t",
    )
    .unwrap();
    (db, c)
}

/// The value of each cell as text (`NULL` for nulls).
fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .map(|c| {
                        if c.is_null(r) {
                            "NULL".to_string()
                        } else {
                            array_value_to_string(c, r).unwrap()
                        }
                    })
                    .collect(),
            );
        }
    }
    out
}

/// The OIDs the fixtures refer to as `{t_oid}` and `{v_oid}`.
fn oids(c: &Connection) -> (String, String) {
    let oid = |name: &str| {
        let rs = c
            .execute(&format!(
                "SELECT oid FROM pg_catalog.pg_class WHERE relname = '{name}'"
            ))
            .unwrap();
        rows(&rs.batches)[0][0].clone()
    };
    (oid("t"), oid("v"))
}

/// How a captured query is sent.
#[derive(Clone, Copy, PartialEq)]
enum Binding {
    /// Parameters written into the text as literals (PostgreSQL's simple protocol, or a
    /// driver binding on the client side).
    Text,
    /// Prepared, with the parameters bound as text values (the extended protocol).
    Prepared,
}

/// Runs a captured query the way a server would: rewritten, then run with its parameters.
fn run(
    c: &Connection,
    q: &Captured,
    oids: &(String, String),
    binding: Binding,
) -> Result<Vec<Vec<String>>, String> {
    let fill = |s: &str| s.replace("{t_oid}", &oids.0).replace("{v_oid}", &oids.1);
    let params: Vec<String> = q.params.iter().map(|p| fill(p)).collect();
    let mut sql = fill(&q.sql);
    if binding == Binding::Text {
        for (i, p) in params.iter().enumerate().rev() {
            sql = sql.replace(
                &format!("${}", i + 1),
                &format!("'{}'", p.replace('\'', "''")),
            );
        }
    }
    let sql = rewrite(&sql);
    let result = if binding == Binding::Prepared && !params.is_empty() {
        let values: Vec<ScalarValue> = params.into_iter().map(ScalarValue::from).collect();
        c.prepare(&sql).and_then(|p| p.query(&values))
    } else {
        c.execute(&sql)
    };
    result
        .map(|rs| rows(&rs.batches))
        .map_err(|e| format!("{}: {e}\n{sql}", q.name))
}

/// Runs every query of a fixture file; returns the rows by query name.
fn run_all(c: &Connection, file: &str) -> std::collections::BTreeMap<String, Vec<Vec<String>>> {
    let oids = oids(c);
    let mut failures = Vec::new();
    let mut results = std::collections::BTreeMap::new();
    for q in captured(file) {
        match run(c, &q, &oids, Binding::Text) {
            Ok(rows) => {
                results.insert(q.name, rows);
            }
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    results
}

fn strs(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect()
}

#[test]
fn psql_describe_commands_get_postgres_shaped_answers() {
    let (_db, c) = database();
    let r = run_all(&c, "psql.sql");
    let owner = phantomdb::DEFAULT_USER;
    assert_eq!(r["dt_1"], strs(&[&["public", "t", "table", owner]]));
    assert_eq!(r["dv_1"], strs(&[&["public", "v", "view", owner]]));
    assert_eq!(
        r["di_1"],
        strs(&[&["public", "t_pkey", "index", owner, "t"]])
    );
    assert_eq!(
        r["d_1"],
        strs(&[
            &["public", "t", "table", owner],
            &["public", "v", "view", owner]
        ])
    );
    // \d t: the table, then its columns (name, type, default, not null), then its index.
    assert_eq!(r["d_t_1"].len(), 1);
    assert_eq!(&r["d_t_1"][0][1..], ["public", "t"]);
    assert_eq!(r["d_t_2"][0][1], "r");
    let columns: Vec<Vec<String>> = r["d_t_3"].iter().map(|row| row[..4].to_vec()).collect();
    assert_eq!(
        columns,
        strs(&[
            &["id", "integer", "NULL", "true"],
            &["name", "text", "NULL", "true"],
            &["price", "double precision", "0", "false"],
            &["created", "timestamp without time zone", "NULL", "false"],
        ])
    );
    let index = &r["d_t_4"];
    assert_eq!(index.len(), 1);
    assert_eq!(
        index[0][..8],
        [
            "t_pkey",
            "true",
            "true",
            "false",
            "true",
            "CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id)",
            "PRIMARY KEY (id)",
            "p"
        ]
    );
    for empty in ["d_t_5", "d_t_6", "d_t_7", "d_t_8", "d_t_9", "df_1"] {
        assert!(r[empty].is_empty(), "{empty}: {:?}", r[empty]);
    }
    // \d v: the view's columns.
    let view: Vec<&str> = r["d_v_3"].iter().map(|row| row[0].as_str()).collect();
    assert_eq!(view, ["id", "name"]);
    // \l, \du, \dn.
    assert_eq!(r["l_1"][0][..3], ["memory", owner, "UTF8"]);
    assert_eq!(r["du_1"][0][..2], [owner, "true"]);
    assert_eq!(r["dn_1"], strs(&[&["public", owner]]));
}

#[test]
fn psycopg_and_sqlalchemy_reflect_tables_views_columns_and_keys() {
    let (_db, c) = database();
    let r = run_all(&c, "sqlalchemy.sql");
    assert!(
        r["version"][0][0].starts_with("PostgreSQL 15."),
        "{:?}",
        r["version"]
    );
    assert_eq!(r["current_schema"], strs(&[&["public"]]));
    assert_eq!(r["show_scs"], strs(&[&["on"]]));
    assert!(r["hstore_typeinfo"].is_empty(), "no hstore type");
    assert_eq!(r["has_table"], strs(&[&["t"]]));
    assert_eq!(r["table_names"], strs(&[&["t"]]));
    assert_eq!(r["view_names"], strs(&[&["v"]]));
    // get_columns: name, format_type, default, not null, table.
    let columns: Vec<Vec<String>> = r["columns"].iter().map(|row| row[..5].to_vec()).collect();
    assert_eq!(
        columns,
        strs(&[
            &["id", "integer", "NULL", "true", "t"],
            &["name", "text", "NULL", "true", "t"],
            &["price", "double precision", "0", "false", "t"],
            &[
                "created",
                "timestamp without time zone",
                "NULL",
                "false",
                "t"
            ],
        ])
    );
    // get_pk_constraint: (conrelid, cols, conname, ...).
    let pk = &r["pk_constraint"];
    assert_eq!(pk.len(), 1);
    assert_eq!(pk[0][1..3], ["[id]", "t_pkey"]);
    assert_eq!(
        r["foreign_keys"],
        strs(&[&["t", "NULL", "NULL", "NULL", "NULL"]])
    );
    assert!(r["indexes"].is_empty(), "the primary key is no extra index");
    let reflected: Vec<&str> = r["reflect_views_columns"]
        .iter()
        .map(|row| row[4].as_str())
        .collect();
    assert_eq!(reflected, ["t", "t", "t", "t", "v", "v"]);
}

#[test]
fn has_table_is_false_for_a_missing_table() {
    let (_db, c) = database();
    let mut q = captured("sqlalchemy.sql")
        .into_iter()
        .find(|q| q.name == "has_table")
        .unwrap();
    q.params[0] = "nope".into();
    assert!(run(&c, &q, &oids(&c), Binding::Text).unwrap().is_empty());
    assert!(run(&c, &q, &oids(&c), Binding::Prepared)
        .unwrap()
        .is_empty());
}

#[test]
fn sqlalchemy_queries_run_prepared_with_text_parameters() {
    let (_db, c) = database();
    let oids = oids(&c);
    let queries = captured("sqlalchemy.sql");
    for name in ["has_table", "table_names", "columns", "pk_constraint"] {
        let q = queries.iter().find(|q| q.name == name).unwrap();
        let text = run(&c, q, &oids, Binding::Text).unwrap();
        let prepared = run(&c, q, &oids, Binding::Prepared).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(prepared, text, "{name}");
    }
}

#[test]
fn tokio_postgres_type_lookups_answer_from_pg_type() {
    let (_db, c) = database();
    let r = run_all(&c, "tokio_postgres.sql");
    assert_eq!(
        r["typeinfo"],
        strs(&[&["int4", "b", "0", "NULL", "0", "pg_catalog", "0"]])
    );
    assert_eq!(r["typeinfo_fallback"][0][0], "int4");
    assert!(r["typeinfo_enum"].is_empty());
    let composite: Vec<Vec<String>> = r["typeinfo_composite"].clone();
    assert_eq!(
        composite,
        strs(&[
            &["id", "23"],
            &["name", "25"],
            &["price", "701"],
            &["created", "1114"]
        ])
    );
}

#[test]
fn the_catalog_is_the_statements_snapshot() {
    let (_db, c) = database();
    let names = |c: &Connection| {
        let rs = c
            .execute("SELECT relname FROM pg_catalog.pg_class WHERE relnamespace = 2200 ORDER BY relname")
            .unwrap();
        rows(&rs.batches)
            .into_iter()
            .map(|r| r[0].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&c), ["t", "t_pkey", "v"]);
    let before = oids(&c).0;
    c.execute("CREATE TABLE later (x INT)").unwrap();
    assert_eq!(names(&c), ["later", "t", "t_pkey", "v"]);
    c.execute("ALTER TABLE t RENAME TO renamed").unwrap();
    let rs = c
        .execute("SELECT oid FROM pg_catalog.pg_class WHERE relname = 'renamed'")
        .unwrap();
    assert_eq!(rows(&rs.batches)[0][0], before, "a rename keeps the OID");
    // Inside a transaction, its own DDL is visible; after ROLLBACK it is gone.
    c.execute("BEGIN; CREATE TABLE scratch (y INT)").unwrap();
    assert!(names(&c).contains(&"scratch".to_string()));
    c.execute("ROLLBACK").unwrap();
    assert!(!names(&c).contains(&"scratch".to_string()));
}

#[test]
fn catalog_functions_keep_their_snapshot_in_a_stream() {
    let (_db, c) = database();
    let sql = rewrite(
        "SELECT pg_catalog.pg_get_indexdef(i.indexrelid, 0, true), c.oid::pg_catalog.regclass \
         FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indrelid",
    );
    let mut stream = c.execute_stream(&sql).unwrap();
    c.execute("CREATE TABLE other (k INT PRIMARY KEY)").unwrap();
    let mut batches = Vec::new();
    while let Some(b) = stream.next_batch() {
        batches.push(b.unwrap());
    }
    assert_eq!(
        rows(&batches),
        strs(&[&[
            "CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id)",
            "t"
        ]])
    );
}

#[test]
fn information_schema_lists_phantomdb_tables() {
    let (_db, c) = database();
    let rs = c
        .execute(
            "SELECT table_name, table_type FROM information_schema.tables \
             WHERE table_schema = 'public' ORDER BY table_name",
        )
        .unwrap();
    assert_eq!(
        rows(&rs.batches),
        strs(&[&["t", "BASE TABLE"], &["v", "VIEW"]])
    );
    let rs = c
        .execute(
            "SELECT column_name, is_nullable FROM information_schema.columns \
             WHERE table_name = 't' ORDER BY ordinal_position",
        )
        .unwrap();
    assert_eq!(
        rows(&rs.batches),
        strs(&[
            &["id", "NO"],
            &["name", "NO"],
            &["price", "YES"],
            &["created", "YES"]
        ])
    );
}

#[test]
fn relations_are_owned_by_the_role_that_created_them() {
    let (db, c) = database();
    c.execute("CREATE ROLE alice LOGIN SUPERUSER").unwrap();
    let alice = db.connect_as("alice").unwrap();
    alice
        .execute("CREATE TABLE mine (k INT PRIMARY KEY)")
        .unwrap();
    let dt = captured("psql.sql")
        .into_iter()
        .find(|q| q.name == "dt_1")
        .unwrap();
    let owner = phantomdb::DEFAULT_USER;
    assert_eq!(
        run(&c, &dt, &oids(&c), Binding::Text).unwrap(),
        strs(&[
            &["public", "mine", "table", "alice"],
            &["public", "t", "table", owner]
        ])
    );
    let du = captured("psql.sql")
        .into_iter()
        .find(|q| q.name == "du_1")
        .unwrap();
    let roles: Vec<String> = run(&alice, &du, &oids(&c), Binding::Text)
        .unwrap()
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(roles, ["alice"]);
}
