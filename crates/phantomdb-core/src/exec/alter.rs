//! `ALTER TABLE t ADD COLUMN | RENAME COLUMN | RENAME TO`; DROP COLUMN and ALTER COLUMN are
//! in `alter_column.rs`.

use std::sync::Arc;

use arrow::datatypes::{Field, Schema};
use datafusion::sql::sqlparser::ast::{
    AlterTableOperation, ColumnDef, ColumnOption, RenameTableNameKind, Statement as SqlStatement,
};

use super::{table_def, WriteScope};
use crate::catalog::{CatalogEntry, TableDef};
use crate::engines::{read_all, ScanRequest, TableAccess};
use crate::error::{Error, Result, SqlState};
use crate::planner::{object_name, Planner};
use crate::result::ResultSet;
use crate::sql::normalize_ident;

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
    let catalog = w.lock().catalog();
    planner
        .actor(&catalog)
        .check_owner("table", &name, &def.owner)?;
    let mut new = (*def).clone();
    let mut new_name = name.clone();
    let single = alter.operations.len() == 1;
    for op in alter.operations {
        match op {
            AlterTableOperation::DropColumn {
                column_names,
                if_exists,
                ..
            } if single => {
                super::alter_column::drop_columns(planner, scope, &def, &column_names, if_exists)?;
                return Ok(ResultSet::empty());
            }
            AlterTableOperation::AlterColumn { column_name, op } => {
                super::alter_column::alter_column(planner, scope, &mut new, &column_name, op)?
            }
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
    let fill = |column: usize, rows: usize| planner.default_array(&new, column, rows);
    scope.table(planner, &def)?.change_schema(&new, &fill)?;
    let mut wl = w.lock();
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
    def: &Arc<TableDef>,
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
    let registry = planner.registry();
    let custom = crate::types::declared(registry.data_types(), &column_def.data_type)?;
    if let (Some(t), Some(_)) = (&custom, &default) {
        return Err(Error::Unsupported(format!(
            "ADD COLUMN with a DEFAULT for a column of type {}",
            t.name
        )));
    }
    let ty = match &custom {
        Some(t) => t.storage.clone(),
        None => planner.sql_type(&column_def.data_type.to_string())?,
    };
    let backfill = match &default {
        Some(sql) => Some(planner.eval_constant(sql, &ty)?),
        None => None,
    };
    let has_rows = has_rows(scope.table(planner, def)?.as_ref())?;
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
    fields.push(match &custom {
        Some(t) => t.field(&col, nullable),
        None => Field::new(&col, ty, nullable),
    });
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

/// Whether the table has any row.
fn has_rows(table: &dyn TableAccess) -> Result<bool> {
    let request = ScanRequest {
        projection: Some(Vec::new()),
        limit: Some(1),
        ..ScanRequest::default()
    };
    Ok(read_all(table, &request)?.num_rows() > 0)
}

/// The table's columns, to edit.
fn fields_of(def: &TableDef) -> Vec<Field> {
    def.schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect()
}
