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
//! The shape is recognized from the parse tree at `PREPARE`. The first `EXECUTE` resolves it
//! against the current catalog and plugin registry ([`Resolved`]: the table, its engine, the
//! column positions, the privilege check) and later ones reuse that until the catalog or the
//! registry generation changes; anything that no longer fits falls back to planning.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr as SqlExpr, Insert, Parens, Query, SelectItem, SetExpr,
    Statement as SqlStatement, TableFactor, TableObject, UnaryOperator, Value as SqlValue,
};
use parking_lot::Mutex;

use crate::catalog::{Catalog, TableDef};
use crate::engines::TableEngine;
use crate::error::Result;
use crate::plugins::Registry;
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
    let (table, columns, rows) = values_insert(insert)?;
    let [row] = rows else {
        return None;
    };
    for (i, e) in row.iter().enumerate() {
        if placeholder_index(e) != Some(i + 1) {
            return None;
        }
    }
    if columns.as_ref().is_some_and(|c| c.len() != row.len()) {
        return None;
    }
    Some(FastPath::Insert { table, columns })
}

/// Rows of literals for a table, from `INSERT INTO t [(columns)] VALUES (...), ...`.
pub(crate) struct LiteralRows {
    pub(crate) table: String,
    /// Target column names in value order (`None`: all, in table order).
    pub(crate) columns: Option<Vec<String>>,
    /// The values, one vector per row.
    pub(crate) rows: Vec<Vec<ScalarValue>>,
}

/// Recognizes `INSERT INTO t [(columns)] VALUES (...), ...` whose values are all plain
/// literals (numbers, strings, booleans, NULL), however many rows: inserted without planning
/// (`exec::insert_literal_rows`). `None` for anything else.
pub(crate) fn literal_rows(insert: &Insert) -> Option<LiteralRows> {
    let (table, columns, rows) = values_insert(insert)?;
    let width = columns.as_ref().map_or(rows.first()?.len(), Vec::len);
    let rows = rows
        .iter()
        .map(|row| {
            if row.len() != width {
                return None;
            }
            row.iter().map(literal).collect::<Option<Vec<_>>>()
        })
        .collect::<Option<Vec<_>>>()?;
    Some(LiteralRows {
        table,
        columns,
        rows,
    })
}

/// The target table, its column list and the VALUES rows of a plain `INSERT ... VALUES`.
#[allow(clippy::type_complexity)]
fn values_insert(
    insert: &Insert,
) -> Option<(String, Option<Vec<String>>, &[Parens<Vec<SqlExpr>>])> {
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
    let columns = if insert.columns.is_empty() {
        None
    } else {
        Some(
            insert
                .columns
                .iter()
                .map(single_table_name)
                .collect::<Option<Vec<_>>>()?,
        )
    };
    Some((table, columns, values.rows.as_slice()))
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

/// A fast path resolved against one catalog and one registry generation: everything an
/// execution needs, so that executing it parses and resolves nothing.
pub(crate) enum Resolved {
    /// A primary-key lookup.
    Lookup(Lookup),
    /// A one-row insert.
    Insert(InsertPlan),
    /// The table no longer fits the fast path: the statement is planned.
    Unfit,
}

/// A key lookup resolved against a catalog.
pub(crate) struct Lookup {
    pub(crate) def: Arc<TableDef>,
    /// Column positions to return.
    pub(crate) columns: Vec<usize>,
    pub(crate) schema: SchemaRef,
    /// The type of the key column (parameters are cast to it).
    pub(crate) key_type: DataType,
    pub(crate) engine: Arc<dyn TableEngine>,
}

/// The encoded key `value` looks up (cast to the key column's type); `None` when it does not
/// convert (the statement is then planned, and reports it).
pub(crate) fn lookup_key(l: &Lookup, value: &ScalarValue) -> Result<Option<Vec<u8>>> {
    let cast;
    let value = if value.data_type() == l.key_type {
        value
    } else {
        match value.cast_to(&l.key_type) {
            Ok(v) => {
                cast = v;
                &cast
            }
            Err(_) => return Ok(None),
        }
    };
    if let Some(key) = crate::table::keys::scalar_key(value) {
        return Ok(Some(key));
    }
    let mut keys = crate::table::keys::encode_key_columns(&l.def, &[value.to_array()?])?;
    Ok(keys.pop())
}

/// A one-row insert resolved against a catalog.
pub(crate) struct InsertPlan {
    pub(crate) def: Arc<TableDef>,
    /// The column each parameter fills (`$1` first).
    pub(crate) positions: Vec<usize>,
    pub(crate) engine: Arc<dyn TableEngine>,
    /// The row can go to the built-in engine as values ([`insert_row`]): the table has no
    /// constraints the core checks, no stored secondary index, and only plain column types.
    pub(crate) as_row: bool,
}

/// The resolution of one prepared statement's fast path, reused until the catalog (any DDL,
/// GRANT or role change makes a new one) or the plugin registry changes.
#[derive(Default)]
pub(crate) struct ResolvedCache(Mutex<Option<CachedResolution>>);

/// A resolution with the catalog and registry generation it was made for.
type CachedResolution = (Arc<Catalog>, u64, Arc<Resolved>);

impl ResolvedCache {
    /// The resolution for `catalog` and registry `generation`, from `resolve` when the cached
    /// one is for another catalog or generation. Errors (a denied privilege) are not kept.
    pub(crate) fn get(
        &self,
        catalog: &Arc<Catalog>,
        generation: u64,
        resolve: impl FnOnce() -> Result<Resolved>,
    ) -> Result<Arc<Resolved>> {
        if let Some((c, g, r)) = self.0.lock().as_ref() {
            if Arc::ptr_eq(c, catalog) && *g == generation {
                return Ok(r.clone());
            }
        }
        let r = Arc::new(resolve()?);
        *self.0.lock() = Some((catalog.clone(), generation, r.clone()));
        Ok(r)
    }
}

/// Resolves a [`FastPath::KeyLookup`]; [`Resolved::Unfit`] when the table no longer fits.
pub(crate) fn resolve_lookup(
    catalog: &Catalog,
    registry: &Registry,
    table: &str,
    columns: &Option<Vec<String>>,
    key_column: &str,
) -> Result<Resolved> {
    let Some(def) = catalog.table(table).cloned() else {
        return Ok(Resolved::Unfit);
    };
    if def.primary_key.len() != 1 || def.schema.field(def.primary_key[0]).name() != key_column {
        return Ok(Resolved::Unfit);
    }
    let columns: Vec<usize> = match columns {
        None => (0..def.schema.fields().len()).collect(),
        Some(names) => match names
            .iter()
            .map(|n| def.schema.index_of(n).ok())
            .collect::<Option<_>>()
        {
            Some(c) => c,
            None => return Ok(Resolved::Unfit),
        },
    };
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|&i| def.schema.field(i).clone())
            .collect::<Vec<Field>>(),
    ));
    let key_type = def.schema.field(def.primary_key[0]).data_type().clone();
    let engine = crate::plugins::table_engine(registry, &def)?;
    Ok(Resolved::Lookup(Lookup {
        def,
        columns,
        schema,
        key_type,
        engine,
    }))
}

/// Resolves a [`FastPath::Insert`]; [`Resolved::Unfit`] when the table no longer fits (a
/// column is gone, or a column left out has a DEFAULT).
pub(crate) fn resolve_insert(
    catalog: &Catalog,
    registry: &Registry,
    table: &str,
    columns: &Option<Vec<String>>,
) -> Result<Resolved> {
    let Some(def) = catalog.table(table).cloned() else {
        return Ok(Resolved::Unfit);
    };
    let Some(positions) = insert_positions(&def, columns) else {
        return Ok(Resolved::Unfit);
    };
    let engine = crate::plugins::table_engine(registry, &def)?;
    let as_row = engine.name() == crate::catalog::DEFAULT_ENGINE
        && !crate::constraints::constrained(&def)
        && !def.indexes.iter().any(|i| i.stored)
        && def
            .schema
            .fields()
            .iter()
            .all(|f| crate::types::logical_type(f).is_none() && plain_type(f.data_type()));
    Ok(Resolved::Insert(InsertPlan {
        def,
        positions,
        engine,
        as_row,
    }))
}

/// The column each inserted value fills, in value order; `None` when a named column does not
/// exist or a column left out has a DEFAULT (whose expression needs planning).
pub(crate) fn insert_positions(
    def: &TableDef,
    columns: &Option<Vec<String>>,
) -> Option<Vec<usize>> {
    let n = def.schema.fields().len();
    let positions: Vec<usize> = match columns {
        None => (0..n).collect(),
        Some(names) => names
            .iter()
            .map(|c| def.schema.index_of(c).ok())
            .collect::<Option<_>>()?,
    };
    let left_out_default = def
        .schema
        .fields()
        .iter()
        .enumerate()
        .any(|(i, f)| !positions.contains(&i) && def.defaults.contains_key(f.name()));
    (!left_out_default).then_some(positions)
}

/// `values` converted to `ty` as one array: NULLs typed, other types cast as an INSERT casts
/// them; `None` when one does not convert (the statement is then planned, and reports it).
pub(crate) fn column_array(
    ty: &DataType,
    values: impl IntoIterator<Item = ScalarValue>,
) -> Option<ArrayRef> {
    let typed_null = ScalarValue::try_from(ty).ok()?;
    let converted = values
        .into_iter()
        .map(|v| {
            if v.is_null() {
                Some(typed_null.clone())
            } else if v.data_type() == *ty {
                Some(v)
            } else {
                v.cast_to(ty).ok()
            }
        })
        .collect::<Option<Vec<_>>>()?;
    if converted.is_empty() {
        return Some(arrow::array::new_empty_array(ty));
    }
    ScalarValue::iter_to_array(converted).ok()
}

/// The columns (table order, table types) of the one row a [`FastPath::Insert`] inserts;
/// `None` when a value does not convert (the statement is then planned, and reports it).
pub(crate) fn insert_columns(plan: &InsertPlan, values: &[ScalarValue]) -> Option<Vec<ArrayRef>> {
    if plan.positions.len() != values.len() {
        return None;
    }
    let fields = plan.def.schema.fields();
    let mut row: Vec<Option<ArrayRef>> = vec![None; fields.len()];
    for (&p, v) in plan.positions.iter().zip(values) {
        let ty = fields[p].data_type();
        let array = if v.is_null() {
            arrow::array::new_null_array(ty, 1)
        } else if v.data_type() == *ty {
            v.to_array().ok()?
        } else {
            v.cast_to(ty).ok()?.to_array().ok()?
        };
        row[p] = Some(array);
    }
    Some(
        row.into_iter()
            .zip(fields.iter())
            .map(|(a, f)| a.unwrap_or_else(|| arrow::array::new_null_array(f.data_type(), 1)))
            .collect(),
    )
}

/// Column types whose values the built-in engine buffers one row at a time.
fn plain_type(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float32
            | DataType::Float64
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(_, _)
            | DataType::Decimal128(_, _)
    )
}

/// The row (table order, values of the column types, typed NULLs for the columns left out)
/// a [`FastPath::Insert`] inserts as values; `None` when a value does not convert (the
/// statement is then planned, and reports it).
pub(crate) fn insert_row(plan: &InsertPlan, values: &[ScalarValue]) -> Option<Vec<ScalarValue>> {
    if plan.positions.len() != values.len() {
        return None;
    }
    let fields = plan.def.schema.fields();
    let mut row = fields
        .iter()
        .map(|f| ScalarValue::try_from(f.data_type()).ok())
        .collect::<Option<Vec<_>>>()?;
    for (&p, v) in plan.positions.iter().zip(values) {
        if v.is_null() {
            continue;
        }
        let ty = fields[p].data_type();
        row[p] = if v.data_type() == *ty {
            v.clone()
        } else {
            v.cast_to(ty).ok()?
        };
    }
    Some(row)
}
