//! Printing result sets as a table, CSV or JSON.

use std::io::Write;

use anyhow::Result;
use futures::StreamExt;
use phantomdb::arrow::array::RecordBatch;
use phantomdb::arrow::util::display::{ArrayFormatter, FormatOptions};
use phantomdb::arrow::util::pretty::pretty_format_batches_with_schema;
use phantomdb::{ResultSet, ResultStream};

/// The most rows the table format holds (it needs every row to size its columns); CSV and
/// JSON print rows as they arrive, in bounded memory.
pub const TABLE_ROW_LIMIT: usize = 100_000;

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

/// Prints a statement's rows as they arrive. CSV and JSON write each batch as soon as it is
/// produced (and flush it); the table format collects up to [`TABLE_ROW_LIMIT`] rows, then
/// says that it stopped there.
pub async fn print_stream(
    out: &mut impl Write,
    stream: &mut ResultStream,
    format: Format,
) -> Result<()> {
    let schema = stream.schema().clone();
    if schema.fields().is_empty() {
        return Ok(());
    }
    if stream.rows_affected().is_some() && format != Format::Table {
        return Ok(());
    }
    match format {
        Format::Table => {
            let mut batches: Vec<RecordBatch> = Vec::new();
            let mut rows = 0;
            let mut truncated = false;
            while let Some(b) = stream.next().await {
                let b = b?;
                rows += b.num_rows();
                batches.push(b);
                if rows > TABLE_ROW_LIMIT {
                    truncated = true;
                    break;
                }
            }
            if truncated {
                let mut keep = TABLE_ROW_LIMIT;
                for b in batches.iter_mut() {
                    let n = b.num_rows().min(keep);
                    *b = b.slice(0, n);
                    keep -= n;
                }
            }
            let rs = ResultSet {
                schema,
                batches,
                rows_affected: stream.rows_affected(),
            };
            print(out, &rs, format)?;
            if truncated {
                writeln!(
                    out,
                    "(output stopped after {TABLE_ROW_LIMIT} rows; --format csv or json prints every row)"
                )?;
            }
        }
        Format::Csv => {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            writeln!(out, "{}", names.join(","))?;
            out.flush()?;
            let mut text = Vec::new();
            while let Some(b) = stream.next().await {
                // Formatted into a buffer first, so a closed output is a plain I/O error.
                text.clear();
                let mut w = phantomdb::arrow::csv::WriterBuilder::new()
                    .with_header(false)
                    .build(&mut text);
                w.write(&b?)?;
                drop(w);
                out.write_all(&text)?;
                out.flush()?;
            }
        }
        Format::Json => {
            write!(out, "[")?;
            let mut first = true;
            while let Some(b) = stream.next().await {
                let mut lines = Vec::new();
                let mut w = phantomdb::arrow::json::LineDelimitedWriter::new(&mut lines);
                w.write(&b?)?;
                w.finish()?;
                drop(w);
                for line in lines.split(|c| *c == b'\n').filter(|l| !l.is_empty()) {
                    if !first {
                        out.write_all(b",")?;
                    }
                    first = false;
                    out.write_all(line)?;
                }
                out.flush()?;
            }
            writeln!(out, "]")?;
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
