//! [`PreparedStatement`]: `Connection::prepare(sql)` for Rust callers, over the same
//! machinery as SQL `PREPARE` / `EXECUTE` (and its fast paths).

use std::sync::atomic::{AtomicU64, Ordering};

use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Ident, Statement as SqlStatement};

use super::Connection;
use super::ResultStream;
use crate::error::{Error, Result};
use crate::result::ResultSet;
use crate::shared::runtime;
use crate::sql::{self, Statement};

/// A statement prepared once and run many times with parameters `$1`, `$2`, ...
///
/// ```no_run
/// # let db = phantomdb::Database::open_in_memory()?;
/// # let conn = db.connect()?;
/// use phantomdb::datafusion::common::ScalarValue;
/// let insert = conn.prepare("INSERT INTO t VALUES ($1, $2)")?;
/// insert.execute(&[ScalarValue::from(1i64), ScalarValue::from("a")])?;
/// let get = conn.prepare("SELECT v FROM t WHERE id = $1")?;
/// let rows = get.query(&[ScalarValue::from(1i64)])?;
/// # Ok::<(), phantomdb::Error>(())
/// ```
///
/// Parameter types are inferred from where they are used. The statement is checked when
/// prepared and planned again against the current snapshot when run (so it sees tables
/// changed since); prepared key lookups and one-row inserts skip planning.
#[derive(Debug)]
pub struct PreparedStatement<'c> {
    conn: &'c Connection,
    name: String,
    description: StatementDescription,
}

/// What a prepared statement takes and returns, as planned when it was prepared.
#[derive(Debug, Clone)]
pub struct StatementDescription {
    /// The type of each parameter (`$1` first); `None` where the statement does not tell.
    pub parameter_types: Vec<Option<DataType>>,
    /// The columns it returns (none for INSERT, UPDATE, DELETE and DDL).
    pub schema: SchemaRef,
}

/// Names of Rust-prepared statements: not valid SQL identifiers unquoted, so they never
/// clash with `PREPARE name`.
fn next_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("$phantomdb_stmt_{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

impl Connection {
    /// Prepares one statement (see [`PreparedStatement`]).
    pub async fn prepare_async(&self, sql: &str) -> Result<PreparedStatement<'_>> {
        let name = next_name();
        let description = self.prepare_named(&name, sql).await?;
        Ok(PreparedStatement {
            conn: self,
            name,
            description,
        })
    }

    /// Prepares one statement under `name`, in the namespace SQL `PREPARE name AS ...`
    /// uses (replacing a statement of that name), and describes it. This is the lower-level
    /// API behind [`Connection::prepare`], for callers that manage statements by name (the
    /// network server's protocol-level prepared statements).
    pub async fn prepare_named(&self, name: &str, sql: &str) -> Result<StatementDescription> {
        let mut statements = sql::parse(sql)?;
        let statement = match (statements.pop(), statements.is_empty()) {
            (Some(Statement::DataFusion(df)), true) => match *df {
                DfStatement::Statement(s) => s,
                other => {
                    return Err(Error::Unsupported(format!("preparing {other}")));
                }
            },
            (Some(_), true) => return Err(Error::Unsupported(
                "preparing PhantomDB's own statements (COPY, LOAD PLUGIN, CREATE TABLE ... USING)"
                    .into(),
            )),
            _ => return Err(Error::Sql("prepare expects exactly one statement".into())),
        };
        self.prepare_entry(SqlStatement::Prepare {
            name: Ident::with_quote('"', name),
            data_types: Vec::new(),
            statement,
        })
        .await
    }

    /// Runs the statement prepared under `name` with `params` bound to `$1`, `$2`, ... and
    /// streams its rows (with query processors' session hooks around it).
    pub async fn execute_named(
        &self,
        name: &str,
        params: Vec<ScalarValue>,
    ) -> Result<ResultStream> {
        let hook = self.start_statement(|| self.prepared_text(name)).await?;
        let result = self.execute_prepared_stream(name, params).await;
        super::processors::hooked_stream(hook, result)
    }

    /// Forgets the statement prepared under `name`; `false` if there was none.
    pub fn close_named(&self, name: &str) -> bool {
        self.prepared.lock().remove(name).is_some()
    }

    /// Blocking form of [`Connection::prepare_async`].
    pub fn prepare(&self, sql: &str) -> Result<PreparedStatement<'_>> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Unsupported(
                "Connection::prepare blocks; inside an async runtime call prepare_async".into(),
            ));
        }
        runtime().block_on(self.prepare_async(sql))
    }
}

impl PreparedStatement<'_> {
    /// What the statement takes and returns.
    pub fn description(&self) -> &StatementDescription {
        &self.description
    }

    /// Runs the statement with `params` bound to `$1`, `$2`, ... and returns its rows.
    pub async fn query_async(&self, params: &[ScalarValue]) -> Result<ResultSet> {
        if let Some(done) = self.conn.execute_immediate(&self.name, params)? {
            return done.into_result_set();
        }
        self.conn
            .execute_named(&self.name, params.to_vec())
            .await?
            .collect()
            .await
    }

    /// Blocking form of [`PreparedStatement::query_async`].
    pub fn query(&self, params: &[ScalarValue]) -> Result<ResultSet> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Unsupported(
                "PreparedStatement::query blocks; inside an async runtime call query_async".into(),
            ));
        }
        // Key lookups and one-row inserts in an open transaction run without the runtime.
        if let Some(done) = self.conn.execute_immediate(&self.name, params)? {
            return done.into_result_set();
        }
        runtime().block_on(self.query_async(params))
    }

    /// Runs the statement and returns how many rows it changed (0 for statements that
    /// change none).
    pub fn execute(&self, params: &[ScalarValue]) -> Result<usize> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Unsupported(
                "PreparedStatement::execute blocks; inside an async runtime call execute_async"
                    .into(),
            ));
        }
        if let Some(done) = self.conn.execute_immediate(&self.name, params)? {
            return Ok(done.count());
        }
        Ok(runtime()
            .block_on(self.query_async(params))?
            .rows_affected
            .unwrap_or(0))
    }

    /// Async form of [`PreparedStatement::execute`].
    pub async fn execute_async(&self, params: &[ScalarValue]) -> Result<usize> {
        if let Some(done) = self.conn.execute_immediate(&self.name, params)? {
            return Ok(done.count());
        }
        Ok(self.query_async(params).await?.rows_affected.unwrap_or(0))
    }
}

impl Drop for PreparedStatement<'_> {
    fn drop(&mut self) {
        self.conn.close_named(&self.name);
    }
}
