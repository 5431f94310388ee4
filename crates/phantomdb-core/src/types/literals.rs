//! Text literals beside typed values, typed before DataFusion plans the statement.
//!
//! PostgreSQL resolves an untyped literal from the values around it: in
//! `coalesce(v, '1.0.0')` or `CASE ... THEN v ELSE '1.0.0' END` the literal is read as `v`'s
//! type. DataFusion instead looks for a common storage type while it plans the statement and
//! fails when there is none (text and `FixedSizeBinary`, for `uuid`), or finds one that reads
//! the text as bytes. So, in the SQL text, a string literal among the arguments of `coalesce`,
//! `ifnull`, `nvl`, `nullif`, `greatest` and `least`, among the results of a `CASE`, or among
//! the `WHEN` values of `CASE v WHEN ...`, or compared with one (`= <> < <= > >=`, `IS [NOT]
//! DISTINCT FROM`, `IN`, `BETWEEN`: DataFusion refuses `FixedSizeBinary = Utf8` in a select
//! list while it plans), becomes `CAST('...' AS type)` when a sibling is
//! known to have a custom type: a column of that type (by name, among the tables the
//! statement reads; a name two typed columns share with different types is left alone), a
//! cast to it, or such a call or `CASE` itself. [`super::rewrite`] then turns the cast into
//! the type's parse function.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use datafusion::logical_expr::planner::TypePlanner;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CastKind, DataType as SqlType, Expr as SqlExpr, FunctionArg, FunctionArgExpr,
    FunctionArguments, Ident, ObjectName, Statement as SqlStatement, Value, Visit, VisitMut,
    Visitor, VisitorMut,
};

use super::logical_type;
use super::planner::{identifier, CustomTypePlanner};
use crate::catalog::Catalog;
use crate::plugins::Registry;

/// Functions whose result is one of their arguments (so shares their type).
const PASS_THROUGH: &[&str] = &["coalesce", "ifnull", "nvl", "nullif", "greatest", "least"];

/// Types the text literals of `stmt` that sit beside typed values (see the module docs).
pub(crate) fn type_literals(stmt: &mut SqlStatement, catalog: &Catalog, registry: &Registry) {
    let mut tables = Tables::default();
    let _ = Visit::visit(&*stmt, &mut tables);
    let fields = tables
        .0
        .iter()
        .filter_map(|t| catalog.table(t))
        .flat_map(|t| {
            t.schema
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.clone()))
        });
    let mut typer = Typer::new(fields, registry);
    let _ = VisitMut::visit(stmt, &mut typer);
}

/// Types the text literals of one expression over columns named as `fields` says.
pub(crate) fn type_expr_literals(
    e: &mut SqlExpr,
    fields: impl Iterator<Item = (String, arrow::datatypes::FieldRef)>,
    registry: &Registry,
) {
    let mut typer = Typer::new(fields, registry);
    let _ = VisitMut::visit(e, &mut typer);
}

/// The tables a statement names (last name part, as the catalog names them).
#[derive(Default)]
struct Tables(Vec<String>);

impl Visitor for Tables {
    type Break = ();
    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        if let Some(ident) = relation.0.last().and_then(|p| p.as_ident()) {
            self.0.push(identifier(ident));
        }
        ControlFlow::Continue(())
    }
}

struct Typer {
    /// Typed column names of the statement's tables: `Some(type)`, or `None` when ambiguous.
    columns: BTreeMap<String, Option<String>>,
    planner: CustomTypePlanner,
}

impl Typer {
    /// A typer for columns `(name, field)`: a name is typed when every column so named has the
    /// same loaded type.
    fn new(
        fields: impl Iterator<Item = (String, arrow::datatypes::FieldRef)>,
        registry: &Registry,
    ) -> Self {
        let mut columns: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (column, f) in fields {
            let typed = logical_type(&f)
                .map(|(name, _)| name)
                .filter(|name| registry.data_types().any(|t| t.name == *name))
                .map(str::to_string);
            columns
                .entry(column)
                .and_modify(|seen| {
                    if *seen != typed {
                        *seen = None;
                    }
                })
                .or_insert(typed);
        }
        Self {
            columns,
            planner: CustomTypePlanner::new(registry.data_types()),
        }
    }

    /// The custom type `e` is known to have.
    fn type_of(&self, e: &SqlExpr) -> Option<String> {
        match e {
            SqlExpr::Identifier(i) => self.columns.get(&identifier(i)).cloned().flatten(),
            SqlExpr::CompoundIdentifier(parts) => {
                let last = parts.last()?;
                self.columns.get(&identifier(last)).cloned().flatten()
            }
            SqlExpr::Cast { data_type, .. } => {
                let field = self.planner.plan_type_field(data_type).ok()??;
                logical_type(&field).map(|(name, _)| name.to_string())
            }
            SqlExpr::Nested(inner) => self.type_of(inner),
            SqlExpr::Function(f) if pass_through(&f.name) => {
                args(&f.args).find_map(|a| self.type_of(a))
            }
            SqlExpr::Case {
                conditions,
                else_result,
                ..
            } => conditions
                .iter()
                .map(|c| &c.result)
                .chain(else_result.as_deref())
                .find_map(|r| self.type_of(r)),
            _ => None,
        }
    }
}

fn pass_through(name: &ObjectName) -> bool {
    match name.0.as_slice() {
        [part] => part
            .as_ident()
            .is_some_and(|i| PASS_THROUGH.contains(&i.value.to_ascii_lowercase().as_str())),
        _ => false,
    }
}

fn args(args: &FunctionArguments) -> impl Iterator<Item = &SqlExpr> {
    let list = match args {
        FunctionArguments::List(l) => l.args.as_slice(),
        _ => &[],
    };
    list.iter().filter_map(|a| match a {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
        _ => None,
    })
}

fn is_comparison(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq
    )
}

fn is_text_literal(e: &SqlExpr) -> bool {
    matches!(
        e,
        SqlExpr::Value(v) if matches!(
            v.value,
            Value::SingleQuotedString(_) | Value::EscapedStringLiteral(_)
        )
    )
}

fn type_text(e: &mut SqlExpr, type_name: &str) {
    if is_text_literal(e) {
        cast_to(e, type_name);
    }
}

impl VisitorMut for Typer {
    type Break = ();
    fn post_visit_expr(&mut self, e: &mut SqlExpr) -> ControlFlow<()> {
        // Comparisons: `v = '...'`, `'...' < v`, `v IN ('...')`, `v BETWEEN '...' AND '...'`.
        match e {
            SqlExpr::BinaryOp { left, op, right } if is_comparison(op) => {
                if let Some(t) = self.type_of(left) {
                    type_text(right, &t);
                } else if let Some(t) = self.type_of(right) {
                    type_text(left, &t);
                }
                return ControlFlow::Continue(());
            }
            SqlExpr::IsDistinctFrom(left, right) | SqlExpr::IsNotDistinctFrom(left, right) => {
                if let Some(t) = self.type_of(left) {
                    type_text(right, &t);
                } else if let Some(t) = self.type_of(right) {
                    type_text(left, &t);
                }
                return ControlFlow::Continue(());
            }
            SqlExpr::InList { expr, list, .. } => {
                if let Some(t) = self.type_of(expr) {
                    for item in list.iter_mut() {
                        type_text(item, &t);
                    }
                }
                return ControlFlow::Continue(());
            }
            SqlExpr::Between {
                expr, low, high, ..
            } => {
                if let Some(t) = self.type_of(expr) {
                    type_text(low, &t);
                    type_text(high, &t);
                }
                return ControlFlow::Continue(());
            }
            _ => {}
        }
        let Some(t) = self.type_of(e) else {
            // `CASE v WHEN '...'`: the WHEN values are compared with the operand.
            if let SqlExpr::Case {
                operand: Some(operand),
                conditions,
                ..
            } = e
            {
                if let Some(t) = self.type_of(operand) {
                    for c in conditions.iter_mut() {
                        type_text(&mut c.condition, &t);
                    }
                }
            }
            return ControlFlow::Continue(());
        };
        match e {
            SqlExpr::Function(f) if pass_through(&f.name) => {
                if let FunctionArguments::List(list) = &mut f.args {
                    for a in list.args.iter_mut() {
                        if let FunctionArg::Unnamed(FunctionArgExpr::Expr(a)) = a {
                            type_text(a, &t);
                        }
                    }
                }
            }
            SqlExpr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let operand_type = operand.as_deref().and_then(|o| self.type_of(o));
                for c in conditions.iter_mut() {
                    type_text(&mut c.result, &t);
                    if let Some(o) = &operand_type {
                        type_text(&mut c.condition, o);
                    }
                }
                if let Some(r) = else_result.as_deref_mut() {
                    type_text(r, &t);
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// `value` becomes `CAST(value AS type_name)`, unless it is NULL, `DEFAULT` or a parameter.
pub(super) fn cast_to(value: &mut SqlExpr, type_name: &str) {
    cast_to_name(value, ObjectName::from(vec![Ident::new(type_name)]));
}

/// `value` becomes an assignment cast to `type_name` (only the type's assignment casts
/// apply, see [`super::planner`]), unless it is NULL, `DEFAULT` or a parameter.
pub(super) fn assign_to(value: &mut SqlExpr, type_name: &str) {
    cast_to_name(
        value,
        ObjectName::from(vec![
            Ident::new(super::planner::ASSIGNMENT_SCHEMA),
            Ident::new(type_name),
        ]),
    );
}

fn cast_to_name(value: &mut SqlExpr, type_name: ObjectName) {
    let untouched = match value {
        SqlExpr::Value(v) => matches!(v.value, Value::Null | Value::Placeholder(_)),
        SqlExpr::Identifier(i) => {
            i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default")
        }
        _ => false,
    };
    if untouched {
        return;
    }
    let inner = std::mem::replace(value, SqlExpr::value(Value::Null));
    *value = SqlExpr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(inner),
        data_type: SqlType::Custom(type_name, vec![]),
        array: false,
        format: None,
    };
}
