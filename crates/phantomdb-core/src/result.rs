//! [`ResultSet`]: what a statement returns when its rows are collected.

use std::sync::Arc;

use arrow::array::{RecordBatch, UInt64Array};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::dataframe::DataFrame;

use crate::error::Result;

/// The result of a statement: a schema and zero or more batches.
#[derive(Debug, Clone)]
pub struct ResultSet {
    /// Column names and types.
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
    /// For INSERT, UPDATE, DELETE and COPY FROM: how many rows the statement changed.
    pub rows_affected: Option<usize>,
}

impl ResultSet {
    /// No columns, no rows (DDL, transaction control, SET).
    pub(crate) fn empty() -> Self {
        Self {
            schema: Arc::new(Schema::empty()),
            batches: Vec::new(),
            rows_affected: None,
        }
    }

    /// The row count of a writing statement, as a one-row `count` result.
    pub(crate) fn count(n: usize) -> Result<Self> {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "count",
            DataType::UInt64,
            false,
        )]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(UInt64Array::from(vec![n as u64]))],
        )?;
        Ok(Self {
            schema,
            batches: vec![batch],
            rows_affected: Some(n),
        })
    }

    /// Rows already in memory.
    pub(crate) fn rows(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        Self {
            schema,
            batches,
            rows_affected: None,
        }
    }

    /// Runs a DataFrame to the end and keeps its rows.
    pub(crate) async fn collect(df: DataFrame) -> Result<Self> {
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        let schema = batches.first().map(|b| b.schema()).unwrap_or(schema);
        // Columns renamed apart for planning show their own names again.
        if let Some(visible) = crate::planner::visible_schema(&schema) {
            let batches = batches
                .into_iter()
                .map(|b| crate::planner::with_visible_names(b, &visible))
                .collect::<Result<_>>()?;
            return Ok(Self::rows(visible, batches));
        }
        Ok(Self::rows(schema, batches))
    }

    /// Total number of rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }

    /// All rows in one batch.
    pub fn concat(&self) -> Result<RecordBatch> {
        Ok(concat_batches(&self.schema, &self.batches)?)
    }
}
