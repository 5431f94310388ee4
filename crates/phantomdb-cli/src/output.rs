//! Printing result sets as a table, a Markdown table, CSV or JSON.

use std::io::Write;

use anyhow::Result;
use futures::StreamExt;
use phantomdb::arrow::array::RecordBatch;
use phantomdb::arrow::util::display::{ArrayFormatter, FormatOptions};
use phantomdb::arrow::util::pretty::pretty_format_batches_with_schema;
use phantomdb::{ResultSet, ResultStream};

use crate::progress::Progress;

/// The most rows the table format holds (it needs every row to size its columns); CSV and
/// JSON print rows as they arrive, in bounded memory.
pub const TABLE_ROW_LIMIT: usize = 100_000;

/// Output format of query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Boxed table (default).
    Table,
    /// A Markdown (GitHub) table.
    Markdown,
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
            "markdown" => Ok(Format::Markdown),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            other => Err(format!(
                "unknown format {other} (table, markdown, csv or json)"
            )),
        }
    }
}

/// Writes `rs` to `out`. Statements without a result (DDL) print nothing; row counts of
/// INSERT/UPDATE/DELETE print only in the table formats.
pub fn print(out: &mut impl Write, rs: &ResultSet, format: Format) -> Result<()> {
    if rs.schema.fields().is_empty() {
        return Ok(());
    }
    if rs.rows_affected.is_some() && !format.is_tabular() {
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
        Format::Markdown => print_markdown(out, rs)?,
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

impl Format {
    /// The table formats, which collect rows to size their columns and show row counts.
    fn is_tabular(self) -> bool {
        matches!(self, Format::Table | Format::Markdown)
    }
}

/// A Markdown table: a header row, a separator and one row per result row (`|` escaped).
fn print_markdown(out: &mut impl Write, rs: &ResultSet) -> Result<()> {
    let escape = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let names: Vec<String> = rs
        .schema
        .fields()
        .iter()
        .map(|f| escape(f.name()))
        .collect();
    writeln!(out, "| {} |", names.join(" | "))?;
    writeln!(out, "|{}", "---|".repeat(names.len()))?;
    let options = FormatOptions::default().with_null("NULL");
    for b in &rs.batches {
        let formatters = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for r in 0..b.num_rows() {
            let cells: Vec<String> = formatters
                .iter()
                .map(|f| escape(&f.value(r).to_string()))
                .collect();
            writeln!(out, "| {} |", cells.join(" | "))?;
        }
    }
    Ok(())
}

/// Prints a statement's rows as they arrive. CSV and JSON write each batch as soon as it is
/// produced (and flush it); the table formats collect up to [`TABLE_ROW_LIMIT`] rows, then
/// say that they stopped there. `progress` counts the rows and is cleared before anything is
/// printed.
pub async fn print_stream(
    out: &mut impl Write,
    stream: &mut ResultStream,
    format: Format,
    progress: &Progress,
) -> Result<()> {
    let schema = stream.schema().clone();
    if schema.fields().is_empty() {
        return Ok(());
    }
    if stream.rows_affected().is_some() && !format.is_tabular() {
        return Ok(());
    }
    match format {
        Format::Table | Format::Markdown => {
            let mut batches: Vec<RecordBatch> = Vec::new();
            let mut rows = 0;
            let mut truncated = false;
            while let Some(b) = stream.next().await {
                let b = b?;
                rows += b.num_rows();
                progress.add_rows(b.num_rows());
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
            progress.clear();
            print(out, &rs, format)?;
            if truncated {
                writeln!(
                    out,
                    "(output stopped after {TABLE_ROW_LIMIT} rows; --format csv or json prints every row)"
                )?;
            }
        }
        Format::Csv => {
            // The header goes out with the first rows (or at the end), so that a progress
            // bar can be shown until then.
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            let mut header = Some(format!("{}\n", names.join(",")));
            let mut text = Vec::new();
            while let Some(b) = stream.next().await {
                let b = b?;
                progress.clear();
                if let Some(h) = header.take() {
                    out.write_all(h.as_bytes())?;
                }
                // Formatted into a buffer first, so a closed output is a plain I/O error.
                text.clear();
                let mut w = phantomdb::arrow::csv::WriterBuilder::new()
                    .with_header(false)
                    .build(&mut text);
                w.write(&b)?;
                drop(w);
                out.write_all(&text)?;
                out.flush()?;
            }
            progress.clear();
            if let Some(h) = header.take() {
                out.write_all(h.as_bytes())?;
            }
        }
        Format::Json => {
            let mut first = true;
            while let Some(b) = stream.next().await {
                let b = b?;
                progress.clear();
                let mut lines = Vec::new();
                let mut w = phantomdb::arrow::json::LineDelimitedWriter::new(&mut lines);
                w.write(&b)?;
                w.finish()?;
                drop(w);
                for line in lines.split(|c| *c == b'\n').filter(|l| !l.is_empty()) {
                    out.write_all(if first { b"[" } else { b"," })?;
                    first = false;
                    out.write_all(line)?;
                }
                out.flush()?;
            }
            progress.clear();
            if first {
                out.write_all(b"[")?;
            }
            writeln!(out, "]")?;
        }
    }
    Ok(())
}
