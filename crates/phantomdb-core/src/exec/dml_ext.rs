//! UPDATE and DELETE with what DataFusion does not plan: `RETURNING`, and `UPDATE t SET ...
//! FROM other WHERE ...`, which runs as a join producing each target row's new values and
//! row id (a row matched twice is updated once, with one of its matches, as in PostgreSQL).

use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    AssignmentTarget, Delete, SelectItem, Statement as SqlStatement, TableFactor, Update,
    UpdateTableFromKind,
};

use super::dml::split_row_ids;
use super::returning::{quote, returning};
use super::{table_def, WriteScope};
use crate::error::{Error, Result, SqlState};
use crate::planner::{dml_target, object_name, Planner};
use crate::privileges::Privilege;
use crate::result::ResultSet;
use crate::sql::normalize_ident;
use crate::table::{TableRole, ROW_ID_COLUMN};

/// Whether an UPDATE needs this executor.
pub(crate) fn is_extended_update(update: &Update) -> bool {
    update.returning.is_some() || update.from.is_some()
}

/// Whether a DELETE needs this executor.
pub(crate) fn is_extended_delete(delete: &Delete) -> bool {
    delete.returning.is_some()
}

/// `UPDATE ... [FROM ...] [RETURNING ...]`.
pub(crate) async fn update_extended(
    planner: &Planner,
    scope: &WriteScope,
    mut update: Update,
) -> Result<ResultSet> {
    let items: Option<Vec<SelectItem>> = update.returning.take();
    let TableFactor::Table { name, alias, .. } = &update.table.relation else {
        return Err(Error::Unsupported(
            "UPDATE of something other than a table".into(),
        ));
    };
    let table = object_name(name)?;
    let alias = alias.as_ref().map(|a| normalize_ident(&a.name));
    let def = table_def(&scope.w, &table)?;
    let target = Some((table.clone(), TableRole::UpdateOrDeleteTarget));
    let stmt = match update.from.take() {
        Some(UpdateTableFromKind::BeforeSet(from) | UpdateTableFromKind::AfterSet(from)) => {
            let catalog = scope.w.lock().catalog();
            planner
                .actor(&catalog)
                .check_table(&def, Privilege::Update)?;
            let qualifier = quote(alias.as_deref().unwrap_or(&table));
            let mut set = std::collections::HashMap::new();
            for a in &update.assignments {
                let AssignmentTarget::ColumnName(n) = &a.target else {
                    return Err(Error::Unsupported("assigning a tuple in UPDATE".into()));
                };
                let column =
                    n.0.last()
                        .and_then(|p| p.as_ident())
                        .map(normalize_ident)
                        .ok_or_else(|| Error::Sql(format!("bad column name {n}")))?;
                if def.schema.index_of(&column).is_err() {
                    return Err(Error::Catalog(
                        SqlState::UndefinedColumn,
                        format!("column \"{column}\" of relation \"{table}\" does not exist"),
                    ));
                }
                set.insert(column, a.value.to_string());
            }
            let mut list: Vec<String> = def
                .schema
                .fields()
                .iter()
                .map(|f| match set.get(f.name()) {
                    Some(e) => format!("({e}) AS {}", quote(f.name())),
                    None => format!("{qualifier}.{}", quote(f.name())),
                })
                .collect();
            list.push(format!("{qualifier}.{}", quote(ROW_ID_COLUMN)));
            let from: Vec<String> = from.iter().map(ToString::to_string).collect();
            let filter = update
                .selection
                .as_ref()
                .map(|s| format!(" WHERE {s}"))
                .unwrap_or_default();
            let sql = format!(
                "SELECT {} FROM {}, {}{filter}",
                list.join(", "),
                update.table,
                from.join(", ")
            );
            match crate::sql::parse(&sql)?.pop() {
                Some(crate::sql::Statement::DataFusion(df)) => *df,
                _ => return Err(Error::Sql("internal: UPDATE ... FROM did not parse".into())),
            }
        }
        None => DfStatement::Statement(Box::new(SqlStatement::Update(update))),
    };
    let (plan, guard) = planner.plan(scope.txns(), stmt, target).await?;
    let input = match plan {
        LogicalPlan::Dml(dml) => dml.input.as_ref().clone(),
        query => query,
    };
    let batches = DataFrame::new(planner.state(), input).collect().await?;
    drop(guard);
    let (ids, rows) = split_row_ids(&def, batches)?;
    scope.table(planner, &def)?.update(&ids, rows.clone())?;
    match items {
        Some(items) => returning(&table, alias.as_deref(), &items, rows).await,
        None => ResultSet::count(ids.len()),
    }
}

/// `DELETE ... RETURNING ...`.
pub(crate) async fn delete_extended(
    planner: &Planner,
    scope: &WriteScope,
    mut delete: Delete,
) -> Result<ResultSet> {
    let items = delete.returning.take().unwrap_or_default();
    let stmt = DfStatement::Statement(Box::new(SqlStatement::Delete(delete)));
    let Some((table, role)) = dml_target(&stmt) else {
        return Err(Error::Unsupported(
            "DELETE of something other than a table".into(),
        ));
    };
    let def = table_def(&scope.w, &table)?;
    let (plan, guard) = planner
        .plan(scope.txns(), stmt, Some((table.clone(), role)))
        .await?;
    let LogicalPlan::Dml(dml) = plan else {
        return Err(Error::Sql("internal: DELETE did not plan as DML".into()));
    };
    let batches = DataFrame::new(planner.state(), dml.input.as_ref().clone())
        .collect()
        .await?;
    drop(guard);
    let (ids, rows) = split_row_ids(&def, batches)?;
    scope.table(planner, &def)?.delete(&ids)?;
    returning(&table, None, &items, rows).await
}
