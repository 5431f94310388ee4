//! Result column names as users wrote them. DataFusion names an unaliased expression after
//! its typed form (`Int64(1)`, `gcd(Int64(12),Int64(18))`); a query's result columns are
//! named after the SQL text of the select item instead (`1`, `gcd(12, 18)`), as DuckDB does.
//! Aliases and plain column references keep their names.
//!
//! The names are read off the parse tree before planning ([`OutputNames::of`]) and applied
//! to the planned query as a renaming projection on top ([`OutputNames::apply`]), so every
//! path that plans (queries, streams, prepared statements and their descriptions) agrees.

use datafusion::common::Column;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, Prepare};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, Query, SelectItem, SetExpr, Statement as SqlStatement,
};

use crate::error::Result;

/// What a select item contributes to the result's names.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    /// One column named `.0` (an unaliased expression, named as written).
    Named(String),
    /// One column whose planned name stays (an alias, a column reference).
    Keep,
    /// Any number of columns (`*`, `t.*`): names after it are matched from the end.
    Many,
}

/// The names a query's result columns should have.
#[derive(Debug, Default)]
pub(crate) struct OutputNames {
    items: Vec<Item>,
}

impl OutputNames {
    /// The names for `stmt`'s result: only queries (also inside `PREPARE`) are renamed.
    pub(crate) fn of(stmt: &DfStatement) -> Self {
        let DfStatement::Statement(s) = stmt else {
            return Self::default();
        };
        let query = match s.as_ref() {
            SqlStatement::Query(q) => q,
            SqlStatement::Prepare { statement, .. } => match statement.as_ref() {
                SqlStatement::Query(q) => q,
                _ => return Self::default(),
            },
            _ => return Self::default(),
        };
        Self {
            items: items_of(query),
        }
    }

    /// `plan` with its result columns renamed (inside a `PREPARE`, its statement's). A plan
    /// whose columns do not line up with the select list, or that the renaming would make
    /// invalid, is returned as it was.
    pub(crate) fn apply(&self, plan: LogicalPlan) -> Result<LogicalPlan> {
        if !self.items.iter().any(|i| matches!(i, Item::Named(_))) {
            return Ok(plan);
        }
        if let LogicalPlan::Statement(datafusion::logical_expr::Statement::Prepare(p)) = &plan {
            let input = self.rename((*p.input).clone());
            return Ok(LogicalPlan::Statement(
                datafusion::logical_expr::Statement::Prepare(Prepare {
                    name: p.name.clone(),
                    fields: p.fields.clone(),
                    input: std::sync::Arc::new(input),
                }),
            ));
        }
        Ok(self.rename(plan))
    }

    fn rename(&self, plan: LogicalPlan) -> LogicalPlan {
        let Some(names) = self.names_for(plan.schema().fields().len()) else {
            return plan;
        };
        let mut changed = false;
        let exprs: Vec<Expr> = plan
            .schema()
            .iter()
            .zip(names)
            .map(|((qualifier, field), name)| {
                let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
                match name {
                    Some(n) if n != field.name() => {
                        changed = true;
                        column.alias(n)
                    }
                    _ => column,
                }
            })
            .collect();
        if !changed {
            return plan;
        }
        LogicalPlanBuilder::from(plan.clone())
            .project(exprs)
            .and_then(|b| b.build())
            .unwrap_or(plan)
    }

    /// The new name of each of `width` result columns (`None`: unchanged), or `None` when
    /// the select list cannot account for that many columns.
    fn names_for(&self, width: usize) -> Option<Vec<Option<&str>>> {
        let first_many = self.items.iter().position(|i| *i == Item::Many);
        let Some(first_many) = first_many else {
            if self.items.len() != width {
                return None;
            }
            return Some(self.items.iter().map(Item::name).collect());
        };
        let last_many = self.items.iter().rposition(|i| *i == Item::Many)?;
        let (head, tail) = (&self.items[..first_many], &self.items[last_many + 1..]);
        if head.len() + tail.len() > width {
            return None;
        }
        let mut names: Vec<Option<&str>> = head.iter().map(Item::name).collect();
        names.resize(width - tail.len(), None);
        names.extend(tail.iter().map(Item::name));
        Some(names)
    }
}

impl Item {
    fn name(&self) -> Option<&str> {
        match self {
            Item::Named(n) => Some(n),
            _ => None,
        }
    }
}

/// The select items that name a query's columns: its first `SELECT`'s (through set
/// operations and parentheses).
fn items_of(query: &Query) -> Vec<Item> {
    let mut body = query.body.as_ref();
    loop {
        match body {
            SetExpr::Select(select) => return select.projection.iter().map(item).collect(),
            SetExpr::SetOperation { left, .. } => body = left.as_ref(),
            SetExpr::Query(q) => body = q.body.as_ref(),
            _ => return Vec::new(),
        }
    }
}

fn item(select_item: &SelectItem) -> Item {
    match select_item {
        SelectItem::UnnamedExpr(SqlExpr::Identifier(_) | SqlExpr::CompoundIdentifier(_)) => {
            Item::Keep
        }
        SelectItem::UnnamedExpr(e) => Item::Named(e.to_string()),
        SelectItem::ExprWithAlias { .. } => Item::Keep,
        _ => Item::Many,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Vec<Item> {
        let stmt = crate::sql::parse(sql).unwrap().remove(0);
        let crate::sql::Statement::DataFusion(s) = stmt else {
            panic!("not a DataFusion statement")
        };
        OutputNames::of(&s).items
    }

    #[test]
    fn select_items_as_written() {
        assert_eq!(
            names("SELECT 1, gcd(12,18) AS g, a, t.b, 'x' || a FROM t"),
            vec![
                Item::Named("1".into()),
                Item::Keep,
                Item::Keep,
                Item::Keep,
                Item::Named("'x' || a".into()),
            ]
        );
        assert_eq!(
            names("SELECT 1 + 1 UNION SELECT 2"),
            vec![Item::Named("1 + 1".into())]
        );
        assert!(names("INSERT INTO t VALUES (1)").is_empty());
    }

    #[test]
    fn wildcards_match_from_both_ends() {
        let n = OutputNames {
            items: vec![Item::Named("1".into()), Item::Many, Item::Named("2".into())],
        };
        assert_eq!(n.names_for(4), Some(vec![Some("1"), None, None, Some("2")]));
        assert_eq!(n.names_for(1), None);
    }
}
