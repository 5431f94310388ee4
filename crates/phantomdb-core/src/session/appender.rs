//! [`Appender`]: bulk loads from code (`Connection::appender(table)`), as DuckDB's and
//! SQLite's users expect: rows are buffered, turned into Arrow columns and inserted a batch
//! at a time, with no SQL and no planning per row.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use datafusion::common::ScalarValue;

use super::Connection;
use crate::catalog::TableDef;
use crate::error::{Error, Result, SqlState};
use crate::exec;
use crate::fastpath::column_array;
use crate::privileges::Privilege;
use crate::result::ResultSet;
use crate::shared::runtime;
use crate::table::table_batch;

/// Rows buffered before they are inserted as one batch.
const BATCH_ROWS: usize = 8192;

/// Appends rows to one table, a batch at a time (see [`Connection::appender`]).
///
/// ```no_run
/// # let db = phantomdb::Database::open_in_memory()?;
/// # let conn = db.connect()?;
/// use phantomdb::datafusion::common::ScalarValue;
/// let mut appender = conn.appender("t")?;
/// for i in 0..1_000_000i64 {
///     appender.append_row(&[ScalarValue::from(i), ScalarValue::from("x")])?;
/// }
/// let rows = appender.finish()?; // commits (outside BEGIN ... COMMIT)
/// # Ok::<(), phantomdb::Error>(())
/// ```
///
/// Transactions: outside `BEGIN ... COMMIT` the appender runs its own transaction (it takes
/// the writer lock when created, waiting at most the busy timeout): every row it appends
/// commits at once in [`Appender::finish`], and an appender dropped without `finish`, or
/// whose insert fails, rolls all of them back. Statements run on the connection meanwhile
/// belong to that transaction too. Inside `BEGIN ... COMMIT` the rows are part of the open
/// transaction, which the caller commits or rolls back; a failed batch inserts none of its
/// rows (the transaction stays open, as after any failed statement).
///
/// Constraints are those of `INSERT`: values are cast to the column types, NOT NULL and the
/// primary key are enforced (against stored rows and within the load), and the connection's
/// role needs INSERT on the table. Columns take values in table order; there are no
/// DEFAULTs (pass every column). Errors surface when the batch holding the row is inserted:
/// every 8192 rows, at [`Appender::flush`] and at `finish`.
pub struct Appender<'c> {
    conn: &'c Connection,
    table: String,
    /// The table when the appender was created; batches are checked against it.
    def: Arc<TableDef>,
    /// Buffered values, one vector per column.
    columns: Vec<Vec<ScalarValue>>,
    buffered: usize,
    appended: usize,
    /// The appender began the transaction (the connection was in autocommit mode).
    owns_txn: bool,
    /// Finished, or failed and rolled back.
    done: bool,
}

impl std::fmt::Debug for Appender<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender")
            .field("table", &self.table)
            .field("appended", &self.appended)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// An [`Appender`] for bulk loads into `table` (named as in SQL: unquoted names are
    /// case-insensitive).
    pub async fn appender_async(&self, table: &str) -> Result<Appender<'_>> {
        // Rows appended are not planned, so no query processor could check them.
        self.planner.refuse_unplanned_write("the appender")?;
        let owns_txn = !self.in_transaction().await;
        if owns_txn {
            self.txn.begin().await?;
        }
        let opened = self.appender_table(table).await;
        match opened {
            Ok((name, def)) => Ok(Appender {
                conn: self,
                columns: vec![Vec::with_capacity(BATCH_ROWS); def.schema.fields().len()],
                table: name,
                def,
                buffered: 0,
                appended: 0,
                owns_txn,
                done: false,
            }),
            Err(e) => {
                if owns_txn {
                    self.txn.rollback().await?;
                }
                Err(e)
            }
        }
    }

    /// Blocking form of [`Connection::appender_async`].
    pub fn appender(&self, table: &str) -> Result<Appender<'_>> {
        blocking("Connection::appender", "appender_async")?;
        runtime().block_on(self.appender_async(table))
    }

    /// Opens the write transaction (taking the writer lock) and finds the table in it, with
    /// the INSERT privilege checked.
    async fn appender_table(&self, table: &str) -> Result<(String, Arc<TableDef>)> {
        let write = self.txn.write().await?;
        let catalog = write.scope.w.lock().catalog();
        drop(write);
        let (name, def) = match catalog.table(table) {
            Some(def) => (table.to_string(), def.clone()),
            None => {
                let lower = table.to_lowercase();
                let def = catalog
                    .table(&lower)
                    .cloned()
                    .ok_or_else(|| Error::undefined_table(table))?;
                (lower, def)
            }
        };
        self.planner
            .actor(&catalog)
            .check_table(&def, Privilege::Insert)?;
        Ok((name, def))
    }
}

impl Appender<'_> {
    /// Buffers one row: one value per column, in table order (cast to the column types).
    pub async fn append_row_async(&mut self, values: &[ScalarValue]) -> Result<()> {
        self.check_open()?;
        if values.len() != self.columns.len() {
            return Err(Error::Data(
                SqlState::InvalidParameterValue,
                format!(
                    "table \"{}\" has {} columns, the row has {} values",
                    self.table,
                    self.columns.len(),
                    values.len()
                ),
            ));
        }
        for (column, v) in self.columns.iter_mut().zip(values) {
            column.push(v.clone());
        }
        self.buffered += 1;
        if self.buffered >= BATCH_ROWS {
            self.flush_async().await?;
        }
        Ok(())
    }

    /// Blocking form of [`Appender::append_row_async`].
    pub fn append_row(&mut self, values: &[ScalarValue]) -> Result<()> {
        if self.buffered + 1 < BATCH_ROWS {
            // Buffering only: no need for the runtime.
            self.check_open()?;
            if values.len() == self.columns.len() {
                for (column, v) in self.columns.iter_mut().zip(values) {
                    column.push(v.clone());
                }
                self.buffered += 1;
                return Ok(());
            }
        }
        blocking("Appender::append_row", "append_row_async")?;
        runtime().block_on(self.append_row_async(values))
    }

    /// Inserts a batch whose columns are the table's, in table order (cast to the column
    /// types; names are not compared), after the rows buffered before it.
    pub async fn append_batch_async(&mut self, batch: RecordBatch) -> Result<()> {
        self.check_open()?;
        self.flush_async().await?;
        if batch.num_columns() != self.columns.len() {
            return Err(Error::Data(
                SqlState::InvalidParameterValue,
                format!(
                    "table \"{}\" has {} columns, the batch has {}",
                    self.table,
                    self.columns.len(),
                    batch.num_columns()
                ),
            ));
        }
        self.insert(batch.columns().to_vec()).await
    }

    /// Blocking form of [`Appender::append_batch_async`].
    pub fn append_batch(&mut self, batch: RecordBatch) -> Result<()> {
        blocking("Appender::append_batch", "append_batch_async")?;
        runtime().block_on(self.append_batch_async(batch))
    }

    /// Inserts the buffered rows now (their errors surface here).
    pub async fn flush_async(&mut self) -> Result<()> {
        self.check_open()?;
        if self.buffered == 0 {
            return Ok(());
        }
        let n = self.buffered;
        let fields = self.def.schema.fields().clone();
        let mut arrays = Vec::with_capacity(fields.len());
        for (field, column) in fields.iter().zip(self.columns.iter_mut()) {
            let values = std::mem::replace(column, Vec::with_capacity(BATCH_ROWS));
            match column_array(field.data_type(), values) {
                Some(a) => arrays.push(a),
                None => {
                    let e = Error::Data(
                        SqlState::InvalidTextRepresentation,
                        format!(
                            "a value for column \"{}\" of table \"{}\" does not convert to {}",
                            field.name(),
                            self.table,
                            field.data_type()
                        ),
                    );
                    return Err(self.failed(e).await);
                }
            }
        }
        self.buffered = 0;
        debug_assert!(arrays.iter().all(|a| a.len() == n));
        self.insert(arrays).await
    }

    /// Blocking form of [`Appender::flush_async`].
    pub fn flush(&mut self) -> Result<()> {
        blocking("Appender::flush", "flush_async")?;
        runtime().block_on(self.flush_async())
    }

    /// Inserts what is buffered and, when the appender runs its own transaction, commits it
    /// (durably). Returns how many rows the appender inserted.
    pub async fn finish_async(mut self) -> Result<usize> {
        self.flush_async().await?;
        self.done = true;
        if self.owns_txn {
            self.conn.txn.commit().await?;
        }
        Ok(self.appended)
    }

    /// Blocking form of [`Appender::finish_async`].
    pub fn finish(self) -> Result<usize> {
        blocking("Appender::finish", "finish_async")?;
        runtime().block_on(self.finish_async())
    }

    fn check_open(&self) -> Result<()> {
        if self.done {
            return Err(Error::Transaction(
                SqlState::NoActiveSqlTransaction,
                format!(
                    "the appender on \"{}\" failed or finished; its rows were rolled back or \
                     committed",
                    self.table
                ),
            ));
        }
        Ok(())
    }

    /// Inserts columns (table order) in the write transaction, as INSERT would.
    async fn insert(&mut self, columns: Vec<ArrayRef>) -> Result<()> {
        let conn = self.conn;
        let table = self.table.clone();
        let expected = self.def.clone();
        let inserted = conn
            .write(|scope| async move {
                let def = exec::table_def(&scope.w, &table)?;
                if def.id != expected.id || def.schema != expected.schema {
                    return Err(Error::Catalog(
                        SqlState::ObjectInUse,
                        format!("table \"{table}\" changed while the appender was loading it"),
                    ));
                }
                let batch = table_batch(&def, columns)?;
                let n = batch.num_rows();
                if n > 0 {
                    scope.table(&conn.planner, &def)?.insert(batch)?;
                }
                ResultSet::count(n)
            })
            .await;
        match inserted {
            Ok(rs) => {
                self.appended += rs.rows_affected.unwrap_or(0);
                Ok(())
            }
            Err(e) => Err(self.failed(e).await),
        }
    }

    /// After a failed insert: an appender with its own transaction rolls it back (all its
    /// rows) and is done.
    async fn failed(&mut self, e: Error) -> Error {
        if self.owns_txn {
            self.done = true;
            if let Err(r) = self.conn.txn.rollback().await {
                tracing::warn!("appender rollback: {r}");
            }
        }
        e
    }
}

impl Drop for Appender<'_> {
    fn drop(&mut self) {
        if self.owns_txn && !self.done {
            // Not finished: nothing it appended commits.
            if let Err(e) = self.conn.txn.rollback_now() {
                tracing::warn!(table = %self.table, "dropping an unfinished appender: {e}");
            }
        }
    }
}

/// Refuses a blocking call from inside an async runtime.
fn blocking(what: &str, instead: &str) -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::Unsupported(format!(
            "{what} blocks; inside an async runtime call {instead}"
        )));
    }
    Ok(())
}
