//! [`ResultStream`]: a statement's rows as they are produced.
//!
//! A stream holds what its statement reads through (its snapshot, its engine transactions and
//! the plugins it may call) until it ends or is dropped; in autocommit mode its engine
//! transactions close then. A connection may hold several open streams. Within an explicit
//! transaction a stream reads the transaction's own view: `COMMIT` or `ROLLBACK` while one
//! of its streams is still open fails with "still in use" (drop or finish the stream first).
//! Outside a transaction a stream reads the snapshot taken when it started, whatever is
//! written meanwhile.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::{Stream, StreamExt};

use super::cancel::Interrupt;
use super::processors::QueryEndHook;
use super::txn::StatementEnd;
use crate::error::{Error, Result};
use crate::plugins::StatementPin;
use crate::result::ResultSet;
use crate::shared::runtime;

/// The rows of a statement, batch by batch, as they are produced.
///
/// Use it as a [`Stream`] from async code, or call [`ResultStream::next_batch`] (blocking).
pub struct ResultStream {
    schema: SchemaRef,
    /// Resolves when the statement is canceled or times out while its rows are read.
    interrupted: Option<Pin<Box<dyn Future<Output = Error> + Send>>>,
    live: Option<SendableRecordBatchStream>,
    ready: VecDeque<RecordBatch>,
    rows_affected: Option<usize>,
    _pins: Vec<StatementPin>,
    end: Option<StatementEnd>,
    /// Query processors' `on_query_end`, fired when the rows end, fail or are dropped.
    end_hook: Option<QueryEndHook>,
    /// Rows handed out so far (for `on_query_end`).
    rows_read: u64,
}

impl std::fmt::Debug for ResultStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultStream")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl ResultStream {
    /// A stream over a running plan.
    pub(crate) fn live(
        stream: SendableRecordBatchStream,
        pins: Vec<StatementPin>,
        end: Option<StatementEnd>,
        interrupt: Interrupt,
    ) -> Self {
        let stream = visible_names(stream);
        Self {
            schema: stream.schema(),
            interrupted: Some(Box::pin(interrupt.fired())),
            live: Some(stream),
            ready: VecDeque::new(),
            rows_affected: None,
            _pins: pins,
            end,
            end_hook: None,
            rows_read: 0,
        }
    }

    /// A stream over rows already collected (writes, DDL, PhantomDB's own statements).
    pub(crate) fn ready(rs: ResultSet) -> Self {
        Self {
            schema: rs.schema,
            interrupted: None,
            live: None,
            ready: rs.batches.into(),
            rows_affected: rs.rows_affected,
            _pins: Vec::new(),
            end: None,
            end_hook: None,
            rows_read: 0,
        }
    }

    /// Fires `hook` when the statement ends: at once for rows already collected, else when
    /// the rows end, fail, or the stream is dropped.
    pub(crate) fn with_end_hook(mut self, hook: QueryEndHook) -> Self {
        if self.live.is_none() {
            let rows = self
                .rows_affected
                .unwrap_or_else(|| self.ready.iter().map(|b| b.num_rows()).sum());
            hook.fire(Ok(Some(rows as u64)));
        } else {
            self.end_hook = Some(hook);
        }
        self
    }

    /// Fires the end hook, if any is still waiting.
    fn fire_end_hook(&mut self, error: Option<&Error>) {
        if let Some(hook) = self.end_hook.take() {
            hook.fire(match error {
                Some(e) => Err(e),
                None => Ok(Some(self.rows_read)),
            });
        }
    }

    /// Column names and types.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// For INSERT, UPDATE, DELETE and COPY FROM: how many rows the statement changed.
    pub fn rows_affected(&self) -> Option<usize> {
        self.rows_affected
    }

    /// The next batch, blocking on PhantomDB's runtime; `None` at the end.
    ///
    /// From async code, use the stream's [`Stream`] implementation instead.
    pub fn next_batch(&mut self) -> Option<Result<RecordBatch>> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Some(Err(Error::Unsupported(
                "ResultStream::next_batch blocks; inside an async runtime use it as a Stream"
                    .into(),
            )));
        }
        runtime().block_on(self.next())
    }

    /// Reads the rest of the stream into a [`ResultSet`].
    pub async fn collect(mut self) -> Result<ResultSet> {
        let mut batches = Vec::new();
        while let Some(b) = self.next().await {
            batches.push(b?);
        }
        Ok(ResultSet {
            schema: self.schema.clone(),
            batches,
            rows_affected: self.rows_affected,
        })
    }

    /// Ends the statement: the plan first, then (autocommit) its engine transactions.
    fn finish(&mut self) {
        self.live = None;
        self.interrupted = None;
        if let Some(end) = self.end.take() {
            if let Err(e) = end.finish() {
                tracing::warn!(error = %e, "closing a statement's engine transactions failed");
            }
        }
    }
}

/// `stream` with the columns renamed apart for planning under their own names again.
fn visible_names(stream: SendableRecordBatchStream) -> SendableRecordBatchStream {
    let Some(schema) = crate::planner::visible_schema(&stream.schema()) else {
        return stream;
    };
    let renamed = schema.clone();
    let batches = stream.map(move |b| {
        b.and_then(|b| crate::planner::with_visible_names(b, &renamed).map_err(Into::into))
    });
    Box::pin(datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(schema, batches))
}

impl Stream for ResultStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(b) = self.ready.pop_front() {
            return Poll::Ready(Some(Ok(b)));
        }
        if self.live.is_none() {
            return Poll::Ready(None);
        }
        if let Some(interrupted) = self.interrupted.as_mut() {
            if let Poll::Ready(e) = interrupted.as_mut().poll(cx) {
                self.interrupted = None;
                self.finish();
                self.fire_end_hook(Some(&e));
                return Poll::Ready(Some(Err(e)));
            }
        }
        let Some(live) = self.live.as_mut() else {
            return Poll::Ready(None);
        };
        match live.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(b))) => {
                self.rows_read += b.num_rows() as u64;
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(Some(Err(e))) => {
                let e = Error::from(e);
                self.fire_end_hook(Some(&e));
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.finish();
                self.fire_end_hook(None);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for ResultStream {
    fn drop(&mut self) {
        self.finish();
        // Dropped before its end: the rows read so far are what the statement returned.
        self.fire_end_hook(None);
    }
}
