//! `COPY ... FROM STDIN` and `COPY ... TO STDOUT` in PostgreSQL's text and CSV formats.
//!
//! Incoming data is spooled to a temporary file (as CSV) and loaded like PhantomDB's own
//! `COPY table FROM 'file'` (through `Connection::copy_from_client_file`, which needs INSERT
//! but not a superuser), so privileges, defaults and constraints apply as for any COPY.
//! Outgoing rows stream from the query as they are produced.

use std::io::Write;

use phantomdb::arrow::array::RecordBatch;
use phantomdb::datafusion::common::ScalarValue;
use phantomdb::datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Statement,
};
use phantomdb::datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use phantomdb::datafusion::sql::sqlparser::parser::Parser;

use crate::error_info::ClientError;
use crate::types;

/// The data format of a COPY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CopyFormat {
    /// PostgreSQL's text format: tab-separated, `\N` for NULL, backslash escapes.
    Text,
    /// CSV.
    Csv,
}

/// The options of a `COPY` to or from the client.
#[derive(Debug, Clone)]
pub(crate) struct CopySpec {
    pub(crate) format: CopyFormat,
    pub(crate) header: bool,
    pub(crate) delimiter: char,
    pub(crate) null: String,
}

/// A `COPY` that exchanges data with the client.
#[derive(Debug, Clone)]
pub(crate) enum ClientCopy {
    /// `COPY table [(columns)] FROM STDIN`.
    In {
        table: String,
        columns: Vec<String>,
        spec: CopySpec,
    },
    /// `COPY {table [(columns)] | (query)} TO STDOUT`: the query whose rows are sent.
    Out { query: String, spec: CopySpec },
}

/// Recognizes a `COPY ... FROM STDIN` / `TO STDOUT`; `None` for any other text.
pub(crate) fn parse_client_copy(sql: &str) -> Option<Result<ClientCopy, ClientError>> {
    let trimmed = sql.trim_start();
    if !trimmed
        .get(..4)
        .is_some_and(|w| w.eq_ignore_ascii_case("copy"))
    {
        return None;
    }
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    if statements.len() != 1 {
        return None;
    }
    let Statement::Copy {
        source,
        to,
        target,
        options,
        legacy_options,
        ..
    } = statements.pop()?
    else {
        return None;
    };
    if !matches!(target, CopyTarget::Stdin | CopyTarget::Stdout) {
        return None;
    }
    Some(client_copy(source, to, options, legacy_options))
}

fn client_copy(
    source: CopySource,
    to: bool,
    options: Vec<CopyOption>,
    legacy: Vec<CopyLegacyOption>,
) -> Result<ClientCopy, ClientError> {
    let spec = spec(options, legacy)?;
    match (source, to) {
        (
            CopySource::Table {
                table_name,
                columns,
            },
            false,
        ) => Ok(ClientCopy::In {
            table: table_name.to_string(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            spec,
        }),
        (
            CopySource::Table {
                table_name,
                columns,
            },
            true,
        ) => {
            let list = if columns.is_empty() {
                "*".to_string()
            } else {
                columns
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            Ok(ClientCopy::Out {
                query: format!("SELECT {list} FROM {table_name}"),
                spec,
            })
        }
        (CopySource::Query(query), true) => Ok(ClientCopy::Out {
            query: query.to_string(),
            spec,
        }),
        (CopySource::Query(_), false) => Err(ClientError::new(
            "42601",
            "COPY FROM needs a table, not a query",
        )),
    }
}

fn spec(options: Vec<CopyOption>, legacy: Vec<CopyLegacyOption>) -> Result<CopySpec, ClientError> {
    let mut format = CopyFormat::Text;
    let mut header = false;
    let mut delimiter = None;
    let mut null = None;
    for option in options {
        match option {
            CopyOption::Format(f) => {
                format = match f.value.to_ascii_lowercase().as_str() {
                    "text" => CopyFormat::Text,
                    "csv" => CopyFormat::Csv,
                    other => {
                        return Err(ClientError::new(
                            "0A000",
                            format!("COPY format \"{other}\" is not supported (text, csv)"),
                        ))
                    }
                }
            }
            CopyOption::Header(h) => header = h,
            CopyOption::Delimiter(d) => delimiter = Some(d),
            CopyOption::Null(n) => null = Some(n),
            CopyOption::Encoding(e)
                if e.eq_ignore_ascii_case("utf8") || e.eq_ignore_ascii_case("utf-8") => {}
            other => {
                return Err(ClientError::new(
                    "0A000",
                    format!("COPY option {other} is not supported"),
                ))
            }
        }
    }
    for option in legacy {
        match option {
            CopyLegacyOption::Csv(csv) => {
                format = CopyFormat::Csv;
                for o in csv {
                    match o {
                        CopyLegacyCsvOption::Header => header = true,
                        other => {
                            return Err(ClientError::new(
                                "0A000",
                                format!("COPY option {other} is not supported"),
                            ))
                        }
                    }
                }
            }
            CopyLegacyOption::Header => header = true,
            CopyLegacyOption::Delimiter(d) => delimiter = Some(d),
            CopyLegacyOption::Null(n) => null = Some(n),
            other => {
                return Err(ClientError::new(
                    "0A000",
                    format!("COPY option {other} is not supported"),
                ))
            }
        }
    }
    let (default_delimiter, default_null) = match format {
        CopyFormat::Text => ('\t', "\\N"),
        CopyFormat::Csv => (',', ""),
    };
    Ok(CopySpec {
        format,
        header,
        delimiter: delimiter.unwrap_or(default_delimiter),
        null: null.unwrap_or_else(|| default_null.to_string()),
    })
}

/// A `COPY ... FROM STDIN` receiving data: rows are converted to CSV in a spool file.
pub(crate) struct CopyIn {
    pub(crate) table: String,
    pub(crate) columns: Vec<String>,
    pub(crate) spec: CopySpec,
    file: tempfile::NamedTempFile,
    /// Bytes of an incomplete last line (CopyData messages need not end on a row).
    partial: Vec<u8>,
    header_pending: bool,
    ended: bool,
    /// The first bad row's error, reported when the data ends.
    failed: Option<ClientError>,
}

impl CopyIn {
    pub(crate) fn new(
        table: String,
        columns: Vec<String>,
        spec: CopySpec,
    ) -> Result<Self, ClientError> {
        let file = tempfile::Builder::new()
            .prefix("phantomdb-copy-")
            .suffix(".csv")
            .tempfile()
            .map_err(|e| ClientError::new("58030", format!("COPY FROM STDIN spool file: {e}")))?;
        Ok(Self {
            header_pending: spec.header,
            table,
            columns,
            spec,
            file,
            partial: Vec::new(),
            ended: false,
            failed: None,
        })
    }

    /// Takes one `CopyData` message. A bad row fails the COPY when the data ends
    /// (PostgreSQL too reads on to `CopyDone`); later data is discarded.
    pub(crate) fn push(&mut self, data: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        self.partial.extend_from_slice(data);
        let Some(last_newline) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        let rest = self.partial.split_off(last_newline + 1);
        let complete = std::mem::replace(&mut self.partial, rest);
        if let Err(e) = self.write_lines(&complete) {
            self.failed = Some(e);
        }
    }

    fn write_lines(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| ClientError::new("22021", "COPY data is not valid UTF-8"))?;
        let mut out = String::with_capacity(text.len() + 16);
        for line in text.split_inclusive('\n') {
            let line = line.strip_suffix('\n').unwrap_or(line);
            let line = line.strip_suffix('\r').unwrap_or(line);
            if self.ended || line == "\\." {
                self.ended = true;
                continue;
            }
            if self.header_pending {
                self.header_pending = false;
                continue;
            }
            match self.spec.format {
                CopyFormat::Csv if self.spec.delimiter == ',' && self.spec.null.is_empty() => {
                    out.push_str(line);
                    out.push('\n');
                }
                CopyFormat::Csv => csv_line(
                    &csv_fields(line, self.spec.delimiter),
                    &self.spec.null,
                    &mut out,
                ),
                CopyFormat::Text => {
                    let fields = text_fields(line, self.spec.delimiter, &self.spec.null)?;
                    csv_line(&fields, "\u{0}", &mut out)
                }
            }
        }
        self.file
            .write_all(out.as_bytes())
            .map_err(|e| ClientError::new("58030", format!("COPY FROM STDIN spool file: {e}")))
    }

    /// Ends the data; returns the `COPY ... FROM` of the spool file that loads it, for
    /// `Connection::copy_from_client_file` (SQL's `COPY ... FROM 'file'` is for superusers).
    pub(crate) fn finish(&mut self) -> Result<phantomdb::CopyFrom, ClientError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if !self.partial.is_empty() {
            let mut last = std::mem::take(&mut self.partial);
            last.push(b'\n');
            self.write_lines(&last)?;
        }
        self.file
            .flush()
            .map_err(|e| ClientError::new("58030", format!("COPY FROM STDIN spool file: {e}")))?;
        let columns = if self.columns.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.columns.join(", "))
        };
        let sql = format!(
            "COPY {}{columns} FROM '' WITH (FORMAT csv, HEADER false)",
            self.table
        );
        let mut statements = phantomdb::parse(&sql).map_err(ClientError::from)?;
        let (Some(phantomdb::Statement::CopyFrom(mut copy)), true) =
            (statements.pop(), statements.is_empty())
        else {
            return Err(ClientError::new("XX000", format!("not a COPY FROM: {sql}")));
        };
        // The spool file, whatever the statement's text says.
        copy.path = self.file.path().to_string_lossy().into_owned();
        Ok(copy)
    }
}

/// Splits a CSV line with `delimiter` (quotes as in CSV) into fields; `None` for a field
/// that was not quoted and is empty.
fn csv_fields(line: &str, delimiter: char) -> Vec<Option<String>> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            c if c == delimiter && !quoted => {
                fields.push(field(std::mem::take(&mut current), was_quoted));
                was_quoted = false;
            }
            c => current.push(c),
        }
    }
    fields.push(field(current, was_quoted));
    fields
}

fn field(text: String, quoted: bool) -> Option<String> {
    if text.is_empty() && !quoted {
        None
    } else {
        Some(text)
    }
}

/// Splits a line of PostgreSQL's text format into fields, undoing its escapes.
fn text_fields(
    line: &str,
    delimiter: char,
    null: &str,
) -> Result<Vec<Option<String>>, ClientError> {
    line.split(delimiter)
        .map(|raw| {
            if raw == null {
                return Ok(None);
            }
            let mut out = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('b') => out.push('\u{8}'),
                    Some('f') => out.push('\u{c}'),
                    Some('v') => out.push('\u{b}'),
                    Some(other) => out.push(other),
                    None => {
                        return Err(ClientError::new(
                            "22P04",
                            "COPY text data ends with a lone backslash",
                        ))
                    }
                }
            }
            Ok(Some(out))
        })
        .collect()
}

/// Writes one CSV row: every value quoted, NULL (and a value equal to `null`) as an empty
/// unquoted field.
fn csv_line(fields: &[Option<String>], null: &str, out: &mut String) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match f {
            Some(v) if v != null => {
                out.push('"');
                out.push_str(&v.replace('"', "\"\""));
                out.push('"');
            }
            _ => {}
        }
    }
    out.push('\n');
}

/// Rows of a batch as `COPY ... TO STDOUT` lines, one per row.
pub(crate) fn encode_rows(
    batch: &RecordBatch,
    spec: &CopySpec,
) -> Result<Vec<Vec<u8>>, ClientError> {
    let mut lines = Vec::with_capacity(batch.num_rows());
    let nulls: Vec<_> = batch.columns().iter().map(|c| c.logical_nulls()).collect();
    for row in 0..batch.num_rows() {
        let mut line = String::new();
        for (i, column) in batch.columns().iter().enumerate() {
            if i > 0 {
                line.push(spec.delimiter);
            }
            if nulls[i].as_ref().is_some_and(|n| n.is_null(row)) {
                line.push_str(&spec.null);
                continue;
            }
            let value = ScalarValue::try_from_array(column, row)
                .map_err(|e| ClientError::new("XX000", e.to_string()))?;
            let text = types::text(&value);
            match spec.format {
                CopyFormat::Text => escape_text(&text, spec.delimiter, &mut line),
                CopyFormat::Csv => quote_csv(&text, spec.delimiter, &spec.null, &mut line),
            }
        }
        line.push('\n');
        lines.push(line.into_bytes());
    }
    Ok(lines)
}

/// The header line of a CSV `COPY ... TO STDOUT ... HEADER`.
pub(crate) fn header_line(
    batch_schema: &phantomdb::arrow::datatypes::Schema,
    spec: &CopySpec,
) -> Vec<u8> {
    let mut line = String::new();
    for (i, f) in batch_schema.fields().iter().enumerate() {
        if i > 0 {
            line.push(spec.delimiter);
        }
        quote_csv(f.name(), spec.delimiter, &spec.null, &mut line);
    }
    line.push('\n');
    line.into_bytes()
}

fn escape_text(text: &str, delimiter: char, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' if delimiter == '\t' => out.push_str("\\t"),
            c if c == delimiter => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

fn quote_csv(text: &str, delimiter: char, null: &str, out: &mut String) {
    let needs = text.is_empty() || text == null || text.contains([delimiter, '"', '\n', '\r']);
    if needs {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_fields_unescape() {
        let f = text_fields("1\ta\\tb\t\\N\tx\\\\y", '\t', "\\N").unwrap();
        assert_eq!(
            f,
            vec![
                Some("1".to_string()),
                Some("a\tb".to_string()),
                None,
                Some("x\\y".to_string())
            ]
        );
    }

    #[test]
    fn csv_fields_tell_empty_from_null() {
        assert_eq!(
            csv_fields("1,\"\",,\"a,\"\"b\"", ','),
            vec![
                Some("1".into()),
                Some(String::new()),
                None,
                Some("a,\"b".into())
            ]
        );
    }

    #[test]
    fn recognizes_only_client_copies() {
        assert!(parse_client_copy("SELECT 1").is_none());
        assert!(parse_client_copy("COPY t FROM '/tmp/x.csv'").is_none());
        assert!(matches!(
            parse_client_copy("copy t (a, b) from stdin with (format csv, header true)"),
            Some(Ok(ClientCopy::In { .. }))
        ));
        assert!(matches!(
            parse_client_copy("COPY (SELECT 1) TO STDOUT"),
            Some(Ok(ClientCopy::Out { .. }))
        ));
    }
}
