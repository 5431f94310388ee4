//! Names and expressions in PostgreSQL SQL text, shared by the rewrite passes.

use datafusion::sql::sqlparser::ast::{Expr, ObjectName, ObjectNamePart};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::tables::relation;

/// The `pg_catalog` relation a table name refers to (`pg_class`, `pg_catalog.pg_class`).
pub(super) fn catalog_relation(name: &ObjectName) -> Option<&'static str> {
    let parts = idents(name)?;
    match parts.as_slice() {
        [rel] => relation(&rel.to_ascii_lowercase()).map(|r| r.name),
        [schema, rel] if schema.eq_ignore_ascii_case("pg_catalog") => {
            relation(&rel.to_ascii_lowercase()).map(|r| r.name)
        }
        _ => None,
    }
}

/// The parts of a name, when all are identifiers.
pub(super) fn idents(name: &ObjectName) -> Option<Vec<String>> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => Some(i.value.clone()),
            ObjectNamePart::Function(_) => None,
        })
        .collect()
}

/// An expression from SQL text (for replacements built around printed sub-expressions).
pub(super) fn parse_expr(sql: &str) -> Option<Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .ok()?
        .parse_expr()
        .ok()
}
