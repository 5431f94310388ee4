//! Values an `INSERT` or `UPDATE` assigns to typed columns, written as casts to the column's
//! type before DataFusion plans the statement.
//!
//! DataFusion checks what is assigned against the target columns' storage types and refuses
//! text where no Arrow cast exists (text to `FixedSizeBinary`, for `uuid`); as a cast to the
//! custom type the value has the storage type already, and [`super::rewrite`] turns the cast
//! of text into the type's parse function (PostgreSQL's assignment cast) and the cast of
//! another type into the type's assignment cast for it, if it declares one. Covered: the rows of
//! `INSERT ... VALUES`, the select list of `INSERT ... SELECT` and `UPDATE ... SET`; NULL,
//! `DEFAULT` and parameters are left as they are. Text literals beside typed values elsewhere
//! (`coalesce(v, '1.0.0')`) are typed by [`super::literals`] first.

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    AssignmentTarget, ObjectName, SelectItem, SetExpr, Statement as SqlStatement, TableFactor,
    TableObject,
};

use super::literals::assign_to;
use super::logical_type;
use super::planner::identifier;
use crate::catalog::{Catalog, TableDef};
use crate::plugins::Registry;

/// Rewrites what an `INSERT` or `UPDATE` assigns to typed columns (see the module
/// documentation); every other statement is returned unchanged.
pub(crate) fn type_assignments(
    mut stmt: DfStatement,
    catalog: &Catalog,
    registry: &Registry,
) -> DfStatement {
    if registry.data_types().next().is_none() {
        return stmt;
    }
    let DfStatement::Statement(s) = &mut stmt else {
        return stmt;
    };
    super::literals::type_literals(s.as_mut(), catalog, registry);
    match s.as_mut() {
        SqlStatement::Insert(insert) => {
            let TableObject::TableName(name) = &insert.table else {
                return stmt;
            };
            let Some(table) = table_of(catalog, name) else {
                return stmt;
            };
            let Some(types) = insert_types(table, &insert.columns, registry) else {
                return stmt;
            };
            let Some(source) = insert.source.as_mut() else {
                return stmt;
            };
            match source.body.as_mut() {
                SetExpr::Values(values) => {
                    for row in values.rows.iter_mut() {
                        for (value, t) in row.content.iter_mut().zip(&types) {
                            if let Some(t) = t {
                                assign_to(value, t);
                            }
                        }
                    }
                }
                SetExpr::Select(select) => {
                    if select.projection.len() != types.len() {
                        return stmt;
                    }
                    for (item, t) in select.projection.iter_mut().zip(&types) {
                        let (SelectItem::UnnamedExpr(value)
                        | SelectItem::ExprWithAlias { expr: value, .. }) = item
                        else {
                            continue;
                        };
                        if let Some(t) = t {
                            assign_to(value, t);
                        }
                    }
                }
                _ => {}
            }
        }
        SqlStatement::Update(update) => {
            let TableFactor::Table { name, .. } = &update.table.relation else {
                return stmt;
            };
            let Some(table) = table_of(catalog, name) else {
                return stmt;
            };
            for a in update.assignments.iter_mut() {
                let AssignmentTarget::ColumnName(column) = &a.target else {
                    continue;
                };
                let field = column
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .and_then(|i| table.schema.field_with_name(&identifier(i)).ok());
                if let Some(t) = field.and_then(|f| loaded_type(f, registry)) {
                    assign_to(&mut a.value, &t);
                }
            }
        }
        _ => {}
    }
    stmt
}

fn table_of<'a>(catalog: &'a Catalog, name: &ObjectName) -> Option<&'a TableDef> {
    let ident = name.0.last()?.as_ident()?;
    catalog.table(&identifier(ident)).map(|t| t.as_ref())
}

/// The loaded type of each column an INSERT writes, in order; `None` when no column is typed
/// or a column is unknown (DataFusion reports it).
fn insert_types(
    table: &TableDef,
    columns: &[ObjectName],
    registry: &Registry,
) -> Option<Vec<Option<String>>> {
    let fields: Vec<&Field> = if columns.is_empty() {
        table.schema.fields().iter().map(|f| f.as_ref()).collect()
    } else {
        columns
            .iter()
            .map(|c| {
                let ident = c.0.last()?.as_ident()?;
                table.schema.field_with_name(&identifier(ident)).ok()
            })
            .collect::<Option<_>>()?
    };
    let types: Vec<Option<String>> = fields.iter().map(|f| loaded_type(f, registry)).collect();
    types.iter().any(Option::is_some).then_some(types)
}

/// The name of a column's type when its plugin is loaded (otherwise the plan's check reports
/// the missing plugin).
fn loaded_type(field: &Field, registry: &Registry) -> Option<String> {
    let (name, _) = logical_type(field)?;
    registry
        .data_types()
        .any(|t| t.name == name)
        .then(|| name.to_string())
}

/// The SQL of a column's DEFAULT as planned: for a column of a loaded custom type, a cast of
/// the stored expression to the type (text defaults are parsed, like any assigned text).
pub(crate) fn typed_default<'a>(
    field: &Field,
    sql: &'a str,
    registry: &Registry,
) -> std::borrow::Cow<'a, str> {
    match loaded_type(field, registry) {
        Some(t) => std::borrow::Cow::Owned(format!("CAST(({sql}) AS \"{t}\")")),
        None => std::borrow::Cow::Borrowed(sql),
    }
}

/// Values computed outside a planned statement (a default, the result of `ON CONFLICT DO
/// UPDATE SET`) for a column described by `field`: text for a custom-typed column is parsed
/// by its type (a bad value is 22P02); anything else is returned as it is. A column whose
/// type's plugin is not loaded refuses them.
pub(crate) fn assigned_values(
    field: &Field,
    values: ArrayRef,
    registry: &Registry,
) -> crate::error::Result<ArrayRef> {
    let Some((name, plugin)) = logical_type(field) else {
        return Ok(values);
    };
    let Some(t) = registry.data_types().find(|t| t.name == name) else {
        return Err(super::missing_type(field.name(), name, plugin));
    };
    match values.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            super::udf::parse_values(t, &values)
        }
        DataType::Null => Ok(arrow::array::new_null_array(&t.storage, values.len())),
        _ => Ok(values),
    }
}

/// A DataFusion context that knows the custom types of `registry` by name (for SQL evaluated
/// outside a statement's planner; run its plans through [`super::rewrite::rewrite`]).
pub(crate) fn typed_context(registry: &Registry) -> datafusion::prelude::SessionContext {
    let ctx = datafusion::prelude::SessionContext::new();
    if registry.data_types().next().is_none() {
        return ctx;
    }
    let planner = super::planner::CustomTypePlanner::new(registry.data_types());
    let state = datafusion::execution::SessionStateBuilder::new_from_existing(ctx.state())
        .with_type_planner(std::sync::Arc::new(planner))
        .build();
    datafusion::prelude::SessionContext::new_with_state(state)
}
