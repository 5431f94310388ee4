//! Rewrites PostgreSQL-only syntax that psql and drivers send in their catalog queries into
//! SQL DataFusion plans. The rewrite works on the parse tree (PostgreSQL dialect) and prints
//! it back only when something changed; SQL it cannot parse, or that has nothing to rewrite,
//! is returned unchanged.
//!
//! In every statement:
//! * `OPERATOR(pg_catalog.~)` → `~` (any operator written that way);
//! * `expr COLLATE name` → `expr` (DataFusion has no collations);
//! * casts to PostgreSQL-only types: `::regclass` → `to_regclass(text)` for text and
//!   parameters, the relation's name for OIDs; `::regtype` → `to_regtype(text)` /
//!   `format_type(oid, NULL)`; `::regnamespace`, `::regrole`; `::oid` → `INT UNSIGNED`;
//!   `::name`, `::"char"`, `::pg_node_tree` → `TEXT`; `::pg_catalog.int4` → `INT` and so on;
//! * `E'...'` → `'...'`; `pg_catalog.f(...)` → `f(...)`; `current_schema` → `current_schema()`;
//! * `ARRAY(SELECT e FROM ... ORDER BY o)` → `(SELECT array_agg(e ORDER BY o) FROM ...)`;
//! * `generate_subscripts(a, d)` → `unnest(generate_series(1, array_length(a, d)))`;
//! * `current_setting(name)` also answers PostgreSQL's settings (`server_version_num`, ...);
//! * unqualified `pg_class` (any `pg_catalog` relation) → `pg_catalog.pg_class`, as
//!   PostgreSQL searches `pg_catalog` first;
//! * `SHOW standard_conforming_strings` (and the other settings of
//!   [`super::settings`] PhantomDB has none of its own for) → `SELECT 'on' AS ...`.
//!
//! In statements that read `pg_catalog` relations only (they are catalog queries, where
//! PostgreSQL's looser rules cost nothing):
//! * a correlated scalar subquery that is not an aggregate takes its first row
//!   (`first_value(...)`), which DataFusion can decorrelate;
//! * a `SELECT` that inner-joins a relation PhantomDB always leaves empty (`pg_inherits`,
//!   `pg_policy`, `pg_publication`, ...) returns no rows without evaluating its expressions:
//!   its select list becomes `NULL`s under the same names and its `WHERE` `false`.

use std::borrow::Cow;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CastKind, DataType, Expr, FunctionArguments, Ident, ObjectName, ObjectNamePart,
    Query, SetExpr, Statement, TableFactor, Value, Visit, VisitMut, Visitor, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::names::{catalog_relation, idents, parse_expr};
use super::prune::{prune_select, prune_set};
use super::settings::pg_setting;
use super::subquery::{array_subquery, first_row};

/// Rewrites `sql` (one or more statements) for DataFusion; see the module documentation.
/// Returns the input unchanged when it has nothing PostgreSQL-only, or does not parse.
pub fn rewrite(sql: &str) -> Cow<'_, str> {
    let lower = sql.to_ascii_lowercase();
    const MARKERS: [&str; 12] = [
        "pg_",
        "::",
        "operator",
        "collate",
        "array",
        "show",
        "current_schema",
        "current_setting",
        "e'",
        "generate_subscripts",
        "reg",
        "version",
    ];
    if !MARKERS.iter().any(|m| lower.contains(m)) {
        return Cow::Borrowed(sql);
    }
    let Ok(mut statements) = Parser::parse_sql(&PostgreSqlDialect {}, sql) else {
        return Cow::Borrowed(sql);
    };
    // Too deep to rewrite (or even to drop here): the parser proper refuses it.
    if statements.iter().any(crate::sql::limits::sql_too_deep) {
        crate::sql::limits::drop_deep(statements);
        return Cow::Borrowed(sql);
    }
    let mut changed = false;
    for statement in &mut statements {
        changed |= rewrite_statement(statement);
    }
    if !changed {
        return Cow::Borrowed(sql);
    }
    Cow::Owned(
        statements
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(";\n"),
    )
}

/// Rewrites one parsed statement in place; `true` if anything changed.
pub fn rewrite_statement(statement: &mut Statement) -> bool {
    if let Some(show) = show_setting(statement) {
        *statement = show;
        return true;
    }
    let mut finder = CatalogFinder(false);
    let _ = Visit::visit(&*statement, &mut finder);
    let mut rewriter = Rewriter {
        catalog_query: finder.0,
        changed: false,
    };
    let _ = VisitMut::visit(statement, &mut rewriter);
    rewriter.changed
}

/// `SHOW name` of a PostgreSQL setting PhantomDB answers with a fixed value.
fn show_setting(statement: &Statement) -> Option<Statement> {
    let Statement::ShowVariable { variable } = statement else {
        return None;
    };
    let words: Vec<String> = variable
        .iter()
        .map(|i| i.value.to_ascii_lowercase())
        .collect();
    let name = match words.join(" ").as_str() {
        "transaction isolation level" => "transaction_isolation".to_string(),
        // PhantomDB's own (it reads the database's setting).
        "default_table_access_method" => return None,
        other => other.to_string(),
    };
    let setting = pg_setting(&name)?;
    let sql = format!(
        "SELECT '{}' AS {}",
        setting.value.replace('\'', "''"),
        setting.name
    );
    Parser::parse_sql(&PostgreSqlDialect {}, &sql).ok()?.pop()
}

/// Whether a statement reads a `pg_catalog` relation.
struct CatalogFinder(bool);

impl Visitor for CatalogFinder {
    type Break = ();

    fn pre_visit_relation(&mut self, name: &ObjectName) -> ControlFlow<()> {
        if catalog_relation(name).is_some() {
            self.0 = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

struct Rewriter {
    catalog_query: bool,
    changed: bool,
}

impl Rewriter {
    fn set<T>(&mut self, slot: &mut T, value: T) {
        *slot = value;
        self.changed = true;
    }
}

impl VisitorMut for Rewriter {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, args, .. } = factor {
            let parts = idents(name).unwrap_or_default();
            if args.is_some() {
                // `pg_catalog.generate_series(...)`: a table function DataFusion knows unqualified.
                if parts.len() == 2 && parts[0].eq_ignore_ascii_case("pg_catalog") {
                    name.0.remove(0);
                    self.changed = true;
                }
            } else if parts.len() == 1 && catalog_relation(name).is_some() {
                name.0
                    .insert(0, ObjectNamePart::Identifier(Ident::new("pg_catalog")));
                self.changed = true;
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Some(new) = self.rewrite_expr(expr) {
            self.set(expr, new);
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if !self.catalog_query {
            return ControlFlow::Continue(());
        }
        let pruned = match query.body.as_mut() {
            SetExpr::Select(select) => prune_select(select),
            body => prune_set(body),
        };
        if pruned {
            if matches!(query.body.as_ref(), SetExpr::Select(_)) {
                query.order_by = None;
            }
            self.changed = true;
        }
        ControlFlow::Continue(())
    }
}

impl Rewriter {
    /// The replacement of one expression (its children are already rewritten), if any.
    fn rewrite_expr(&mut self, expr: &mut Expr) -> Option<Expr> {
        match expr {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::PGCustomBinaryOperator(parts),
                right,
            } => {
                let op = match parts.last().map(String::as_str)? {
                    "~" => BinaryOperator::PGRegexMatch,
                    "~*" => BinaryOperator::PGRegexIMatch,
                    "!~" => BinaryOperator::PGRegexNotMatch,
                    "!~*" => BinaryOperator::PGRegexNotIMatch,
                    "~~" => BinaryOperator::PGLikeMatch,
                    "!~~" => BinaryOperator::PGNotLikeMatch,
                    "=" => BinaryOperator::Eq,
                    "<>" | "!=" => BinaryOperator::NotEq,
                    "<" => BinaryOperator::Lt,
                    ">" => BinaryOperator::Gt,
                    "<=" => BinaryOperator::LtEq,
                    ">=" => BinaryOperator::GtEq,
                    "||" => BinaryOperator::StringConcat,
                    "+" => BinaryOperator::Plus,
                    "-" => BinaryOperator::Minus,
                    _ => return None,
                };
                Some(Expr::BinaryOp {
                    left: left.clone(),
                    op,
                    right: right.clone(),
                })
            }
            Expr::Collate { expr, .. } => Some((**expr).clone()),
            Expr::Cast {
                kind,
                expr: inner,
                data_type,
                ..
            } => {
                if matches!(kind, CastKind::TryCast | CastKind::SafeCast) {
                    return None;
                }
                cast(inner, data_type)
            }
            Expr::Value(v) => match &v.value {
                Value::EscapedStringLiteral(s) => {
                    Some(Expr::value(Value::SingleQuotedString(s.clone())))
                }
                _ => None,
            },
            Expr::Identifier(ident) if ident.quote_style.is_none() => {
                match ident.value.to_ascii_lowercase().as_str() {
                    "current_schema" => parse_expr("current_schema()"),
                    "current_catalog" => parse_expr("current_database()"),
                    _ => None,
                }
            }
            Expr::Function(_) => self.rewrite_function(expr),
            Expr::Subquery(query) if self.catalog_query => first_row(query),
            _ => None,
        }
    }

    fn rewrite_function(&mut self, expr: &mut Expr) -> Option<Expr> {
        let Expr::Function(function) = expr else {
            return None;
        };
        let parts = idents(&function.name)?;
        if parts.len() == 2 && parts[0].eq_ignore_ascii_case("pg_catalog") {
            function.name.0.remove(0);
            self.changed = true;
        }
        let name = parts.last()?.to_ascii_lowercase();
        match (name.as_str(), &function.args) {
            ("array", FunctionArguments::Subquery(query)) => array_subquery(query),
            ("generate_subscripts", FunctionArguments::List(list)) if list.args.len() == 2 => {
                let (a, d) = (&list.args[0], &list.args[1]);
                parse_expr(&format!(
                    "unnest(generate_series(1, array_length({a}, {d})))"
                ))
            }
            ("current_setting", FunctionArguments::List(list)) if list.args.len() == 1 => {
                let a = &list.args[0];
                parse_expr(&format!(
                    "coalesce(current_setting({a}, true), phantomdb_pg_setting({a}))"
                ))
            }
            _ => None,
        }
    }
}

/// Whether an expression is text-like where a `regclass` or `regtype` is expected (a name to
/// look up, not an OID to print).
fn is_text(expr: &Expr) -> bool {
    match expr {
        Expr::Value(v) => matches!(
            v.value,
            Value::SingleQuotedString(_) | Value::EscapedStringLiteral(_) | Value::Placeholder(_)
        ),
        Expr::Function(_) => true,
        Expr::Cast { data_type, .. } => matches!(
            data_type,
            DataType::Text
                | DataType::Varchar(_)
                | DataType::String(_)
                | DataType::CharacterVarying(_)
        ),
        Expr::Nested(e) => is_text(e),
        _ => false,
    }
}

/// The last part of a custom type name, lower-cased (`pg_catalog.regclass` → `regclass`).
fn custom_type(data_type: &DataType) -> Option<String> {
    match data_type {
        DataType::Custom(name, _) => idents(name)?.last().map(|s| s.to_ascii_lowercase()),
        _ => None,
    }
}

/// A standard SQL type for a PostgreSQL type name, as DataFusion knows it.
fn standard_type(name: &str) -> Option<&'static str> {
    Some(match name {
        "text" | "name" | "char" | "bpchar" | "varchar" | "pg_node_tree" | "aclitem"
        | "regproc" | "regprocedure" | "regoper" | "regconfig" => "TEXT",
        "oid" | "xid" | "cid" | "regrole_oid" => "INT UNSIGNED",
        "int2" | "smallint" => "SMALLINT",
        "int4" | "integer" | "int" => "INT",
        "int8" | "bigint" => "BIGINT",
        "bool" | "boolean" => "BOOLEAN",
        "float4" | "real" => "REAL",
        "float8" => "DOUBLE",
        "numeric" => "DECIMAL",
        "date" => "DATE",
        "timestamp" => "TIMESTAMP",
        "timestamptz" => "TIMESTAMP WITH TIME ZONE",
        "bytea" => "BYTEA",
        "int2vector" => "SMALLINT[]",
        "oidvector" => "INT UNSIGNED[]",
        _ => return None,
    })
}

/// The replacement of `CAST(inner AS data_type)` when the type is PostgreSQL-only.
fn cast(inner: &Expr, data_type: &DataType) -> Option<Expr> {
    if let DataType::Array(elem) = data_type {
        use datafusion::sql::sqlparser::ast::ArrayElemTypeDef;
        let element = match elem {
            ArrayElemTypeDef::SquareBracket(t, _) | ArrayElemTypeDef::AngleBracket(t) => t,
            ArrayElemTypeDef::Parenthesis(t) => t,
            ArrayElemTypeDef::None => return None,
        };
        let sql = standard_type(&custom_type(element)?)?;
        return parse_expr(&format!("CAST({inner} AS {sql}[])"));
    }
    let name = match data_type {
        DataType::Regclass => "regclass".to_string(),
        other => custom_type(other)?,
    };
    let sql = match name.as_str() {
        "regclass" if is_text(inner) => format!("to_regclass({inner})"),
        "regclass" => format!("phantomdb_regclass_name({inner})"),
        "regtype" if is_text(inner) => format!("to_regtype({inner})"),
        "regtype" => format!("format_type({inner}, NULL)"),
        "regnamespace" => format!("phantomdb_nspname({inner})"),
        "regrole" => format!("pg_get_userbyid({inner})"),
        other => format!("CAST({inner} AS {})", standard_type(other)?),
    };
    parse_expr(&sql)
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn postgres_syntax_becomes_datafusion_syntax() {
        let sql = "SELECT c.oid FROM pg_catalog.pg_class c \
                   WHERE c.relname OPERATOR(pg_catalog.~) '^(t)$' COLLATE pg_catalog.default";
        let out = rewrite(sql);
        assert!(out.contains("c.relname ~ '^(t)$'"), "{out}");
        assert!(!out.contains("COLLATE"), "{out}");
        assert_eq!(rewrite("SELECT 1"), "SELECT 1");
        assert_eq!(
            rewrite("SELECT * FROM t WHERE a = 'x'"),
            "SELECT * FROM t WHERE a = 'x'"
        );
        let out = rewrite("SELECT x::regclass, 'pg_class'::regclass, E'a\\nb' FROM pg_type");
        assert!(out.contains("phantomdb_regclass_name(x)"), "{out}");
        assert!(out.contains("to_regclass('pg_class')"), "{out}");
        assert!(out.contains("FROM pg_catalog.pg_type"), "{out}");
        assert!(rewrite("SHOW standard_conforming_strings").contains("'on'"));
        assert_eq!(rewrite("SHOW application_name"), "SHOW application_name");
    }
}
