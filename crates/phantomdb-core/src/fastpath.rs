//! Fast paths for prepared statements whose shape needs no query planning.
//!
//! `EXECUTE` normally plans its statement again (parse tree → logical plan → optimizer →
//! physical plan), which costs far more than the work of a point read or a one-row insert.
//! Two shapes skip DataFusion entirely:
//! * `SELECT cols | * FROM t WHERE pk = $1` on a table with a one-column primary key, in an
//!   engine that can look keys up (`indexes`): an index lookup;
//! * `INSERT INTO t [(cols)] VALUES ($1, ..., $n)` where every value is a parameter and the
//!   columns left out have no DEFAULT: a one-row append (constraints checked as usual).
//!
//! The shape is recognized from the parse tree at `PREPARE`; at `EXECUTE` the table is looked
//! up again in the current catalog, and anything that no longer fits falls back to planning.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr as SqlExpr, Insert, Query, SelectItem, SetExpr, Statement as SqlStatement,
    TableFactor, TableObject, UnaryOperator, Value as SqlValue,
};

use crate::catalog::{Catalog, TableDef};
use crate::sql::normalize_ident;

/// A recognized prepared-statement shape.
#[derive(Debug, Clone)]
pub(crate) enum FastPath {
    /// `SELECT columns FROM table WHERE key_column = $1`.
    KeyLookup {
        table: String,
        /// Selected column names (`None`: `*`).
        columns: Option<Vec<String>>,
        key_column: String,
    },
    /// `INSERT INTO table [(columns)] VALUES ($1, ..., $n)`.
    Insert {
        table: String,
        /// Target column names in parameter order (`None`: all, in table order).
        columns: Option<Vec<String>>,
    },
}

fn placeholder_index(e: &SqlExpr) -> Option<usize> {
    match e {
        SqlExpr::Value(v) => match &v.value {
            SqlValue::Placeholder(p) => p.strip_prefix('$')?.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// The one-part name `name` as PhantomDB normalizes it (`None` when qualified).
fn single_table_name(name: &datafusion::sql::sqlparser::ast::ObjectName) -> Option<String> {
    match name.0.as_slice() {
        [part] => part.as_ident().map(normalize_ident),
        _ => None,
    }
}

/// Recognizes the statement inside a `PREPARE`.
pub(crate) fn analyze(stmt: &SqlStatement) -> Option<FastPath> {
    match stmt {
        SqlStatement::Query(q) => key_lookup(q),
        SqlStatement::Insert(insert) => one_row_insert(insert),
        _ => None,
    }
}

/// `SELECT columns FROM table WHERE key_column = $1`, and nothing else.
fn key_lookup(q: &Query) -> Option<FastPath> {
    if q.with.is_some() || q.order_by.is_some() || q.limit_clause.is_some() || q.fetch.is_some() {
        return None;
    }
    let SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    if select.distinct.is_some()
        || select.from.len() != 1
        || !select.from[0].joins.is_empty()
        || select.having.is_some()
        || !select.named_window.is_empty()
        || select.qualify.is_some()
        || !matches!(
            &select.group_by,
            datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(e, m)
                if e.is_empty() && m.is_empty()
        )
    {
        return None;
    }
    let TableFactor::Table {
        name,
        alias: None,
        args: None,
        ..
    } = &select.from[0].relation
    else {
        return None;
    };
    let table = single_table_name(name)?;
    let columns = match select.projection.as_slice() {
        [SelectItem::Wildcard(_)] => None,
        items => Some(
            items
                .iter()
                .map(|i| match i {
                    SelectItem::UnnamedExpr(SqlExpr::Identifier(id)) => Some(normalize_ident(id)),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?,
        ),
    };
    let SqlExpr::BinaryOp {
        left,
        op: BinaryOperator::Eq,
        right,
    } = select.selection.as_ref()?
    else {
        return None;
    };
    let key_column = match (left.as_ref(), right.as_ref()) {
        (SqlExpr::Identifier(id), p) | (p, SqlExpr::Identifier(id))
            if placeholder_index(p) == Some(1) =>
        {
            normalize_ident(id)
        }
        _ => return None,
    };
    Some(FastPath::KeyLookup {
        table,
        columns,
        key_column,
    })
}

/// `INSERT INTO table [(columns)] VALUES ($1, ..., $n)`, and nothing else.
fn one_row_insert(insert: &Insert) -> Option<FastPath> {
    if insert.on.is_some()
        || insert.returning.is_some()
        || insert.partitioned.is_some()
        || !insert.after_columns.is_empty()
        || insert.overwrite
    {
        return None;
    }
    let TableObject::TableName(name) = &insert.table else {
        return None;
    };
    let table = single_table_name(name)?;
    let source = insert.source.as_ref()?;
    if source.with.is_some() || source.order_by.is_some() || source.limit_clause.is_some() {
        return None;
    }
    let SetExpr::Values(values) = source.body.as_ref() else {
        return None;
    };
    let [row] = values.rows.as_slice() else {
        return None;
    };
    for (i, e) in row.iter().enumerate() {
        if placeholder_index(e) != Some(i + 1) {
            return None;
        }
    }
    let columns = if insert.columns.is_empty() {
        None
    } else {
        if insert.columns.len() != row.len() {
            return None;
        }
        Some(
            insert
                .columns
                .iter()
                .map(single_table_name)
                .collect::<Option<Vec<_>>>()?,
        )
    };
    Some(FastPath::Insert { table, columns })
}

/// A parameter given as a plain literal, without evaluating an expression.
pub(crate) fn literal(e: &SqlExpr) -> Option<ScalarValue> {
    let number = |n: &str, negative: bool| -> Option<ScalarValue> {
        let text = if negative {
            format!("-{n}")
        } else {
            n.to_string()
        };
        if let Ok(i) = text.parse::<i64>() {
            Some(ScalarValue::Int64(Some(i)))
        } else {
            text.parse::<f64>()
                .ok()
                .map(|f| ScalarValue::Float64(Some(f)))
        }
    };
    match e {
        SqlExpr::Value(v) => match &v.value {
            SqlValue::Number(n, _) => number(n, false),
            SqlValue::SingleQuotedString(s) => Some(ScalarValue::Utf8(Some(s.clone()))),
            SqlValue::Boolean(b) => Some(ScalarValue::Boolean(Some(*b))),
            SqlValue::Null => Some(ScalarValue::Null),
            _ => None,
        },
        SqlExpr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            SqlExpr::Value(v) => match &v.value {
                SqlValue::Number(n, _) => number(n, true),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// A key lookup resolved against the current catalog.
pub(crate) struct Lookup {
    pub(crate) def: Arc<TableDef>,
    /// Column positions to return.
    pub(crate) columns: Vec<usize>,
    pub(crate) schema: SchemaRef,
}

/// Resolves a [`FastPath::KeyLookup`]; `None` when the table no longer fits the fast path.
pub(crate) fn resolve_lookup(
    catalog: &Catalog,
    table: &str,
    columns: &Option<Vec<String>>,
    key_column: &str,
) -> Option<Lookup> {
    let def = catalog.table(table)?.clone();
    if def.primary_key.len() != 1 {
        return None;
    }
    if def.schema.field(def.primary_key[0]).name() != key_column {
        return None;
    }
    let columns: Vec<usize> = match columns {
        None => (0..def.schema.fields().len()).collect(),
        Some(names) => names
            .iter()
            .map(|n| def.schema.index_of(n).ok())
            .collect::<Option<_>>()?,
    };
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|&i| def.schema.field(i).clone())
            .collect::<Vec<Field>>(),
    ));
    Some(Lookup {
        def,
        columns,
        schema,
    })
}

/// Builds the one-row batch of a [`FastPath::Insert`] in table column order; `None` when the
/// table no longer fits (a left-out column has a DEFAULT, a column is gone, a value does not
/// convert).
pub(crate) fn insert_row(
    def: &TableDef,
    columns: &Option<Vec<String>>,
    values: &[ScalarValue],
) -> Option<RecordBatch> {
    let n = def.schema.fields().len();
    let positions: Vec<usize> = match columns {
        None => (0..n).collect(),
        Some(names) => names
            .iter()
            .map(|c| def.schema.index_of(c).ok())
            .collect::<Option<_>>()?,
    };
    if positions.len() != values.len() {
        return None;
    }
    let mut row: Vec<Option<ScalarValue>> = vec![None; n];
    for (&p, v) in positions.iter().zip(values) {
        let ty = def.schema.field(p).data_type();
        let v = if v.is_null() {
            ScalarValue::try_from(ty).ok()?
        } else if v.data_type() == *ty {
            v.clone()
        } else {
            v.cast_to(ty).ok()?
        };
        row[p] = Some(v);
    }
    let mut arrays = Vec::with_capacity(n);
    for (i, v) in row.into_iter().enumerate() {
        let field = def.schema.field(i);
        let v = match v {
            Some(v) => v,
            None if def.defaults.contains_key(field.name()) => return None,
            None => ScalarValue::try_from(field.data_type()).ok()?,
        };
        arrays.push(v.to_array_of_size(1).ok()?);
    }
    // Nullability is checked by the insert itself, with PhantomDB's message.
    let schema = Arc::new(Schema::new(
        def.schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(schema, arrays).ok()
}
