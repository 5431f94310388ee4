//! `ALTER TABLE t ADD COLUMN | RENAME COLUMN | RENAME TO`.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{Field, Schema};
use datafusion::sql::sqlparser::ast::{
    AlterTableOperation, ColumnDef, ColumnOption, RenameTableNameKind, Statement as SqlStatement,
};

use super::dml::row_ids;
use super::insert::table_batch;
use super::{plugin_engine, table_def, WriteScope};
use crate::catalog::{CatalogEntry, TableDef};
use crate::engines::{table_info, ScanRequest};
use crate::error::{Error, Result, SqlState};
use crate::planner::{object_name, Planner};
use crate::result::ResultSet;
use crate::sql::normalize_ident;
use crate::storage::DataView;

/// Applies the operations in order to a copy of the table's definition, then stores it.
pub(crate) fn alter_table(
    planner: &Planner,
    scope: &WriteScope,
    stmt: SqlStatement,
) -> Result<ResultSet> {
    let w = &scope.w;
    let SqlStatement::AlterTable(alter) = stmt else {
        return Err(Error::Sql("expected ALTER TABLE".into()));
    };
    let name = object_name(&alter.name)?;
    let def = table_def(w, &name)?;
    let mut new = (*def).clone();
    let mut new_name = name.clone();
    for op in alter.operations {
        match op {
            AlterTableOperation::AddColumn {
                column_def,
                if_not_exists,
                ..
            } => add_column(planner, scope, &def, &mut new, column_def, if_not_exists)?,
            AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => rename_column(
                &mut new,
                &normalize_ident(&old_column_name),
                &normalize_ident(&new_column_name),
            )?,
            AlterTableOperation::RenameTable { table_name } => {
                let target = match table_name {
                    RenameTableNameKind::As(n) | RenameTableNameKind::To(n) => object_name(&n)?,
                };
                if w.lock().catalog().get(&target).is_some() {
                    return Err(Error::Catalog(
                        SqlState::DuplicateTable,
                        format!("\"{target}\" already exists"),
                    ));
                }
                new_name = target;
            }
            other => return Err(Error::Unsupported(format!("ALTER TABLE ... {other}"))),
        }
    }
    new.name = new_name.clone();
    if !def.is_native() && new.schema != def.schema {
        rewrite_engine_table(planner, scope, &def, &mut new)?;
    }
    let mut wl = w.lock();
    wl.flush_table(&def)?;
    if new_name != name {
        wl.rename_entry(&name, &new_name, CatalogEntry::Table(Arc::new(new)))?;
    } else {
        wl.put_entry(&name, CatalogEntry::Table(Arc::new(new)))?;
    }
    Ok(ResultSet::empty())
}

/// `ADD COLUMN`: existing rows of redb tables read the default (no rewrite).
fn add_column(
    planner: &Planner,
    scope: &WriteScope,
    def: &TableDef,
    new: &mut TableDef,
    column_def: ColumnDef,
    if_not_exists: bool,
) -> Result<()> {
    let name = &def.name;
    let col = normalize_ident(&column_def.name);
    if new.schema.index_of(&col).is_ok() {
        if if_not_exists {
            return Ok(());
        }
        return Err(Error::Catalog(
            SqlState::DuplicateColumn,
            format!("column \"{col}\" of table \"{name}\" already exists"),
        ));
    }
    let ty = planner.sql_type(&column_def.data_type.to_string())?;
    let mut nullable = true;
    let mut default = None;
    for opt in &column_def.options {
        match &opt.option {
            ColumnOption::NotNull => nullable = false,
            ColumnOption::Null => nullable = true,
            ColumnOption::Default(e) => default = Some(e.to_string()),
            other => return Err(Error::Unsupported(format!("ADD COLUMN option {other}"))),
        }
    }
    let backfill = match &default {
        Some(sql) => Some(planner.eval_constant(sql, &ty)?),
        None => None,
    };
    let has_rows = if def.is_native() {
        let view: Arc<dyn DataView> = scope.w.clone();
        crate::storage::live_row_count(&view.segments(new)?) > 0
    } else {
        read_engine_table(planner, scope, def, Some(Vec::new()))?.num_rows() > 0
    };
    if !nullable && backfill.as_ref().is_none_or(|v| v.is_null()) && has_rows {
        return Err(Error::Constraint(
            SqlState::NotNullViolation,
            format!(
            "cannot add NOT NULL column \"{col}\" without a DEFAULT to non-empty table \"{name}\""
        ),
        ));
    }
    let position = new.schema.fields().len();
    let mut fields = fields_of(new);
    fields.push(Field::new(&col, ty, nullable));
    new.schema = Schema::new(fields);
    if let Some(v) = backfill.filter(|v| !v.is_null()) {
        new.backfill.insert(position, v.to_string());
    }
    if let Some(sql) = default {
        new.defaults.insert(col, sql);
    }
    Ok(())
}

/// `RENAME COLUMN old TO new`.
fn rename_column(new: &mut TableDef, old: &str, to: &str) -> Result<()> {
    let name = &new.name;
    let i = new.schema.index_of(old).map_err(|_| {
        Error::Catalog(
            SqlState::UndefinedColumn,
            format!("column \"{old}\" of table \"{name}\" does not exist"),
        )
    })?;
    if new.schema.index_of(to).is_ok() {
        return Err(Error::Catalog(
            SqlState::DuplicateColumn,
            format!("column \"{to}\" of table \"{name}\" already exists"),
        ));
    }
    let mut fields = fields_of(new);
    fields[i] = fields[i].clone().with_name(to);
    new.schema = Schema::new(fields);
    if let Some(d) = new.defaults.remove(old) {
        new.defaults.insert(to.to_string(), d);
    }
    Ok(())
}

/// All rows of an engine table (only the columns in `projection`, when given), with the
/// row id column last.
fn read_engine_table(
    planner: &Planner,
    scope: &WriteScope,
    def: &TableDef,
    projection: Option<Vec<usize>>,
) -> Result<RecordBatch> {
    let engine = plugin_engine(&planner.registry(), def)?;
    let request = ScanRequest {
        projection,
        with_row_ids: engine.capabilities().update_delete,
        ..ScanRequest::default()
    };
    scope
        .engines
        .lock()
        .read_all(&engine, &table_info(def), &request)
}

/// Rewrites an engine table's rows in the schema of `new` (after ADD or RENAME COLUMN):
/// engines store whole rows, so old rows get the new column's DEFAULT now, as PostgreSQL
/// does when it rewrites a table.
fn rewrite_engine_table(
    planner: &Planner,
    scope: &WriteScope,
    old: &TableDef,
    new: &mut TableDef,
) -> Result<()> {
    let engine = plugin_engine(&planner.registry(), old)?;
    if !engine.capabilities().update_delete {
        return Err(Error::Unsupported(format!(
            "ALTER TABLE {}: storage engine {} cannot rewrite rows (no UPDATE/DELETE support)",
            old.name,
            engine.name()
        )));
    }
    new.backfill.clear();
    let all = read_engine_table(planner, scope, old, None)?;
    let n_old = old.schema.fields().len();
    let ids = row_ids(&all, n_old)?;
    if ids.is_empty() {
        return Ok(());
    }
    let mut cols: Vec<ArrayRef> = all.columns()[..n_old].to_vec();
    for i in n_old..new.schema.fields().len() {
        cols.push(planner.default_array(new, i, all.num_rows())?);
    }
    let rows = table_batch(new, cols)?;
    let mut txns = scope.engines.lock();
    txns.delete(&engine, &table_info(old), &ids)?;
    txns.insert(&engine, &table_info(new), rows)?;
    Ok(())
}

/// The table's columns, to edit.
fn fields_of(def: &TableDef) -> Vec<Field> {
    def.schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect()
}
