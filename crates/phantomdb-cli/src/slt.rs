//! `phantomdb test`: runs sqllogictest files, each against a fresh file-backed database.
//!
//! Every `statement` and `query` is a record; each file runs to its end (or to `halt`), every
//! failed record is reported with its `file:line`, and the run ends with `N passed, N failed`
//! over records. Values are written as sqllogictest files expect them: `NULL`, `(empty)` for
//! an empty string, integers as they are and floating-point numbers (`R`) with three decimals.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use async_trait::async_trait;
use phantomdb::arrow::array::{Array, RecordBatch};
use phantomdb::arrow::datatypes::DataType;
use phantomdb::arrow::util::display::{ArrayFormatter, FormatOptions};
use phantomdb::{Connection, Database};
use sqllogictest::{DBOutput, DefaultColumnType, Record, RecordOutput};

/// One connection to the database under test.
struct SltConnection {
    conn: Connection,
    /// Where the messages of errors the statements raise are appended, if anywhere.
    error_log: Option<PathBuf>,
}

#[async_trait]
impl sqllogictest::AsyncDB for SltConnection {
    type Error = phantomdb::Error;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, phantomdb::Error> {
        let result = self.conn.execute_async(sql).await;
        if let (Err(e), Some(log)) = (&result, &self.error_log) {
            log_error(log, e);
        }
        let rs = result?;
        if let Some(n) = rs.rows_affected {
            return Ok(DBOutput::StatementComplete(n as u64));
        }
        if rs.schema.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        let types = rs
            .schema
            .fields()
            .iter()
            .map(|f| column_type(f.data_type()))
            .collect();
        let mut rows = Vec::new();
        for batch in &rs.batches {
            rows.extend(rows_as_strings(batch).map_err(|e| phantomdb::Error::Sql(e.to_string()))?);
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "phantomdb"
    }

    fn error_sql_state(err: &phantomdb::Error) -> Option<String> {
        Some(err.sqlstate().code().to_string())
    }
}

/// Appends `SQLSTATE<TAB>message` to the error log (for the test that reads every message
/// the suites provoke).
fn log_error(path: &Path, e: &phantomdb::Error) {
    let line = format!(
        "{}\t{}\n",
        e.sqlstate().code(),
        e.to_string().replace('\n', "\\n")
    );
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(line.as_bytes());
    }
}

/// The sqllogictest type of a column: `I` integers, `R` floating-point and decimal numbers,
/// `T` everything else.
fn column_type(t: &DataType) -> DefaultColumnType {
    if t.is_integer() {
        DefaultColumnType::Integer
    } else if is_real(t) {
        DefaultColumnType::FloatingPoint
    } else {
        DefaultColumnType::Text
    }
}

fn is_real(t: &DataType) -> bool {
    t.is_floating() || matches!(t, DataType::Decimal128(_, _) | DataType::Decimal256(_, _))
}

/// The rows of `batch` as sqllogictest spells values.
fn rows_as_strings(batch: &RecordBatch) -> Result<Vec<Vec<String>>> {
    let options = FormatOptions::default().with_null("NULL");
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = Vec::with_capacity(batch.num_rows());
    for r in 0..batch.num_rows() {
        let row = batch
            .columns()
            .iter()
            .zip(&formatters)
            .map(|(column, f)| {
                let s = f.value(r).to_string();
                if column.is_null(r) {
                    s
                } else if is_real(column.data_type()) {
                    real(&s)
                } else if s.is_empty() {
                    "(empty)".to_string()
                } else {
                    s
                }
            })
            .collect();
        rows.push(row);
    }
    Ok(rows)
}

/// A floating-point or decimal value with three decimals (`2.5` → `2.500`), as SQLite's
/// sqllogictest prints `R` columns; `NaN` and infinities as they are.
fn real(text: &str) -> String {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => format!("{v:.3}"),
        _ => text.to_string(),
    }
}

/// The column-type check: a query must return as many columns as its type string names.
/// The letters themselves are not compared (suites written for SQLite use `T` for anything).
#[allow(clippy::ptr_arg)] // the signature sqllogictest's `ColumnTypeValidator` requires
fn same_column_count(actual: &Vec<DefaultColumnType>, expected: &Vec<DefaultColumnType>) -> bool {
    actual.len() == expected.len()
}

/// Options of a test run.
pub struct TestOptions {
    /// Plugins to load into every test database.
    pub plugins: crate::PluginOptions,
    /// Storage engine for the tables the tests create.
    pub engine: Option<String>,
    /// Stop at the first failed record.
    pub fail_fast: bool,
    /// Append the message of every error a statement raises to this file.
    pub error_log: Option<PathBuf>,
}

/// The records of one file: how many passed, and each failure's report.
#[derive(Default)]
struct FileResult {
    passed: usize,
    skipped: usize,
    failures: Vec<String>,
}

/// Runs every file; prints each failed record as it happens, one line per file, and a final
/// `N passed, N failed` line over records. Returns the number of failed records.
pub async fn run_files(files: &[PathBuf], options: &TestOptions) -> Result<usize> {
    let (mut passed, mut failed) = (0, 0);
    let mut failed_files = Vec::new();
    let mut stdout = std::io::stdout();
    for file in files {
        let result = match run_file(file, options).await {
            Ok(r) => r,
            Err(e) => FileResult {
                failures: vec![format!("{}: {e:#}", file.display())],
                ..FileResult::default()
            },
        };
        passed += result.passed;
        failed += result.failures.len();
        let skipped = if result.skipped > 0 {
            format!(", {} skipped", result.skipped)
        } else {
            String::new()
        };
        if result.failures.is_empty() {
            writeln!(
                stdout,
                "ok     {} ({} records{skipped})",
                file.display(),
                result.passed
            )?;
        } else {
            writeln!(
                stdout,
                "FAILED {} ({} passed, {} failed{skipped})",
                file.display(),
                result.passed,
                result.failures.len()
            )?;
            failed_files.push(file.display().to_string());
        }
        stdout.flush()?;
        if options.fail_fast && !result.failures.is_empty() {
            break;
        }
    }
    if !failed_files.is_empty() {
        writeln!(stdout, "files with failures: {}", failed_files.join(", "))?;
    }
    writeln!(stdout, "{passed} passed, {failed} failed")?;
    Ok(failed)
}

async fn run_file(file: &Path, options: &TestOptions) -> Result<FileResult> {
    let dir = tempfile::tempdir()?;
    let db = Database::open(dir.path().join("test.db"))?;
    if !crate::load_plugin_dirs(&db, &options.plugins)? {
        anyhow::bail!("some plugins failed to load");
    }
    if let Some(engine) = &options.engine {
        db.connect()?
            .execute_async(&format!(
                "SET default_table_access_method = '{}'",
                engine.replace('\'', "''")
            ))
            .await?;
    }
    let records =
        sqllogictest::parse_file::<DefaultColumnType>(file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let engine_label = options.engine.clone().unwrap_or_else(|| "redb".to_string());
    let error_log = options.error_log.clone();
    let mut runner = sqllogictest::Runner::new(move || {
        let db = db.clone();
        let error_log = error_log.clone();
        async move {
            Ok(SltConnection {
                conn: db.connect()?,
                error_log,
            })
        }
    });
    runner.add_label("phantomdb");
    runner.add_label(&engine_label);
    runner.with_column_validator(same_column_count);
    let mut result = FileResult::default();
    let mut stdout = std::io::stdout();
    for record in records {
        if matches!(record, Record::Halt { .. }) {
            break;
        }
        let counted = matches!(record, Record::Statement { .. } | Record::Query { .. });
        match runner.run_async(record).await {
            Ok(RecordOutput::Nothing) if counted => result.skipped += 1,
            Ok(_) if counted => result.passed += 1,
            Ok(_) => {}
            Err(e) => {
                let report = format!(
                    "{}: {}",
                    e.location(),
                    e.kind().display(false).to_string().trim_end()
                );
                writeln!(stdout, "{report}\n")?;
                stdout.flush()?;
                result.failures.push(report);
                if options.fail_fast {
                    break;
                }
            }
        }
    }
    runner.shutdown_async().await;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reals_have_three_decimals() {
        assert_eq!(real("2.5"), "2.500");
        assert_eq!(real("-0.0001"), "-0.000");
        assert_eq!(real("NaN"), "NaN");
    }
}
