//! `.dump [TABLE]`: SQL that recreates the database (or one table) when read back with
//! `.read`: `CREATE TABLE ... USING engine`, `INSERT`s of every row, then the views. The
//! whole dump is one transaction when every engine involved supports transactions.

use std::io::Write;

use anyhow::Result;
use futures::StreamExt;
use phantomdb::arrow::array::{Array, RecordBatch};
use phantomdb::arrow::datatypes::DataType;
use phantomdb::arrow::util::display::{ArrayFormatter, FormatOptions};
use phantomdb::Connection;

use crate::catalog::{self, quote_ident, quote_literal};

/// Rows per `INSERT` statement.
const ROWS_PER_INSERT: usize = 100;

/// Writes the dump of every table and view (or only of `only`) to `out`.
pub async fn dump(conn: &Connection, only: Option<&str>, out: &mut impl Write) -> Result<()> {
    let wanted = |name: &str| only.is_none_or(|n| n == name);
    let tables: Vec<_> = catalog::tables(conn)
        .await?
        .into_iter()
        .filter(|t| wanted(&t.name))
        .collect();
    let views: Vec<_> = catalog::views(conn)
        .await?
        .into_iter()
        .filter(|(name, _)| wanted(name))
        .collect();
    if let Some(name) = only {
        if tables.is_empty() && views.is_empty() {
            anyhow::bail!("no table or view named {name}");
        }
    }
    let transactional = catalog::text_rows(
        conn,
        "SELECT name FROM phantomdb_storage_engines() WHERE capabilities LIKE '%transactions%'",
    )
    .await?;
    let in_transaction = tables
        .iter()
        .all(|t| transactional.iter().any(|e| e[0] == t.engine));
    if in_transaction {
        writeln!(out, "BEGIN;")?;
    }
    for t in &tables {
        writeln!(out, "{}", t.create_sql())?;
        let select = format!("SELECT * FROM {}", quote_ident(&t.name));
        let mut stream = conn.execute_stream_async(&select).await?;
        let mut pending: Vec<String> = Vec::new();
        while let Some(batch) = stream.next().await {
            for row in row_literals(&batch?)? {
                pending.push(row);
                if pending.len() == ROWS_PER_INSERT {
                    write_insert(out, &t.name, &mut pending)?;
                }
            }
        }
        write_insert(out, &t.name, &mut pending)?;
    }
    for (name, query) in &views {
        writeln!(out, "CREATE VIEW {} AS {query};", quote_ident(name))?;
    }
    if in_transaction {
        writeln!(out, "COMMIT;")?;
    }
    out.flush()?;
    Ok(())
}

fn write_insert(out: &mut impl Write, table: &str, rows: &mut Vec<String>) -> Result<()> {
    if !rows.is_empty() {
        writeln!(
            out,
            "INSERT INTO {} VALUES\n{};",
            quote_ident(table),
            rows.join(",\n")
        )?;
        rows.clear();
    }
    Ok(())
}

/// Each row of `batch` as `(v1, v2, ...)` in SQL literals the table's column types accept.
fn row_literals(batch: &RecordBatch) -> Result<Vec<String>> {
    let options = FormatOptions::default();
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = Vec::with_capacity(batch.num_rows());
    for r in 0..batch.num_rows() {
        let values: Vec<String> = batch
            .columns()
            .iter()
            .zip(&formatters)
            .map(|(column, f)| literal(column.as_ref(), r, &f.value(r).to_string()))
            .collect();
        rows.push(format!("({})", values.join(", ")));
    }
    Ok(rows)
}

/// One value as a SQL literal: numbers and booleans bare, everything else as a string that
/// the INSERT casts to the column's type (text, dates, timestamps, ...).
fn literal(column: &dyn Array, row: usize, text: &str) -> String {
    if column.is_null(row) {
        return "NULL".into();
    }
    match column.data_type() {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Boolean
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => text.to_string(),
        DataType::Float16 | DataType::Float32 | DataType::Float64
            if text.parse::<f64>().is_ok_and(f64::is_finite) =>
        {
            text.to_string()
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            // Arrow shows binary values as hex.
            format!("X'{text}'")
        }
        _ => quote_literal(text),
    }
}
