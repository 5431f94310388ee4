//! The plan form, version 1: the stable tree in which query plans cross the plugin boundary
//! (`phantomdb.query/1`), as JSON.
//!
//! The host converts its planner's plans into this form and back; nothing here depends on
//! DataFusion, so a plugin built against this form keeps working when the host's planner
//! changes. Types are Arrow C data interface format strings (`"i"` Int32, `"l"` Int64, `"u"`
//! Utf8, `"b"` Boolean, `"g"` Float64, `"d:12,2"` Decimal128(12, 2), `"tdD"` Date32,
//! `"tsu:"` timestamp in microseconds, ...); literals carry their type.
//!
//! Every node the form does not model travels as [`PlanNode::Opaque`] and every expression
//! as [`Expr::Opaque`]: the plugin cannot open them, but they expose their children (plans and
//! expressions) as form subtrees, so no scan is ever hidden. A plugin may move an opaque node
//! or expression (within the same call) but not change its `id`; the host puts the original
//! back with the children the plugin returned.
//!
//! ```json
//! {"version": 1, "root": {"node": "filter",
//!   "predicate": {"kind": "binary", "op": "=",
//!                 "left": {"kind": "column", "relation": "orders", "name": "tenant_id"},
//!                 "right": {"kind": "literal", "type": "i", "value": 1}},
//!   "input": {"node": "scan", "table": "orders", "engine": "redb", ...}}}
//! ```

use serde::{Deserialize, Serialize};

mod tag_first;

use tag_first::tag_first_enum;

/// The plan form version this SDK reads and writes.
pub const PLAN_FORM_VERSION: u32 = 1;

/// A plan in the form, with its version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// [`PLAN_FORM_VERSION`].
    pub version: u32,
    /// The root node.
    pub root: PlanNode,
}

/// One output column of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// The table or alias qualifying it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    /// Column name.
    pub name: String,
    /// Arrow format string.
    #[serde(rename = "type")]
    pub data_type: String,
    /// Whether it may be NULL.
    pub nullable: bool,
}

/// What the host knows about a scanned table. Every figure is optional: `None` means unknown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanStatistics {
    /// Rows in the table (before pushed filters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_count: Option<u64>,
    /// Whether `row_count` is exact (else an estimate).
    #[serde(default)]
    pub exact: bool,
    /// Per column, in the table's column order (projection not applied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ColumnStatistics>,
}

/// What the host knows about one column of a scanned table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnStatistics {
    /// Column name.
    pub name: String,
    /// Smallest value, typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Literal>,
    /// Largest value, typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Literal>,
    /// Number of NULLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_count: Option<u64>,
    /// Number of distinct values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct_count: Option<u64>,
}

/// A typed literal: an Arrow format string and a JSON value (`null`; a boolean; a number for
/// integers and floats; a string for text, decimals (`"12.50"`), dates (`"2024-01-31"`),
/// timestamps (the raw integer as text), binary (hex), and `"NaN"`/`"inf"`/`"-inf"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Literal {
    /// Arrow format string.
    #[serde(rename = "type")]
    pub data_type: String,
    /// The value.
    pub value: serde_json::Value,
}

/// Join kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinKind {
    /// Matching pairs.
    Inner,
    /// Every left row, NULLs where no right row matched.
    Left,
    /// Every right row.
    Right,
    /// Every row of both sides.
    Full,
    /// Left rows with a match (columns of the left only).
    LeftSemi,
    /// Left rows without a match.
    LeftAnti,
    /// Right rows with a match.
    RightSemi,
    /// Right rows without a match.
    RightAnti,
    /// Left rows plus a boolean `mark` column: whether a right row matched.
    LeftMark,
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SortKey {
    /// The expression sorted by.
    pub expr: Expr,
    /// Ascending.
    pub asc: bool,
    /// NULLs first.
    pub nulls_first: bool,
}

/// One `SET column = value` of an UPDATE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// Target column.
    pub column: String,
    /// New value (over the update's input).
    pub value: Expr,
}

tag_first_enum! {
    /// A plan node. Every node carries `schema`, its output columns, when it comes from the host
    /// (a plugin need not fill it in for nodes it builds: the host recomputes it).
    #[derive(Debug, Clone, PartialEq)]
    pub enum PlanNode (tag = "node", remote = PlanNodeRemote, "PlanNode") {
        /// Reads a table.
        Scan {
            /// Host handle of this scan (keep it when moving the scan).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            id: Option<u32>,
            /// Table name (as the query qualifies it).
            table: String,
            /// Storage engine (`redb`, `memory`, a plugin's).
            #[serde(default)]
            engine: String,
            /// Columns read, by name; `None`: all.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            projection: Option<Vec<String>>,
            /// Filters pushed into the scan.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            filters: Vec<Expr>,
            /// At most this many rows.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            fetch: Option<u64>,
            /// What the host knows about the table.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            statistics: Option<ScanStatistics>,
            /// Output columns.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            schema: Vec<Field>,
        },
        /// Rows of `input` for which `predicate` is true.
        Filter {
            /// Boolean condition.
            predicate: Expr,
            /// Input.
            input: Box<PlanNode>,
            /// Output columns.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            schema: Vec<Field>,
        },
        /// Computes `exprs` per input row.
        Projection {
            /// Output expressions (use [`Expr::Alias`] to name them).
            exprs: Vec<Expr>,
            /// Input.
            input: Box<PlanNode>,
            /// Output columns.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            schema: Vec<Field>,
        },
        /// Joins two inputs.
        Join {
            /// Kind.
            kind: JoinKind,
            /// Equality keys, `[left, right]`.
            #[serde(default)]
            on: Vec<(Expr, Expr)>,
            /// Extra condition.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            filter: Option<Expr>,
            /// Whether NULL keys match each other.
            #[serde(default)]
            null_equals_null: bool,
            /// Left input.
            left: Box<PlanNode>,
            /// Right input.
            right: Box<PlanNode>,
            /// Output columns.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            schema: Vec<Field>,
        },
        /// Groups and aggregates.
        Aggregate {
            /// Grouping expressions.
            group_by: Vec<Expr>,
            /// Aggregate expressions ([`Expr::Aggregate`], maybe aliased).
            aggregates: Vec<Expr>,
            /// Input.
            input: Box<PlanNode>,
            /// Output columns.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            schema: Vec<Field>,
        },
        /// Sorts, optionally keeping the first `fetch` rows.
        Sort {
            /// Sort keys.
            order: Vec<SortKey>,
            /// Top-N.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            fetch: Option<u64>,
            /// Input.
            input: Box<PlanNode>,
            /// Output columns.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            schema: Vec<Field>,
        },
        /// `OFFSET skip LIMIT fetch`.
        Limit {
            /// Rows skipped.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            skip: Option<Box<Expr>>,
            /// Rows kept.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            fetch: Option<Box<Expr>>,
            /// Input.
            input: Box<PlanNode>,
            /// Output columns.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            schema: Vec<Field>,
        },
        /// `UNION ALL` of inputs with one schema.
        Union {
            /// Inputs.
            inputs: Vec<PlanNode>,
            /// Output columns.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            schema: Vec<Field>,
        },
        /// Literal rows.
        Values {
            /// Rows of expressions.
            rows: Vec<Vec<Expr>>,
            /// Output columns.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            schema: Vec<Field>,
        },
        /// Renames the input's relation (a FROM alias, a view, a CTE).
        SubqueryAlias {
            /// New relation name.
            alias: String,
            /// Input.
            input: Box<PlanNode>,
            /// Output columns.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            schema: Vec<Field>,
        },
        /// `INSERT INTO table`: `input` yields the new rows, columns named as the table's.
        Insert {
            /// Target table.
            table: String,
            /// Conditions every new row must meet (columns by unqualified name); a row that does
            /// not is refused with SQLSTATE 42501 (row-level security's `WITH CHECK`).
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            checks: Vec<Expr>,
            /// New rows.
            input: Box<PlanNode>,
        },
        /// `UPDATE table SET ...`: `assignments` over `input`, which yields the rows to change
        /// (with the hidden row id column).
        Update {
            /// Target table.
            table: String,
            /// New value per output column (every column of the table, plus the row id).
            assignments: Vec<Assignment>,
            /// Conditions every new row must meet, as for [`PlanNode::Insert`].
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            checks: Vec<Expr>,
            /// Rows to change.
            input: Box<PlanNode>,
        },
        /// `DELETE FROM table`: `input` yields the rows to delete (with the row id column).
        Delete {
            /// Target table.
            table: String,
            /// Rows to delete.
            input: Box<PlanNode>,
        },
        /// A node the form does not model. Its expressions and inputs are form subtrees.
        Opaque {
            /// Host handle: the original node.
            id: u32,
            /// What it is (e.g. `Window`, `Distinct`, `RecursiveQuery`), for reading only.
            kind: String,
            /// Its expressions.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            exprs: Vec<Expr>,
            /// Its inputs.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            inputs: Vec<PlanNode>,
            /// Output columns.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            schema: Vec<Field>,
        },
    }
}

tag_first_enum! {
    /// An expression.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Expr (tag = "kind", remote = ExprRemote, "Expr") {
        /// A column of the input.
        Column {
            /// Qualifier (table or alias), if any.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            relation: Option<String>,
            /// Name.
            name: String,
        },
        /// A typed constant.
        Literal(Literal),
        /// A statement parameter (`$1`), with its type when known.
        Parameter {
            /// `$1`, `$2`, ...
            id: String,
            /// Arrow format string.
            #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
            data_type: Option<String>,
        },
        /// `left op right`. `op`: `=`, `<>`, `<`, `<=`, `>`, `>=`, `+`, `-`, `*`, `/`, `%`,
        /// `and`, `or`, `is_distinct_from`, `is_not_distinct_from`, `||`.
        Binary {
            /// Operator.
            op: String,
            /// Left operand.
            left: Box<Expr>,
            /// Right operand.
            right: Box<Expr>,
        },
        /// `op expr`. `op`: `not`, `negative`, `is_true`, `is_false`, `is_unknown`, `is_not_true`,
        /// `is_not_false`, `is_not_unknown`.
        Unary {
            /// Operator.
            op: String,
            /// Operand.
            expr: Box<Expr>,
        },
        /// `expr IS [NOT] NULL`.
        IsNull {
            /// Operand.
            expr: Box<Expr>,
            /// `IS NOT NULL`.
            negated: bool,
        },
        /// A scalar function call.
        Function {
            /// Function name.
            name: String,
            /// Arguments.
            args: Vec<Expr>,
        },
        /// An aggregate function call.
        Aggregate {
            /// Function name.
            name: String,
            /// Arguments.
            args: Vec<Expr>,
            /// `DISTINCT`.
            #[serde(default)]
            distinct: bool,
        },
        /// `CAST(expr AS type)` (`try` for `TRY_CAST`).
        Cast {
            /// Operand.
            expr: Box<Expr>,
            /// Arrow format string.
            #[serde(rename = "type")]
            data_type: String,
            /// NULL instead of an error when the value does not convert.
            #[serde(default)]
            r#try: bool,
        },
        /// `CASE [operand] WHEN .. THEN .. ELSE .. END`.
        Case {
            /// Operand of a simple CASE.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            operand: Option<Box<Expr>>,
            /// `(when, then)` pairs.
            when_then: Vec<(Expr, Expr)>,
            /// `ELSE`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            otherwise: Option<Box<Expr>>,
        },
        /// `expr [NOT] IN (list)`.
        InList {
            /// Operand.
            expr: Box<Expr>,
            /// Values.
            list: Vec<Expr>,
            /// `NOT IN`.
            negated: bool,
        },
        /// `expr [NOT] BETWEEN low AND high`.
        Between {
            /// Operand.
            expr: Box<Expr>,
            /// Lower bound.
            low: Box<Expr>,
            /// Upper bound.
            high: Box<Expr>,
            /// `NOT BETWEEN`.
            negated: bool,
        },
        /// `expr [NOT] LIKE|ILIKE pattern [ESCAPE c]`.
        Like {
            /// Operand.
            expr: Box<Expr>,
            /// Pattern.
            pattern: Box<Expr>,
            /// `NOT LIKE`.
            negated: bool,
            /// `ILIKE`.
            #[serde(default)]
            case_insensitive: bool,
            /// Escape character.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            escape: Option<char>,
        },
        /// A subquery giving one value.
        ScalarSubquery {
            /// The subquery.
            plan: Box<PlanNode>,
        },
        /// `expr [NOT] IN (subquery)`.
        InSubquery {
            /// Operand.
            expr: Box<Expr>,
            /// The subquery (one column).
            plan: Box<PlanNode>,
            /// `NOT IN`.
            negated: bool,
        },
        /// `[NOT] EXISTS (subquery)`.
        Exists {
            /// The subquery.
            plan: Box<PlanNode>,
            /// `NOT EXISTS`.
            negated: bool,
        },
        /// `expr AS name`.
        Alias {
            /// Operand.
            expr: Box<Expr>,
            /// Qualifier of the new name, if any.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            relation: Option<String>,
            /// New name.
            name: String,
        },
        /// SQL expression text, planned by the host against the node's input (only from plugins
        /// to the host: `tenant_id = current_setting('app.tenant')::int`).
        Sql {
            /// The expression.
            sql: String,
        },
        /// An expression the form does not model; its sub-expressions are form subtrees.
        Opaque {
            /// Host handle: the original expression.
            id: u32,
            /// Its text, for reading only.
            display: String,
            /// Its direct sub-expressions.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            children: Vec<Expr>,
        },
    }
}

impl Expr {
    /// A column by unqualified name.
    pub fn column(name: impl Into<String>) -> Self {
        Self::Column {
            relation: None,
            name: name.into(),
        }
    }

    /// SQL text the host plans against the input.
    pub fn sql(sql: impl Into<String>) -> Self {
        Self::Sql { sql: sql.into() }
    }

    /// `self AND other`.
    pub fn and(self, other: Expr) -> Self {
        Self::Binary {
            op: "and".into(),
            left: Box::new(self),
            right: Box::new(other),
        }
    }
}

impl PlanNode {
    /// The node's direct plan inputs (not the plans inside its subquery expressions).
    pub fn inputs_mut(&mut self) -> Vec<&mut PlanNode> {
        match self {
            Self::Scan { .. } | Self::Values { .. } => Vec::new(),
            Self::Filter { input, .. }
            | Self::Projection { input, .. }
            | Self::Aggregate { input, .. }
            | Self::Sort { input, .. }
            | Self::Limit { input, .. }
            | Self::SubqueryAlias { input, .. }
            | Self::Insert { input, .. }
            | Self::Update { input, .. }
            | Self::Delete { input, .. } => vec![input.as_mut()],
            Self::Join { left, right, .. } => vec![left.as_mut(), right.as_mut()],
            Self::Union { inputs, .. } | Self::Opaque { inputs, .. } => inputs.iter_mut().collect(),
        }
    }

    /// The node's own expressions (where subqueries live).
    pub fn exprs_mut(&mut self) -> Vec<&mut Expr> {
        match self {
            Self::Scan { filters, .. } => filters.iter_mut().collect(),
            Self::Filter { predicate, .. } => vec![predicate],
            Self::Projection { exprs, .. } | Self::Opaque { exprs, .. } => {
                exprs.iter_mut().collect()
            }
            Self::Join { on, filter, .. } => on
                .iter_mut()
                .flat_map(|(l, r)| [l, r])
                .chain(filter.iter_mut())
                .collect(),
            Self::Aggregate {
                group_by,
                aggregates,
                ..
            } => group_by.iter_mut().chain(aggregates.iter_mut()).collect(),
            Self::Sort { order, .. } => order.iter_mut().map(|k| &mut k.expr).collect(),
            Self::Limit { skip, fetch, .. } => skip
                .iter_mut()
                .chain(fetch.iter_mut())
                .map(|e| e.as_mut())
                .collect(),
            Self::Values { rows, .. } => rows.iter_mut().flatten().collect(),
            Self::Insert { checks, .. } => checks.iter_mut().collect(),
            Self::Update {
                assignments,
                checks,
                ..
            } => assignments
                .iter_mut()
                .map(|a| &mut a.value)
                .chain(checks.iter_mut())
                .collect(),
            Self::Union { .. } | Self::SubqueryAlias { .. } | Self::Delete { .. } => Vec::new(),
        }
    }

    /// Rewrites every plan node bottom-up with `f`, including the plans of subquery
    /// expressions; `f` gets each node after its inputs were rewritten.
    pub fn transform_up<E>(
        self,
        f: &mut impl FnMut(PlanNode) -> Result<PlanNode, E>,
    ) -> Result<PlanNode, E> {
        let mut node = self;
        for input in node.inputs_mut() {
            let taken = std::mem::replace(input, PlanNode::placeholder());
            *input = taken.transform_up(f)?;
        }
        for expr in node.exprs_mut() {
            expr.transform_subqueries(f)?;
        }
        f(node)
    }

    fn placeholder() -> Self {
        Self::Values {
            rows: Vec::new(),
            schema: Vec::new(),
        }
    }
}

impl Expr {
    /// The direct sub-expressions.
    pub fn children_mut(&mut self) -> Vec<&mut Expr> {
        match self {
            Self::Column { .. }
            | Self::Literal(_)
            | Self::Parameter { .. }
            | Self::Sql { .. }
            | Self::ScalarSubquery { .. }
            | Self::Exists { .. } => Vec::new(),
            Self::Binary { left, right, .. } => vec![left.as_mut(), right.as_mut()],
            Self::Unary { expr, .. }
            | Self::IsNull { expr, .. }
            | Self::Cast { expr, .. }
            | Self::Alias { expr, .. }
            | Self::InSubquery { expr, .. } => vec![expr.as_mut()],
            Self::Function { args, .. } | Self::Aggregate { args, .. } => args.iter_mut().collect(),
            Self::Opaque { children, .. } => children.iter_mut().collect(),
            Self::Case {
                operand,
                when_then,
                otherwise,
            } => operand
                .iter_mut()
                .map(|e| e.as_mut())
                .chain(when_then.iter_mut().flat_map(|(w, t)| [w, t]))
                .chain(otherwise.iter_mut().map(|e| e.as_mut()))
                .collect(),
            Self::InList { expr, list, .. } => std::iter::once(expr.as_mut())
                .chain(list.iter_mut())
                .collect(),
            Self::Between {
                expr, low, high, ..
            } => vec![expr.as_mut(), low.as_mut(), high.as_mut()],
            Self::Like { expr, pattern, .. } => vec![expr.as_mut(), pattern.as_mut()],
        }
    }

    /// Applies [`PlanNode::transform_up`] to the plans of every subquery in this expression.
    pub fn transform_subqueries<E>(
        &mut self,
        f: &mut impl FnMut(PlanNode) -> Result<PlanNode, E>,
    ) -> Result<(), E> {
        if let Self::ScalarSubquery { plan }
        | Self::InSubquery { plan, .. }
        | Self::Exists { plan, .. } = self
        {
            let taken = std::mem::replace(plan.as_mut(), PlanNode::placeholder());
            **plan = taken.transform_up(f)?;
        }
        for child in self.children_mut() {
            child.transform_subqueries(f)?;
        }
        Ok(())
    }
}
