//! The plan form's round trip: every TPC-H query and every query of the tests/slt suites,
//! planned, converted to the plan form, through JSON and back, gives the same rows as the
//! query run directly (at the analyzed and at the optimized stage).

use std::path::Path;

use phantomdb::{Connection, Database};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
}

/// Rows as sorted text (queries without ORDER BY may come back in any order).
fn rows(conn: &Connection, sql: &str, through_form: Option<bool>) -> Result<Vec<String>, String> {
    let result = match through_form {
        None => conn.execute(sql),
        Some(optimized) => conn.execute_through_plan_form(sql, optimized),
    }
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for batch in &result.batches {
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .columns()
                .iter()
                .map(|c| arrow::util::display::array_value_to_string(c, row).unwrap_or_default())
                .collect();
            out.push(cells.join("|"));
        }
    }
    out.sort();
    Ok(out)
}

fn check_same(conn: &Connection, sql: &str) -> Result<(), String> {
    let direct = rows(conn, sql, None)?;
    for optimized in [false, true] {
        let through = rows(conn, sql, Some(optimized))
            .map_err(|e| format!("through the plan form (optimized: {optimized}): {e}\n{sql}"))?;
        if through != direct {
            return Err(format!(
                "different rows through the plan form (optimized: {optimized}):\n{sql}\n{direct:?}\n{through:?}"
            ));
        }
    }
    Ok(())
}

/// Small TPC-H data made with generate_series: every join of the 22 queries finds rows.
const TPCH_DATA: &str = "
INSERT INTO region SELECT n, 'REGION' || n, 'c' FROM generate_series(0, 4) t(n);
INSERT INTO nation SELECT n, CASE n WHEN 7 THEN 'GERMANY' WHEN 6 THEN 'FRANCE' WHEN 20 THEN 'SAUDI ARABIA' WHEN 3 THEN 'CANADA' WHEN 8 THEN 'INDIA' ELSE 'NATION' || n END, n % 5, 'c' FROM generate_series(0, 24) t(n);
INSERT INTO supplier SELECT n, 'Supplier#' || n, 'addr' || n, n % 25, '1' || n, CAST(n * 10.5 AS DECIMAL(15,2)), CASE WHEN n % 7 = 0 THEN 'Customer Complaints' ELSE 'fine' END FROM generate_series(1, 20) t(n);
INSERT INTO customer SELECT n, 'Customer#' || n, 'a', n % 25, CAST(10 + n % 20 AS VARCHAR) || '-555', CAST(n * 3.25 AS DECIMAL(15,2)), CASE n % 3 WHEN 0 THEN 'BUILDING' WHEN 1 THEN 'MACHINERY' ELSE 'AUTOMOBILE' END, 'c' FROM generate_series(1, 40) t(n);
INSERT INTO part SELECT n, CASE WHEN n % 4 = 0 THEN 'forest green' ELSE 'plain part' END, 'Manufacturer#1', 'Brand#' || (10 + n % 5), CASE n % 3 WHEN 0 THEN 'PROMO BRUSHED BRASS' WHEN 1 THEN 'ECONOMY ANODIZED STEEL' ELSE 'STANDARD POLISHED TIN' END, 1 + n % 50, CASE n % 4 WHEN 0 THEN 'SM CASE' WHEN 1 THEN 'MED BOX' WHEN 2 THEN 'LG PACK' ELSE 'SM PKG' END, CAST(n AS DECIMAL(15,2)), 'c' FROM generate_series(1, 30) t(n);
INSERT INTO partsupp SELECT p, s, 100 + p * s, CAST(p + s AS DECIMAL(15,2)), 'c' FROM generate_series(1, 30) a(p), generate_series(1, 20) b(s) WHERE (p + s) % 4 = 0;
INSERT INTO orders SELECT n, 1 + n % 40, CASE n % 3 WHEN 0 THEN 'F' ELSE 'O' END, CAST(n * 100 AS DECIMAL(15,2)), DATE '1993-01-01' + CAST(n * 23 AS INT), CASE n % 5 WHEN 0 THEN '1-URGENT' WHEN 1 THEN '2-HIGH' ELSE '3-MEDIUM' END, 'Clerk#' || n, 0, CASE WHEN n % 9 = 0 THEN 'special requests' ELSE 'c' END FROM generate_series(1, 120) t(n);
INSERT INTO lineitem SELECT o, 1 + (o * l) % 30, 1 + (o + l) % 20, l, CAST(1 + (o * l) % 50 AS DECIMAL(15,2)), CAST(o * l AS DECIMAL(15,2)), CAST(0.05 AS DECIMAL(15,2)), CAST(0.02 AS DECIMAL(15,2)), CASE o % 3 WHEN 0 THEN 'R' ELSE 'N' END, CASE o % 2 WHEN 0 THEN 'F' ELSE 'O' END, DATE '1993-01-01' + CAST(o * 23 + l * 5 AS INT), DATE '1993-01-01' + CAST(o * 23 + l * 7 AS INT), DATE '1993-01-01' + CAST(o * 23 + l * 9 AS INT), CASE l % 2 WHEN 0 THEN 'DELIVER IN PERSON' ELSE 'NONE' END, CASE l % 4 WHEN 0 THEN 'MAIL' WHEN 1 THEN 'SHIP' WHEN 2 THEN 'AIR' ELSE 'AIR REG' END, 'c' FROM generate_series(1, 120) a(o), generate_series(1, 4) b(l);
";

#[test]
fn every_tpch_query_gives_the_same_rows_through_the_plan_form() {
    let db = Database::open_in_memory().unwrap();
    let conn = db.connect().unwrap();
    let schema = std::fs::read_to_string(root().join("bench/tpch/schema.sql")).unwrap();
    conn.execute(&schema).unwrap();
    conn.execute(TPCH_DATA).unwrap();
    let mut failures = Vec::new();
    for q in 1..=22 {
        let path = root().join(format!("bench/tpch/queries/q{q:02}.sql"));
        let sql = std::fs::read_to_string(&path).unwrap();
        if let Err(e) = check_same(&conn, &sql) {
            failures.push(format!("q{q:02}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The queries of a .slt file (`query` records), with the statements before each.
fn slt_records(text: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let is_query = line.starts_with("query ");
        let is_statement = line.starts_with("statement ok");
        if !is_query && !is_statement {
            continue;
        }
        let mut sql = String::new();
        while let Some(l) = lines.peek() {
            if l.trim().is_empty() || l.trim() == "----" {
                break;
            }
            sql.push_str(l);
            sql.push('\n');
            lines.next();
        }
        out.push((is_query, sql));
    }
    out
}

#[test]
fn every_slt_query_gives_the_same_rows_through_the_plan_form() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("tests/slt")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "slt") {
            continue;
        }
        let db = Database::open_in_memory().unwrap();
        let conn = db.connect().unwrap();
        // Files the suites write go to a temporary directory, as `phantomdb test` does.
        let scratch = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("$__TEST_DIR__", &scratch.path().display().to_string());
        for (is_query, sql) in slt_records(&text) {
            if !is_query {
                let _ = conn.execute(&sql);
                continue;
            }
            let direct = rows(&conn, &sql, None);
            let lower = sql.trim_start().to_ascii_lowercase();
            // A query calling nextval writes (it advances a sequence): not a pure read.
            let reads = (lower.starts_with("select") || lower.starts_with("with"))
                && !lower.contains("nextval(");
            if direct.is_err() || !reads {
                continue;
            }
            checked += 1;
            if let Err(e) = check_same(&conn, &sql) {
                failures.push(format!("{}: {e}", path.display()));
            }
        }
    }
    assert!(checked >= 90, "only {checked} queries found");
    assert!(
        failures.is_empty(),
        "{} of {checked} differ:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
