//! Result columns with the same name: `SELECT a, a FROM t`, `SELECT count(*), count(*)`,
//! `SELECT col2, -col2 AS col2 FROM tab0`, which PostgreSQL, SQLite and DuckDB run.
//!
//! DataFusion requires unique names in every plan node. A statement it refuses for a
//! duplicate name is planned again with the colliding select items renamed apart: each gets
//! the internal name `<name>` + [`MARK`] + `<position>`, keeping the name the user sees in
//! front. The marks are cut off where results leave the library ([`visible_schema`]), so
//! the client sees both columns under the same name. A query that refers to such a name from
//! outside (`SELECT s.a FROM (SELECT a, a FROM t) s`) fails as in PostgreSQL:
//! `column reference "a" is ambiguous` (`42702`).

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, Ident, Query, Select, SelectItem, SetExpr, Statement as SqlStatement, Visit,
    VisitMut, Visitor, VisitorMut,
};

use crate::error::{Error, Result};
use crate::sqlstate::SqlState;

/// Separates a column's visible name from the suffix that makes it unique inside plans.
const MARK: char = '\u{1}';

/// Whether some `SELECT` of `stmt` may give two columns one name (cheap; decides whether a
/// copy of the statement is kept for a second planning).
///
/// Only statements whose result columns are not stored under their names qualify: queries
/// (also prepared or explained) and INSERT/UPDATE/DELETE. `CREATE TABLE ... AS` and
/// `CREATE VIEW` with two columns of one name stay refused, as in PostgreSQL.
pub(crate) fn may_collide(stmt: &DfStatement) -> bool {
    let s = match stmt {
        DfStatement::Statement(s) => s,
        DfStatement::Explain(e) => return may_collide(&e.statement),
        _ => return false,
    };
    let s = match s.as_ref() {
        SqlStatement::Prepare { statement, .. } => statement.as_ref(),
        other => other,
    };
    if !matches!(
        s,
        SqlStatement::Query(_)
            | SqlStatement::Insert(_)
            | SqlStatement::Update(_)
            | SqlStatement::Delete(_)
    ) {
        return false;
    }
    struct Finder(bool);
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            let mut found = false;
            each_select(&query.body, &mut |select| {
                found |= collisions(select).is_some()
            });
            if found {
                self.0 = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder(false);
    let _ = s.visit(&mut finder);
    finder.0
}

/// Whether DataFusion refused a plan for a duplicate column name.
pub(crate) fn is_duplicate_error(e: &DataFusionError) -> bool {
    match e {
        DataFusionError::Plan(m) => m.contains("require unique expression names"),
        DataFusionError::SchemaError(s, _) => matches!(
            s.as_ref(),
            SchemaError::DuplicateQualifiedField { .. }
                | SchemaError::DuplicateUnqualifiedField { .. }
                | SchemaError::AmbiguousReference { .. }
        ),
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            is_duplicate_error(inner)
        }
        _ => false,
    }
}

/// `stmt` with the colliding select items of every `SELECT` renamed apart.
pub(crate) fn rename_apart(mut stmt: DfStatement) -> DfStatement {
    rename_in(&mut stmt);
    stmt
}

fn rename_in(stmt: &mut DfStatement) {
    struct Renamer;
    impl VisitorMut for Renamer {
        type Break = ();
        fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            each_select_mut(&mut query.body, &mut rename_select);
            ControlFlow::Continue(())
        }
    }
    match stmt {
        DfStatement::Explain(e) => rename_in(&mut e.statement),
        DfStatement::Statement(s) => {
            let _ = s.visit(&mut Renamer);
        }
        _ => {}
    }
}

/// The error of a statement planned with renamed columns: a reference to a name two columns
/// answer to is ambiguous (PostgreSQL's `42702`); anything else stays as it was.
pub(crate) fn explain_error(e: DataFusionError) -> Error {
    if let Some(name) = ambiguous_name(&e) {
        return Error::Catalog(
            SqlState::AmbiguousColumn,
            format!("column reference \"{name}\" is ambiguous"),
        );
    }
    Error::from(e)
}

fn ambiguous_name(e: &DataFusionError) -> Option<String> {
    match e {
        DataFusionError::SchemaError(s, _) => match s.as_ref() {
            SchemaError::FieldNotFound {
                field,
                valid_fields,
            } => {
                let renamed = valid_fields
                    .iter()
                    .any(|c| visible_name(&c.name) == field.name && c.name != field.name);
                renamed.then(|| field.name.clone())
            }
            _ => None,
        },
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            ambiguous_name(inner)
        }
        _ => None,
    }
}

/// A column name as users see it (without the suffix that made it unique).
fn visible_name(name: &str) -> &str {
    name.split(MARK).next().unwrap_or(name)
}

/// `schema` with its renamed columns under their visible names; `None` when it has none.
pub(crate) fn visible_schema(schema: &SchemaRef) -> Option<SchemaRef> {
    if !schema.fields().iter().any(|f| f.name().contains(MARK)) {
        return None;
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_name(visible_name(f.name())))
        .collect();
    Some(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

/// `batch` under `schema` (the same columns, visible names).
pub(crate) fn with_visible_names(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        batch.columns().to_vec(),
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?)
}

/// What a select item is called before planning: `Some(name)` for a column reference or an
/// alias (as DataFusion normalizes it), `None` for another expression (named after its text,
/// which may collide with another expression's).
fn item_name(item: &SelectItem) -> Option<Option<String>> {
    match item {
        SelectItem::UnnamedExpr(SqlExpr::Identifier(i)) => Some(Some(normalize(i))),
        SelectItem::UnnamedExpr(SqlExpr::CompoundIdentifier(parts)) => {
            Some(parts.last().map(normalize))
        }
        SelectItem::ExprWithAlias { alias, .. } => Some(Some(normalize(alias))),
        SelectItem::UnnamedExpr(_) => Some(None),
        _ => None,
    }
}

fn normalize(ident: &Ident) -> String {
    match ident.quote_style {
        None => ident.value.to_lowercase(),
        Some(_) => ident.value.clone(),
    }
}

/// The positions of the items of `select` to rename apart: names given twice, and every
/// unnamed expression when there is another item (DataFusion names an expression after its
/// typed form, which can equal another item's name: an unaliased `(SELECT x.a ...)` is
/// named `a`). `None` when nothing can collide.
fn collisions(select: &Select) -> Option<Vec<usize>> {
    let names: Vec<Option<Option<String>>> = select.projection.iter().map(item_name).collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let mut unnamed = 0;
    for name in names.iter().flatten() {
        match name {
            Some(n) => *counts.entry(n.as_str()).or_default() += 1,
            None => unnamed += 1,
        }
    }
    let unnamed_may_collide = unnamed > 0 && select.projection.len() > 1;
    let positions: Vec<usize> = names
        .iter()
        .enumerate()
        .filter(|(_, name)| match name {
            Some(Some(n)) => counts.get(n.as_str()).is_some_and(|c| *c > 1),
            Some(None) => unnamed_may_collide,
            None => false,
        })
        .map(|(i, _)| i)
        .collect();
    let named_twice = counts.values().any(|c| *c > 1);
    (named_twice || unnamed_may_collide).then_some(positions)
}

fn rename_select(select: &mut Select) {
    let Some(positions) = collisions(select) else {
        return;
    };
    for i in positions {
        let item = &mut select.projection[i];
        let (expr, visible) = match item {
            SelectItem::UnnamedExpr(SqlExpr::Identifier(id)) => {
                (SqlExpr::Identifier(id.clone()), normalize(id))
            }
            SelectItem::UnnamedExpr(SqlExpr::CompoundIdentifier(parts)) => (
                SqlExpr::CompoundIdentifier(parts.clone()),
                parts.last().map(normalize).unwrap_or_default(),
            ),
            SelectItem::UnnamedExpr(e) => (e.clone(), e.to_string()),
            SelectItem::ExprWithAlias { expr, alias } => (expr.clone(), normalize(alias)),
            _ => continue,
        };
        *item = SelectItem::ExprWithAlias {
            expr,
            alias: Ident::with_quote('"', format!("{visible}{MARK}{}", i + 1)),
        };
    }
}

fn each_select(body: &SetExpr, f: &mut dyn FnMut(&Select)) {
    match body {
        SetExpr::Select(s) => f(s),
        SetExpr::SetOperation { left, right, .. } => {
            each_select(left, f);
            each_select(right, f);
        }
        _ => {}
    }
}

fn each_select_mut(body: &mut SetExpr, f: &mut dyn FnMut(&mut Select)) {
    match body {
        SetExpr::Select(s) => f(s),
        SetExpr::SetOperation { left, right, .. } => {
            each_select_mut(left, f);
            each_select_mut(right, f);
        }
        _ => {}
    }
}
