//! Privilege checks on a statement's logical plan, before anything runs.
//!
//! The walk visits every node, the subqueries inside expressions (`EXISTS`, `IN`, scalar
//! subqueries) and the inputs of EXPLAIN, COPY, PREPARE and DML. Rules:
//! * a scan of a table needs SELECT on it;
//! * a scan of a view needs SELECT on the view; the view's own query is then checked as the
//!   view's owner (PostgreSQL's rule: a view reads with its owner's privileges);
//! * INSERT needs INSERT on the target; UPDATE and DELETE need UPDATE / DELETE, plus SELECT
//!   when the statement reads the target's columns (WHERE, SET expressions, correlated
//!   subqueries); TRUNCATE, DROP and `CREATE OR REPLACE` of an existing object need its owner;
//! * `COPY ... TO 'file'` (a table or a query) writes a server file: superusers only;
//! * table functions and system schemas stay readable by everyone.

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::{
    DdlStatement, DmlStatement, Expr, LogicalPlan, Subquery, TableScan, WriteOp,
};

use super::{owner_name, Actor, Privilege};
use crate::catalog::Catalog;
use crate::error::Result;
use crate::planner::local_name;
use crate::provider::{PhantomTable, PhantomView};
use crate::table::ROW_ID_COLUMN;

/// Checks every privilege `plan` needs, as `actor`.
pub(crate) fn check_plan(plan: &LogicalPlan, actor: &Actor, catalog: &Catalog) -> Result<()> {
    Checker { catalog }.plan(plan, actor, None)
}

struct Checker<'a> {
    catalog: &'a Catalog,
}

impl Checker<'_> {
    /// Checks `plan` and everything under it. `target` is the scan of an UPDATE/DELETE
    /// target, whose reading is decided by the columns the statement uses instead.
    fn plan(&self, plan: &LogicalPlan, actor: &Actor, target: Option<&TableScan>) -> Result<()> {
        match plan {
            LogicalPlan::TableScan(scan) => {
                if target.is_some_and(|t| std::ptr::eq(t, scan)) {
                    return Ok(());
                }
                return self.scan(scan, actor);
            }
            LogicalPlan::Dml(dml) => return self.dml(dml, actor),
            // Before what it reads, as PostgreSQL does (and under EXPLAIN too).
            LogicalPlan::Copy(_) => actor.check_server_files()?,
            LogicalPlan::Ddl(ddl) => {
                self.ddl(ddl, actor)?;
                if matches!(ddl, DdlStatement::CreateView(_)) {
                    // Checked when the view is used, with its owner's privileges.
                    return Ok(());
                }
            }
            _ => {}
        }
        let mut result = Ok(());
        plan.apply_subqueries(|sub| {
            result = self.plan(sub, actor, target);
            Ok(stop_on_error(&result))
        })?;
        result?;
        for input in plan.inputs() {
            self.plan(input, actor, target)?;
        }
        Ok(())
    }

    /// A table scan needs SELECT on the table; a view scan SELECT on the view, and its query
    /// is checked as the view's owner. Other scans (table functions, system schemas) pass,
    /// though a view-like one still has its query checked.
    fn scan(&self, scan: &TableScan, actor: &Actor) -> Result<()> {
        if let Ok(provider) = source_as_provider(&scan.source) {
            if let Some(table) = provider.downcast_ref::<PhantomTable>() {
                let def = table.def();
                return actor.check_table(def, Privilege::Select);
            }
            if let Some(view) = provider.downcast_ref::<PhantomView>() {
                let v = view.def();
                actor.check("view", &v.name, &v.owner, &v.grants, Privilege::Select)?;
                let owner = Actor::resolve(owner_name(&v.owner), self.catalog);
                return self.plan(view.plan(), &owner, None);
            }
        }
        // A view DataFusion did not inline (a system view): its query, as the user.
        match scan.source.get_logical_plan() {
            Some(query) => self.plan(&query, actor, None),
            None => Ok(()),
        }
    }

    /// INSERT, UPDATE, DELETE, TRUNCATE: the privilege on the target, then what the input
    /// reads.
    fn dml(&self, dml: &DmlStatement, actor: &Actor) -> Result<()> {
        let name = local_name(&dml.table_name)?;
        let Some(entry) = self.catalog.get(&name) else {
            // Planning found it; the executor reports it missing if it is.
            return self.plan(&dml.input, actor, None);
        };
        let (owner, grants, kind) = (entry.owner(), entry.grants(), entry.kind());
        let privilege = match &dml.op {
            WriteOp::Insert(_) => {
                actor.check(kind, &name, owner, grants, Privilege::Insert)?;
                return self.plan(&dml.input, actor, None);
            }
            WriteOp::Update => Privilege::Update,
            WriteOp::Delete => Privilege::Delete,
            WriteOp::Truncate | WriteOp::MergeInto(_) => {
                actor.check_owner(kind, &name, owner)?;
                return self.plan(&dml.input, actor, target_scan(&dml.input).map(|t| t.0));
            }
            _ => return self.plan(&dml.input, actor, None),
        };
        actor.check(kind, &name, owner, grants, privilege)?;
        let (scan, qualifier) = match target_scan(&dml.input) {
            Some(found) => found,
            None => return self.plan(&dml.input, actor, None),
        };
        if reads_target(&dml.input, &qualifier, matches!(dml.op, WriteOp::Update)) {
            actor.check(kind, &name, owner, grants, Privilege::Select)?;
        }
        self.plan(&dml.input, actor, Some(scan))
    }

    /// DROP, and CREATE OR REPLACE of an existing object, need its owner.
    fn ddl(&self, ddl: &DdlStatement, actor: &Actor) -> Result<()> {
        let name = match ddl {
            DdlStatement::DropTable(d) => &d.name,
            DdlStatement::DropView(d) => &d.name,
            DdlStatement::CreateMemoryTable(c) if c.or_replace => &c.name,
            DdlStatement::CreateView(c) if c.or_replace => &c.name,
            _ => return Ok(()),
        };
        let Ok(name) = local_name(name) else {
            return Ok(());
        };
        match self.catalog.get(&name) {
            Some(entry) => actor.check_owner(entry.kind(), &name, entry.owner()),
            None => Ok(()),
        }
    }
}

/// What to return to a tree walk after one check.
fn stop_on_error(result: &Result<()>) -> TreeNodeRecursion {
    if result.is_err() {
        TreeNodeRecursion::Stop
    } else {
        TreeNodeRecursion::Continue
    }
}

/// The scan of an UPDATE/DELETE target (the leftmost leaf of its input: DataFusion plans the
/// target first, then any `FROM` tables) and the name its columns are qualified with.
fn target_scan(input: &LogicalPlan) -> Option<(&TableScan, String)> {
    let mut node = input;
    let mut alias = None;
    loop {
        match node {
            LogicalPlan::TableScan(scan) => {
                let qualifier = alias.unwrap_or_else(|| scan.table_name.table().to_string());
                return Some((scan, qualifier));
            }
            LogicalPlan::SubqueryAlias(a) => alias = Some(a.alias.table().to_string()),
            _ => alias = None,
        }
        node = node.inputs().into_iter().next()?;
    }
}

/// Whether the statement reads columns of the target (qualified `qualifier`). For UPDATE,
/// the top projection's pass-through of unchanged columns does not count.
fn reads_target(input: &LogicalPlan, qualifier: &str, update: bool) -> bool {
    match input {
        LogicalPlan::Projection(p) if update => {
            let changed = p.expr.iter().filter(|e| !is_pass_through(e));
            changed.into_iter().any(|e| expr_reads(e, qualifier)) || plan_reads(&p.input, qualifier)
        }
        other => plan_reads(other, qualifier),
    }
}

/// `col AS col`: an UPDATE keeping a column's value.
fn is_pass_through(e: &Expr) -> bool {
    match e {
        Expr::Alias(a) => matches!(a.expr.as_ref(), Expr::Column(c) if c.name == a.name),
        Expr::Column(_) => true,
        _ => false,
    }
}

/// Whether any expression in `plan` (or in its subqueries) uses a column of `qualifier`.
fn plan_reads(plan: &LogicalPlan, qualifier: &str) -> bool {
    let mut found = false;
    let _ = plan.apply(|node| {
        let _ = node.apply_expressions(|e| {
            found = found || expr_reads(e, qualifier);
            Ok(if found {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        });
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// Whether `e` uses a column of `qualifier`, directly or from inside a subquery.
fn expr_reads(e: &Expr, qualifier: &str) -> bool {
    let is_target = |c: &datafusion::common::Column| {
        c.name != ROW_ID_COLUMN && c.relation.as_ref().is_some_and(|r| r.table() == qualifier)
    };
    let mut found = false;
    let _ = e.apply(|e| {
        found = match e {
            Expr::Column(c) | Expr::OuterReferenceColumn(_, c) => is_target(c),
            Expr::ScalarSubquery(s) => subquery_reads(s, qualifier),
            Expr::Exists(x) => subquery_reads(&x.subquery, qualifier),
            Expr::InSubquery(x) => subquery_reads(&x.subquery, qualifier),
            Expr::SetComparison(x) => subquery_reads(&x.subquery, qualifier),
            _ => false,
        };
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

fn subquery_reads(s: &Subquery, qualifier: &str) -> bool {
    s.outer_ref_columns.iter().any(|e| expr_reads(e, qualifier))
        || plan_reads(&s.subquery, qualifier)
}
