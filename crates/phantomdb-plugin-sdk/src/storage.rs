//! Storage engines: the safe side of the `phantomdb.storage/1` interface.
//!
//! A plugin registers its engines with [`crate::Registrar::storage_engines`]. Users then put tables on
//! an engine with `CREATE TABLE t (...) USING engine WITH (key = 'value', ...)`.
//!
//! The host calls an engine in two ways:
//! * **Table lifecycle** ([`StorageEngine::create_table`], [`StorageEngine::drop_table`]) is not
//!   transactional. The host creates eagerly (and drops again if its transaction rolls back) and
//!   drops only after its transaction committed.
//! * **Data** goes through a [`StorageTransaction`] from [`StorageEngine::begin`]: scans, inserts,
//!   deletes and updates, then `commit` or `rollback`. An engine that declares
//!   [`Capabilities::transactions`] keeps its changes invisible until `commit`; the host refuses
//!   writes to other engines inside `BEGIN ... COMMIT`.
//!
//! Scans return Arrow batches; filters arrive as [`Filter`] trees (JSON across the C boundary)
//! that the engine may use, and the engine tells the host per filter whether it applies it
//! exactly, inexactly (to skip data) or not at all ([`FilterSupport`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch,
    RecordBatchReader, Scalar, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use arrow_schema::{DataType, SchemaRef};
use serde::{Deserialize, Serialize};

pub use phantomdb_plugin_abi::ROW_ID_COLUMN;

/// Engine options: the `WITH (key = 'value', ...)` of `CREATE TABLE`, completed by
/// [`StorageEngine::create_table`].
pub type Options = BTreeMap<String, String>;

/// A table as the host identifies it in every call.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// The host's id: unique in the database, stable across renames.
    pub id: u64,
    /// Current name (informational: it changes with `ALTER TABLE ... RENAME`).
    pub name: String,
    /// Current schema. Scans must return these column types.
    pub schema: SchemaRef,
    /// Engine options.
    pub options: Options,
}

/// What an engine can do. The host refuses the rest with a clear error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Takes part in transactions (writes invisible until commit, undone by rollback).
    pub transactions: bool,
    /// Supports `delete`/`update` by row id (and row ids in scans).
    pub update_delete: bool,
    /// Enforces primary keys and serves key lookups (otherwise the host enforces keys by
    /// scanning the key columns).
    pub indexes: bool,
    /// Answers [`StorageTransaction::statistics`].
    pub statistics: bool,
}

impl Capabilities {
    /// As ABI bits ([`phantomdb_plugin_abi::storage_caps`]).
    pub fn to_bits(self) -> u64 {
        use phantomdb_plugin_abi::storage_caps as c;
        let mut bits = 0;
        if self.transactions {
            bits |= c::TRANSACTIONS;
        }
        if self.update_delete {
            bits |= c::UPDATE_DELETE;
        }
        if self.indexes {
            bits |= c::INDEXES;
        }
        if self.statistics {
            bits |= c::STATISTICS;
        }
        bits
    }

    /// From ABI bits (unknown bits are ignored).
    pub fn from_bits(bits: u64) -> Self {
        use phantomdb_plugin_abi::storage_caps as c;
        Self {
            transactions: bits & c::TRANSACTIONS != 0,
            update_delete: bits & c::UPDATE_DELETE != 0,
            indexes: bits & c::INDEXES != 0,
            statistics: bits & c::STATISTICS != 0,
        }
    }

    /// Names of the capabilities present, e.g. `["transactions", "update_delete"]`.
    pub fn names(self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.transactions {
            out.push("transactions");
        }
        if self.update_delete {
            out.push("update_delete");
        }
        if self.indexes {
            out.push("indexes");
        }
        if self.statistics {
            out.push("statistics");
        }
        out
    }
}

/// How an engine handles one filter of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterSupport {
    /// Ignored by the engine; the host applies it.
    Unsupported,
    /// Used to skip data, but rows failing it may be returned; the host applies it again.
    Inexact,
    /// Applied exactly: the engine returns only rows that pass.
    Exact,
}

impl FilterSupport {
    /// As the ABI byte ([`phantomdb_plugin_abi::filter_support`]).
    pub fn to_u8(self) -> u8 {
        use phantomdb_plugin_abi::filter_support as f;
        match self {
            Self::Unsupported => f::UNSUPPORTED,
            Self::Inexact => f::INEXACT,
            Self::Exact => f::EXACT,
        }
    }

    /// From the ABI byte (unknown values mean unsupported).
    pub fn from_u8(v: u8) -> Self {
        use phantomdb_plugin_abi::filter_support as f;
        match v {
            f::EXACT => Self::Exact,
            f::INEXACT => Self::Inexact,
            _ => Self::Unsupported,
        }
    }
}

/// A literal value in a [`Filter`]. JSON: `{"int": 5}`, `{"str": "x"}`, `"null"`, ...
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// SQL NULL.
    Null,
    /// Boolean.
    Bool(bool),
    /// Signed integer (any width).
    Int(i64),
    /// Unsigned integer (any width).
    UInt(u64),
    /// Floating point.
    Float(f64),
    /// Text.
    Str(String),
    /// Date: days since 1970-01-01.
    Date32(i32),
    /// Timestamp: microseconds since the epoch (no time zone).
    TimestampUs(i64),
}

impl Value {
    /// The value as a one-element Arrow array of its natural type.
    pub fn to_array(&self) -> ArrayRef {
        use std::sync::Arc;
        match self {
            Value::Null => arrow_array::new_null_array(&DataType::Null, 1),
            Value::Bool(v) => Arc::new(BooleanArray::from(vec![*v])),
            Value::Int(v) => Arc::new(Int64Array::from(vec![*v])),
            Value::UInt(v) => Arc::new(UInt64Array::from(vec![*v])),
            Value::Float(v) => Arc::new(Float64Array::from(vec![*v])),
            Value::Str(v) => Arc::new(StringArray::from(vec![v.as_str()])),
            Value::Date32(v) => Arc::new(Date32Array::from(vec![*v])),
            Value::TimestampUs(v) => Arc::new(TimestampMicrosecondArray::from(vec![*v])),
        }
    }

    /// The value cast to `data_type`, as a one-element array.
    pub fn to_array_of(&self, data_type: &DataType) -> Result<ArrayRef, String> {
        let a = self.to_array();
        if a.data_type() == data_type {
            return Ok(a);
        }
        arrow_cast::cast(&a, data_type)
            .map_err(|e| format!("cannot compare {self:?} with a {data_type} column: {e}"))
    }
}

/// A comparison operator. JSON: `"="`, `"!="`, `"<"`, `"<="`, `">"`, `">="`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareOp {
    /// `=`
    #[serde(rename = "=")]
    Eq,
    /// `!=` / `<>`
    #[serde(rename = "!=")]
    NotEq,
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    LtEq,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    GtEq,
}

impl CompareOp {
    /// The operator with its operands swapped (`a < b` is `b > a`).
    pub fn swap(self) -> Self {
        match self {
            Self::Lt => Self::Gt,
            Self::LtEq => Self::GtEq,
            Self::Gt => Self::Lt,
            Self::GtEq => Self::LtEq,
            other => other,
        }
    }

    /// SQL spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::NotEq => "!=",
            Self::Lt => "<",
            Self::LtEq => "<=",
            Self::Gt => ">",
            Self::GtEq => ">=",
        }
    }
}

/// A filter expression, as it crosses the plugin boundary (serialized as JSON).
///
/// ```json
/// {"compare": {"op": ">", "left": {"column": "id"}, "right": {"literal": {"int": 5}}}}
/// {"and": [{"is_null": {"column": "v"}}, {"not": {"column": "flag"}}]}
/// {"in_list": {"expr": {"column": "id"}, "list": [{"literal": {"int": 1}}], "negated": false}}
/// ```
///
/// The host only sends filters it can express in this form; anything else it applies itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    /// A column of the table, by name.
    Column(String),
    /// A constant.
    Literal(Value),
    /// `left op right`.
    Compare {
        /// Operator.
        op: CompareOp,
        /// Left operand.
        left: Box<Filter>,
        /// Right operand.
        right: Box<Filter>,
    },
    /// All of them hold.
    And(Vec<Filter>),
    /// Any of them holds.
    Or(Vec<Filter>),
    /// Negation.
    Not(Box<Filter>),
    /// `expr IS NULL`.
    IsNull(Box<Filter>),
    /// `expr IS NOT NULL`.
    IsNotNull(Box<Filter>),
    /// `expr [NOT] IN (list)`.
    InList {
        /// Tested expression.
        expr: Box<Filter>,
        /// Candidate values.
        list: Vec<Filter>,
        /// `NOT IN`.
        negated: bool,
    },
}

/// An evaluated operand: a column or a constant.
enum Datum {
    Array(ArrayRef),
    Literal(Value),
}

impl Filter {
    /// Parses a JSON array of filters (the ABI form).
    pub fn parse_list(json: &str) -> Result<Vec<Filter>, String> {
        if json.trim().is_empty() {
            return Ok(Vec::new());
        }
        serde_json::from_str(json).map_err(|e| format!("bad filter JSON: {e}"))
    }

    /// Serializes a list of filters to the ABI's JSON form.
    pub fn list_to_json(filters: &[Filter]) -> String {
        serde_json::to_string(filters).unwrap_or_else(|_| "[]".to_string())
    }

    /// Names of the columns the filter reads.
    pub fn columns(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.visit_columns(&mut out);
        out
    }

    fn visit_columns<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Filter::Column(c) => out.push(c),
            Filter::Literal(_) => {}
            Filter::Compare { left, right, .. } => {
                left.visit_columns(out);
                right.visit_columns(out);
            }
            Filter::And(v) | Filter::Or(v) => v.iter().for_each(|f| f.visit_columns(out)),
            Filter::Not(f) | Filter::IsNull(f) | Filter::IsNotNull(f) => f.visit_columns(out),
            Filter::InList { expr, list, .. } => {
                expr.visit_columns(out);
                list.iter().for_each(|f| f.visit_columns(out));
            }
        }
    }

    /// Evaluates the filter on `batch` (which must contain the columns it reads). NULL results
    /// count as false when the mask is used with `filter_record_batch`.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<BooleanArray, String> {
        match self.eval(batch)? {
            Datum::Array(a) => a
                .as_any()
                .downcast_ref::<BooleanArray>()
                .cloned()
                .ok_or_else(|| format!("filter {self:?} is not boolean")),
            Datum::Literal(Value::Bool(b)) => Ok(BooleanArray::from(vec![b; batch.num_rows()])),
            Datum::Literal(Value::Null) => Ok(BooleanArray::new_null(batch.num_rows())),
            Datum::Literal(v) => Err(format!("filter constant {v:?} is not boolean")),
        }
    }

    /// Keeps the rows of `batch` for which all `filters` hold.
    pub fn apply_all(filters: &[Filter], batch: &RecordBatch) -> Result<RecordBatch, String> {
        let mut batch = batch.clone();
        for f in filters {
            let mask = f.evaluate(&batch)?;
            batch = arrow_select::filter::filter_record_batch(&batch, &mask)
                .map_err(|e| e.to_string())?;
        }
        Ok(batch)
    }

    fn eval(&self, batch: &RecordBatch) -> Result<Datum, String> {
        let bool_array = |d: Datum, n: usize| -> Result<BooleanArray, String> {
            match d {
                Datum::Array(a) => a
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .cloned()
                    .ok_or_else(|| "operand is not boolean".to_string()),
                Datum::Literal(Value::Bool(b)) => Ok(BooleanArray::from(vec![b; n])),
                Datum::Literal(Value::Null) => Ok(BooleanArray::new_null(n)),
                Datum::Literal(v) => Err(format!("operand {v:?} is not boolean")),
            }
        };
        let n = batch.num_rows();
        Ok(match self {
            Filter::Column(c) => Datum::Array(
                batch
                    .column_by_name(c)
                    .cloned()
                    .ok_or_else(|| format!("filter column {c} is not in the batch"))?,
            ),
            Filter::Literal(v) => Datum::Literal(v.clone()),
            Filter::Compare { op, left, right } => Datum::Array(Arc::new(compare(
                *op,
                left.eval(batch)?,
                right.eval(batch)?,
                n,
            )?)),
            Filter::And(parts) | Filter::Or(parts) => {
                let is_and = matches!(self, Filter::And(_));
                let mut acc = BooleanArray::from(vec![is_and; n]);
                for p in parts {
                    let v = bool_array(p.eval(batch)?, n)?;
                    acc = if is_and {
                        arrow_arith::boolean::and_kleene(&acc, &v)
                    } else {
                        arrow_arith::boolean::or_kleene(&acc, &v)
                    }
                    .map_err(|e| e.to_string())?;
                }
                Datum::Array(Arc::new(acc))
            }
            Filter::Not(f) => Datum::Array(Arc::new(
                arrow_arith::boolean::not(&bool_array(f.eval(batch)?, n)?)
                    .map_err(|e| e.to_string())?,
            )),
            Filter::IsNull(f) | Filter::IsNotNull(f) => {
                let a = match f.eval(batch)? {
                    Datum::Array(a) => a,
                    Datum::Literal(v) => {
                        arrow_array::new_null_array(&DataType::Null, usize::from(v == Value::Null))
                    }
                };
                let nulls = if a.len() == n {
                    arrow_arith::boolean::is_null(&a).map_err(|e| e.to_string())?
                } else {
                    // A constant: null or not, for every row.
                    BooleanArray::from(vec![a.len() == 1; n])
                };
                if matches!(self, Filter::IsNull(_)) {
                    Datum::Array(Arc::new(nulls))
                } else {
                    Datum::Array(Arc::new(
                        arrow_arith::boolean::not(&nulls).map_err(|e| e.to_string())?,
                    ))
                }
            }
            Filter::InList {
                expr,
                list,
                negated,
            } => {
                let mut acc = BooleanArray::from(vec![false; n]);
                for item in list {
                    let eq = compare(CompareOp::Eq, expr.eval(batch)?, item.eval(batch)?, n)?;
                    acc = arrow_arith::boolean::or_kleene(&acc, &eq).map_err(|e| e.to_string())?;
                }
                if *negated {
                    acc = arrow_arith::boolean::not(&acc).map_err(|e| e.to_string())?;
                }
                Datum::Array(Arc::new(acc))
            }
        })
    }
}

fn compare(op: CompareOp, left: Datum, right: Datum, n: usize) -> Result<BooleanArray, String> {
    let (l, r): (ArrayRef, ArrayRef) = match (left, right) {
        (Datum::Array(l), Datum::Array(r)) => {
            let r = if r.data_type() == l.data_type() {
                r
            } else {
                arrow_cast::cast(&r, l.data_type()).map_err(|e| e.to_string())?
            };
            (l, r)
        }
        (Datum::Array(l), Datum::Literal(v)) => {
            let r = v.to_array_of(l.data_type())?;
            return run_cmp(op, &l, &Scalar::new(r));
        }
        (Datum::Literal(v), Datum::Array(r)) => {
            let l = v.to_array_of(r.data_type())?;
            return run_cmp(op.swap(), &r, &Scalar::new(l));
        }
        (Datum::Literal(a), Datum::Literal(b)) => {
            let la = a.to_array();
            let lb = b.to_array_of(la.data_type())?;
            let one = run_cmp(op, &la, &Scalar::new(lb))?;
            let v = if one.is_null(0) {
                None
            } else {
                Some(one.value(0))
            };
            return Ok(BooleanArray::from(vec![v; n]));
        }
    };
    run_cmp(op, &l, &r)
}

fn run_cmp(
    op: CompareOp,
    l: &dyn arrow_array::Datum,
    r: &dyn arrow_array::Datum,
) -> Result<BooleanArray, String> {
    use arrow_ord::cmp;
    match op {
        CompareOp::Eq => cmp::eq(l, r),
        CompareOp::NotEq => cmp::neq(l, r),
        CompareOp::Lt => cmp::lt(l, r),
        CompareOp::LtEq => cmp::lt_eq(l, r),
        CompareOp::Gt => cmp::gt(l, r),
        CompareOp::GtEq => cmp::gt_eq(l, r),
    }
    .map_err(|e| e.to_string())
}

/// What a scan should return.
#[derive(Debug, Clone, Default)]
pub struct ScanRequest {
    /// Column indexes to return, in order (`None`: all columns).
    pub projection: Option<Vec<usize>>,
    /// Filters that all must hold; the engine must apply those it declared
    /// [`FilterSupport::Exact`] for and may use the others.
    pub filters: Vec<Filter>,
    /// Maximum number of rows needed (only set when every filter is applied exactly).
    pub limit: Option<usize>,
    /// Append a [`ROW_ID_COLUMN`] (`UInt64`) column identifying each row for
    /// [`StorageTransaction::delete`] and [`StorageTransaction::update`].
    pub with_row_ids: bool,
}

impl ScanRequest {
    /// The output schema for a table schema: the projected columns, plus the row-id column.
    pub fn output_schema(&self, table: &SchemaRef) -> Result<SchemaRef, String> {
        let mut fields: Vec<arrow_schema::FieldRef> = match &self.projection {
            Some(p) => p
                .iter()
                .map(|&i| {
                    table
                        .fields()
                        .get(i)
                        .cloned()
                        .ok_or_else(|| format!("projection index {i} out of range"))
                })
                .collect::<Result<_, _>>()?,
            None => table.fields().iter().cloned().collect(),
        };
        if self.with_row_ids {
            fields.push(Arc::new(arrow_schema::Field::new(
                ROW_ID_COLUMN,
                DataType::UInt64,
                false,
            )));
        }
        Ok(Arc::new(arrow_schema::Schema::new(fields)))
    }

    /// Shapes a batch holding all table columns (plus `row_ids` when asked for) into the
    /// requested output.
    pub fn project(
        &self,
        table: &SchemaRef,
        batch: &RecordBatch,
        row_ids: Option<ArrayRef>,
    ) -> Result<RecordBatch, String> {
        let schema = self.output_schema(table)?;
        let mut cols: Vec<ArrayRef> = match &self.projection {
            Some(p) => p.iter().map(|&i| batch.column(i).clone()).collect(),
            None => batch.columns().to_vec(),
        };
        if self.with_row_ids {
            cols.push(row_ids.ok_or("row ids were requested but not provided")?);
        }
        RecordBatch::try_new_with_options(
            schema,
            cols,
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )
        .map_err(|e| e.to_string())
    }
}

/// Optional statistics of a table.
#[derive(Debug, Clone)]
pub struct TableStatistics {
    /// Number of live rows, if known.
    pub row_count: Option<u64>,
    /// A 2-row batch in the table's schema: row 0 the minimum of each column, row 1 the maximum
    /// (nulls where unknown).
    pub min_max: Option<RecordBatch>,
}

/// A stream of scan results.
pub type BatchStream = Box<dyn RecordBatchReader + Send>;

/// A storage engine. Shared by all connections and called from many threads.
pub trait StorageEngine: Send + Sync + 'static {
    /// The name used in `CREATE TABLE ... USING name` (lower case).
    fn name(&self) -> &str;
    /// One-line description.
    fn description(&self) -> &str {
        ""
    }
    /// What the engine supports.
    fn capabilities(&self) -> Capabilities;
    /// Creates the table's storage and returns the completed options (defaults filled in), which
    /// the host stores and passes back in every later call.
    fn create_table(&self, table: &TableInfo) -> Result<Options, String>;
    /// Deletes the table's storage.
    fn drop_table(&self, table: &TableInfo) -> Result<(), String>;
    /// Tables the engine holds under `options` (e.g. a path), with their options.
    fn list_tables(&self, _options: &Options) -> Result<Vec<(String, Options)>, String> {
        Ok(Vec::new())
    }
    /// How the engine handles each filter when scanning `table` (default: not at all).
    fn supports_filters(&self, _table: &TableInfo, filters: &[Filter]) -> Vec<FilterSupport> {
        vec![FilterSupport::Unsupported; filters.len()]
    }
    /// Starts a transaction.
    fn begin(&self) -> Result<Box<dyn StorageTransaction>, String>;
}

/// Why a transaction could not commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitError {
    /// Another transaction committed conflicting changes first (a serialization failure,
    /// SQLSTATE 40001): nothing was published, and the caller may retry the transaction.
    Conflict(String),
    /// Anything else.
    Failed(String),
}

impl CommitError {
    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Self::Conflict(m) | Self::Failed(m) => m,
        }
    }
}

impl std::fmt::Display for CommitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for CommitError {}

impl From<String> for CommitError {
    fn from(message: String) -> Self {
        Self::Failed(message)
    }
}

impl From<&str> for CommitError {
    fn from(message: &str) -> Self {
        Self::Failed(message.to_string())
    }
}

/// A unit of work on one engine. Used by one thread at a time.
pub trait StorageTransaction: Send + 'static {
    /// Reads `table` as this transaction sees it (its own writes included).
    fn scan(&mut self, table: &TableInfo, request: &ScanRequest) -> Result<BatchStream, String>;
    /// Appends rows (a batch in the table's schema).
    fn insert(&mut self, table: &TableInfo, batch: RecordBatch) -> Result<(), String>;
    /// Deletes rows by id; returns how many were deleted.
    fn delete(&mut self, _table: &TableInfo, _row_ids: &UInt64Array) -> Result<u64, String> {
        Err("this storage engine does not support DELETE".to_string())
    }
    /// Replaces rows by id with `rows` (row `i` replaces `row_ids[i]`); returns how many.
    fn update(
        &mut self,
        _table: &TableInfo,
        _row_ids: &UInt64Array,
        _rows: RecordBatch,
    ) -> Result<u64, String> {
        Err("this storage engine does not support UPDATE".to_string())
    }
    /// Statistics of `table` (default: none).
    fn statistics(&mut self, _table: &TableInfo) -> Result<Option<TableStatistics>, String> {
        Ok(None)
    }
    /// First commit phase: everything that can fail, without making changes visible.
    /// A lost race with another transaction is [`CommitError::Conflict`].
    fn prepare(&mut self) -> Result<(), CommitError> {
        Ok(())
    }
    /// Makes the changes visible atomically. A lost race with another transaction is
    /// [`CommitError::Conflict`].
    fn commit(self: Box<Self>) -> Result<(), CommitError>;
    /// Discards the changes.
    fn rollback(self: Box<Self>) -> Result<(), String>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int32Array, StringArray};
    use arrow_schema::{Field, Schema};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("v", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![1, 2, 3, 4])),
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    None,
                    Some("c"),
                    Some("d"),
                ])),
            ],
        )
        .expect("batch")
    }

    fn col(c: &str) -> Box<Filter> {
        Box::new(Filter::Column(c.into()))
    }

    #[test]
    fn filters_round_trip_through_json() {
        let f = vec![
            Filter::Compare {
                op: CompareOp::Gt,
                left: col("id"),
                right: Box::new(Filter::Literal(Value::Int(5))),
            },
            Filter::IsNotNull(col("v")),
        ];
        let json = Filter::list_to_json(&f);
        assert!(json.contains(r#""op":">""#), "{json}");
        assert_eq!(Filter::parse_list(&json).expect("parse"), f);
        assert!(Filter::parse_list("[{\"bogus\": 1}]").is_err());
    }

    #[test]
    fn evaluate_comparisons_and_logic() {
        let b = batch();
        let gt = Filter::Compare {
            op: CompareOp::Gt,
            left: col("id"),
            right: Box::new(Filter::Literal(Value::Int(1))),
        };
        let out = Filter::apply_all(&[gt.clone(), Filter::IsNotNull(col("v"))], &b).expect("eval");
        let ids = out
            .column(0)
            .as_any()
            .downcast_ref::<Int32Array>()
            .expect("int");
        assert_eq!(ids.values().to_vec(), vec![3, 4]);
        // Literal on the left is swapped: 3 > id.
        let lt = Filter::Compare {
            op: CompareOp::Gt,
            left: Box::new(Filter::Literal(Value::Int(3))),
            right: col("id"),
        };
        assert_eq!(Filter::apply_all(&[lt], &b).expect("eval").num_rows(), 2);
        let inl = Filter::InList {
            expr: col("v"),
            list: vec![
                Filter::Literal(Value::Str("a".into())),
                Filter::Literal(Value::Str("d".into())),
            ],
            negated: false,
        };
        assert_eq!(Filter::apply_all(&[inl], &b).expect("eval").num_rows(), 2);
        let or = Filter::Or(vec![Filter::IsNull(col("v")), gt]);
        assert_eq!(Filter::apply_all(&[or], &b).expect("eval").num_rows(), 3);
    }
}
