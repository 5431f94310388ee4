//! Printing result sets as a table, CSV or JSON.

use std::io::Write;

use anyhow::Result;
use phantomdb::arrow::util::display::{ArrayFormatter, FormatOptions};
use phantomdb::arrow::util::pretty::pretty_format_batches_with_schema;
use phantomdb::ResultSet;

/// Output format of query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Boxed table (default).
    Table,
    /// Comma-separated values with a header line.
    Csv,
    /// A JSON array of objects, one per row.
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(Format::Table),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            other => Err(format!("unknown format {other} (table, csv or json)")),
        }
    }
}

/// Writes `rs` to `out`. Statements without a result (DDL) print nothing; row counts of
/// INSERT/UPDATE/DELETE print only in table format.
pub fn print(out: &mut impl Write, rs: &ResultSet, format: Format) -> Result<()> {
    if rs.schema.fields().is_empty() {
        return Ok(());
    }
    if rs.rows_affected.is_some() && format != Format::Table {
        return Ok(());
    }
    match format {
        Format::Table => {
            writeln!(
                out,
                "{}",
                pretty_format_batches_with_schema(rs.schema.clone(), &rs.batches)?
            )?;
        }
        Format::Csv => {
            let mut w = phantomdb::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            if rs.batches.is_empty() {
                let names: Vec<&str> = rs
                    .schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect();
                drop(w);
                writeln!(out, "{}", names.join(","))?;
            } else {
                for b in &rs.batches {
                    w.write(b)?;
                }
            }
        }
        Format::Json => {
            let mut w = phantomdb::arrow::json::ArrayWriter::new(&mut *out);
            for b in &rs.batches {
                w.write(b)?;
            }
            w.finish()?;
            if rs.batches.is_empty() {
                write!(out, "[]")?;
            }
            writeln!(out)?;
        }
    }
    Ok(())
}

/// Rows of a result as strings, the way sqllogictest files spell values.
pub fn rows_as_strings(rs: &ResultSet) -> Result<Vec<Vec<String>>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for b in &rs.batches {
        let formatters = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for r in 0..b.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|f| {
                        let s = f.value(r).to_string();
                        if s.is_empty() {
                            "(empty)".to_string()
                        } else {
                            s
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok(rows)
}
