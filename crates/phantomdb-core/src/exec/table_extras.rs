//! What `CREATE TABLE` declares beyond DataFusion's columns and primary key: UNIQUE and CHECK
//! constraints, identity columns (`GENERATED ... AS IDENTITY`, `SERIAL`, `AUTOINCREMENT`)
//! and `REFERENCES` clauses. [`take_table_extras`] removes them from the parse tree before
//! DataFusion plans the table; [`apply_table_extras`] records them on the created table.
//!
//! Foreign keys are accepted and not enforced: the clause is dropped with a warning in the
//! log (migrations written for other databases run unchanged).

use std::sync::Arc;

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    ColumnOption, DataType as SqlType, GeneratedAs, Statement as SqlStatement, TableConstraint,
};

use super::index::{add_index, column_names, IndexSpec};
use super::WriteScope;
use crate::catalog::{CatalogEntry, CheckDef, Identity};
use crate::constraints::{check_rows, validate_condition};
use crate::engines::{read_all, ScanRequest};
use crate::error::{Error, Result};
use crate::planner::{object_name, Planner};
use crate::sql::normalize_ident;

/// The constraints and identity columns taken out of a `CREATE TABLE`.
#[derive(Debug, Default)]
pub(crate) struct TableExtras {
    /// The table's name.
    table: String,
    /// UNIQUE constraints: optional name, column names.
    uniques: Vec<(Option<String>, Vec<String>)>,
    /// CHECK constraints: optional name, the column it was declared on, the condition.
    checks: Vec<(Option<String>, Option<String>, String)>,
    /// Identity columns: name, `ALWAYS`.
    identity: Vec<(String, bool)>,
}

impl TableExtras {
    fn is_empty(&self) -> bool {
        self.uniques.is_empty() && self.checks.is_empty() && self.identity.is_empty()
    }
}

/// Removes what DataFusion does not plan from a `CREATE TABLE` and returns it (`None` for
/// other statements and tables without any).
pub(crate) fn take_table_extras(stmt: &mut DfStatement) -> Result<Option<TableExtras>> {
    let DfStatement::Statement(s) = stmt else {
        return Ok(None);
    };
    let SqlStatement::CreateTable(create) = s.as_mut() else {
        return Ok(None);
    };
    let mut extras = TableExtras {
        table: object_name(&create.name)?,
        ..TableExtras::default()
    };
    for column in &mut create.columns {
        let name = normalize_ident(&column.name);
        if let SqlType::Custom(type_name, args) = &column.data_type {
            let serial = match type_name.to_string().to_ascii_lowercase().as_str() {
                "serial" | "serial4" => Some(SqlType::Integer(None)),
                "bigserial" | "serial8" => Some(SqlType::BigInt(None)),
                "smallserial" | "serial2" => Some(SqlType::SmallInt(None)),
                _ => None,
            };
            if let (Some(t), true) = (serial, args.is_empty()) {
                column.data_type = t;
                extras.identity.push((name.clone(), false));
            }
        }
        let mut kept = Vec::with_capacity(column.options.len());
        for option in column.options.drain(..) {
            let constraint_name = option.name.as_ref().map(normalize_ident);
            match &option.option {
                ColumnOption::Unique(_) => {
                    extras.uniques.push((constraint_name, vec![name.clone()]));
                }
                ColumnOption::Check(c) => {
                    let n = c.name.as_ref().map(normalize_ident).or(constraint_name);
                    extras
                        .checks
                        .push((n, Some(name.clone()), c.expr.to_string()));
                }
                ColumnOption::Generated {
                    generated_as,
                    generation_expr: None,
                    ..
                } => {
                    let always = matches!(generated_as, GeneratedAs::Always);
                    extras.identity.push((name.clone(), always));
                }
                ColumnOption::Generated { .. } => {
                    return Err(Error::Unsupported(format!(
                        "generated column \"{name}\" (only identity columns are supported)"
                    )))
                }
                ColumnOption::Identity(_) => extras.identity.push((name.clone(), false)),
                ColumnOption::DialectSpecific(tokens)
                    if tokens.len() == 1
                        && matches!(
                            tokens[0].to_string().to_ascii_uppercase().as_str(),
                            "AUTOINCREMENT" | "AUTO_INCREMENT"
                        ) =>
                {
                    extras.identity.push((name.clone(), false));
                }
                ColumnOption::ForeignKey(_) => {
                    tracing::warn!(column = %name, "REFERENCES is accepted but not enforced");
                }
                _ => kept.push(option),
            }
        }
        column.options = kept;
    }
    let mut kept = Vec::with_capacity(create.constraints.len());
    for constraint in create.constraints.drain(..) {
        match constraint {
            TableConstraint::Unique(u) => {
                let name = u.name.as_ref().map(normalize_ident);
                extras.uniques.push((name, column_names(&u.columns)?));
            }
            TableConstraint::Check(c) => {
                let name = c.name.as_ref().map(normalize_ident);
                extras.checks.push((name, None, c.expr.to_string()));
            }
            TableConstraint::ForeignKey(_) => {
                tracing::warn!("FOREIGN KEY is accepted but not enforced");
            }
            other => kept.push(other),
        }
    }
    create.constraints = kept;
    Ok((!extras.is_empty()).then_some(extras))
}

/// The table's id now, to tell afterwards whether `CREATE TABLE` made a new one.
pub(crate) fn table_id(scope: &WriteScope, extras: &TableExtras) -> Option<u64> {
    scope.w.lock().catalog().table(&extras.table).map(|t| t.id)
}

/// Records the extras on the table `CREATE TABLE` just made (nothing when `IF NOT EXISTS`
/// kept an existing table, whose id was `before`).
pub(crate) fn apply_table_extras(
    planner: &Planner,
    scope: &WriteScope,
    extras: TableExtras,
    before: Option<u64>,
) -> Result<()> {
    let Some(def) = scope.w.lock().catalog().table(&extras.table).cloned() else {
        return Ok(());
    };
    if before == Some(def.id) {
        return Ok(());
    }
    let mut new = (*def).clone();
    let position = |name: &str| {
        new.schema.index_of(name).map_err(|_| {
            Error::Catalog(
                crate::error::SqlState::UndefinedColumn,
                format!("column \"{name}\" named in a constraint does not exist"),
            )
        })
    };
    for (column, always) in &extras.identity {
        let p = position(column)?;
        if !new.schema.field(p).data_type().is_integer() {
            return Err(Error::Sql(format!(
                "identity column \"{column}\" must be an integer type"
            )));
        }
        let identity = Identity {
            always: *always,
            sequence: format!("{}_{column}_seq", extras.table),
        };
        new.identity.insert(p, identity);
    }
    for (i, (name, column, expr)) in extras.checks.iter().enumerate() {
        let name = name.clone().unwrap_or_else(|| match column {
            Some(c) => format!("{}_{c}_check", extras.table),
            None if i == 0 => format!("{}_check", extras.table),
            None => format!("{}_check{i}", extras.table),
        });
        validate_condition(&new, expr)?;
        new.checks.push(CheckDef {
            name,
            expr: expr.clone(),
        });
    }
    let new = Arc::new(new);
    scope
        .w
        .lock()
        .put_entry(&extras.table, CatalogEntry::Table(new.clone()))?;
    if !new.checks.is_empty() {
        // CREATE TABLE ... AS: the rows already there must pass.
        let access = scope.table(planner, &new)?;
        let rows = read_all(access.as_ref(), &ScanRequest::default())?;
        check_rows(&new, &rows)?;
    }
    for (name, columns) in extras.uniques {
        let name = name.unwrap_or_else(|| format!("{}_{}_key", extras.table, columns.join("_")));
        let spec = IndexSpec {
            name,
            table: extras.table.clone(),
            columns,
            unique: true,
            constraint: true,
        };
        add_index(planner, scope, spec)?;
    }
    Ok(())
}
