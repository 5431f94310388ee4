//! Names and statement shapes read off the parse tree: which statements write, which table
//! they target, and table names reduced to PhantomDB's one schema.

use datafusion::common::TableReference;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    FromTable, ObjectName, Statement as SqlStatement, TableFactor, TableObject,
};

use super::{CATALOG_NAME, SCHEMA_NAME};
use crate::error::{Error, Result};
use crate::sql::normalize_ident;
use crate::table::TableRole;

/// Whether a statement changes the database (and so needs the write transaction).
pub(crate) fn is_write(stmt: &DfStatement) -> bool {
    match stmt {
        DfStatement::Statement(s) => matches!(
            s.as_ref(),
            SqlStatement::Insert(_)
                | SqlStatement::Update(_)
                | SqlStatement::Delete(_)
                | SqlStatement::CreateTable(_)
                | SqlStatement::CreateView(_)
                | SqlStatement::Drop { .. }
                | SqlStatement::Truncate(_)
        ),
        _ => false,
    }
}

/// The table an INSERT, UPDATE or DELETE writes to, and its role while planning.
pub(crate) fn dml_target(stmt: &DfStatement) -> Option<(String, TableRole)> {
    let DfStatement::Statement(s) = stmt else {
        return None;
    };
    let relation = match s.as_ref() {
        SqlStatement::Delete(d) => match &d.from {
            FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => {
                t.first().map(|t| &t.relation)
            }
        },
        SqlStatement::Update(u) => Some(&u.table.relation),
        SqlStatement::Insert(i) => {
            return match &i.table {
                TableObject::TableName(name) => {
                    object_name(name).ok().map(|n| (n, TableRole::InsertTarget))
                }
                _ => None,
            }
        }
        _ => None,
    }?;
    match relation {
        TableFactor::Table { name, .. } => object_name(name)
            .ok()
            .map(|n| (n, TableRole::UpdateOrDeleteTarget)),
        _ => None,
    }
}

/// A table name from the parse tree, normalized, in PhantomDB's one schema.
pub(crate) fn object_name(name: &ObjectName) -> Result<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| {
            p.as_ident()
                .map(normalize_ident)
                .ok_or_else(|| Error::Sql(format!("bad name {name}")))
        })
        .collect::<Result<_>>()?;
    match parts.as_slice() {
        [t] => Ok(t.clone()),
        [s, t] if s == SCHEMA_NAME => Ok(t.clone()),
        [c, s, t] if c == CATALOG_NAME && s == SCHEMA_NAME => Ok(t.clone()),
        _ => Err(Error::Unsupported(format!(
            "schema-qualified name {name} (only {SCHEMA_NAME})"
        ))),
    }
}

/// A table name from a logical plan, in PhantomDB's one schema.
pub(crate) fn local_name(name: &TableReference) -> Result<String> {
    match name.schema() {
        None => Ok(name.table().to_string()),
        Some(s) if s == SCHEMA_NAME => Ok(name.table().to_string()),
        Some(s) => Err(Error::Unsupported(format!(
            "schema \"{s}\" (only \"{SCHEMA_NAME}\")"
        ))),
    }
}
