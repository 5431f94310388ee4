//! `.import FILE TABLE`: loads a CSV file with a header line into a table. A table that does
//! not exist yet is created first, with the columns of the header and the types Arrow infers
//! from the first rows.

use std::path::Path;

use anyhow::{Context, Result};
use phantomdb::arrow::csv::reader::Format;
use phantomdb::arrow::datatypes::DataType;
use phantomdb::Connection;

use crate::catalog::{quote_ident, quote_literal, text_rows};

/// Rows read to infer the column types of a new table.
const INFER_ROWS: usize = 1000;

/// Imports `file` into `table`; returns the number of rows loaded.
pub async fn import(conn: &Connection, file: &Path, table: &str) -> Result<usize> {
    let exists = text_rows(conn, "SELECT name FROM phantomdb_tables()")
        .await?
        .iter()
        .any(|r| r[0] == table);
    if !exists {
        let reader =
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        let (schema, _) = Format::default()
            .with_header(true)
            .infer_schema(reader, Some(INFER_ROWS))
            .with_context(|| format!("cannot read {} as CSV", file.display()))?;
        let columns: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| format!("{} {}", quote_ident(f.name()), sql_type(f.data_type())))
            .collect();
        conn.execute_async(&format!(
            "CREATE TABLE {} ({})",
            quote_ident(table),
            columns.join(", ")
        ))
        .await?;
    }
    let path = file.to_str().context("the file name is not UTF-8")?;
    let result = conn
        .execute_async(&format!(
            "COPY {} FROM {} WITH (FORMAT csv, HEADER true)",
            quote_ident(table),
            quote_literal(path)
        ))
        .await?;
    Ok(result.rows_affected.unwrap_or(0))
}

/// The SQL type of a column Arrow inferred from CSV.
fn sql_type(t: &DataType) -> &'static str {
    match t {
        DataType::Int64 => "BIGINT",
        DataType::Float64 => "DOUBLE",
        DataType::Boolean => "BOOLEAN",
        DataType::Date32 | DataType::Date64 => "DATE",
        DataType::Timestamp(_, _) => "TIMESTAMP",
        _ => "TEXT",
    }
}
