//! Limits on statements, checked while parsing so that no input can exhaust the stack of
//! the planner, the optimizer or the executor (all of which walk expression trees
//! recursively).
//!
//! * SQL text passed in one call is at most [`MAX_SQL_BYTES`] long (SQLite's default
//!   `SQLITE_MAX_SQL_LENGTH`); longer text is refused with `54000`.
//! * Parentheses and subqueries nest at most 50 deep (the parser's recursion limit, `54001`).
//! * An expression tree is at most [`MAX_EXPRESSION_DEPTH`] deep, as in SQLite: the parser
//!   reads `1 + 1 + ... + 1` and `a AND b AND ...` in a loop, but the tree it builds is as
//!   deep as the chain is long. Deeper statements are refused with `54001`, "expression tree
//!   is too large (maximum depth 1000)".

use std::ops::ControlFlow;

use datafusion::sql::parser::{CopyToSource, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{Expr, Query, Visit, Visitor};

use crate::error::{Error, Result, SqlState};

/// The longest SQL text one call parses.
pub const MAX_SQL_BYTES: usize = 1_000_000_000;
/// The deepest expression tree a statement may hold (nested expressions and subqueries).
pub const MAX_EXPRESSION_DEPTH: usize = 1000;

/// Refuses SQL text longer than [`MAX_SQL_BYTES`].
pub(crate) fn check_length(sql: &str) -> Result<()> {
    check_length_within(sql, MAX_SQL_BYTES)
}

fn check_length_within(sql: &str, max: usize) -> Result<()> {
    if sql.len() > max {
        return Err(Error::Limit(
            SqlState::ProgramLimitExceeded,
            format!(
                "statement is too long ({} bytes; the limit is {max} bytes)",
                sql.len()
            ),
        ));
    }
    Ok(())
}

/// Refuses a statement whose expression tree is deeper than [`MAX_EXPRESSION_DEPTH`]. A
/// refused statement is dropped on a thread with a large stack (dropping a deep tree
/// recurses as deep as the tree).
pub(crate) fn check_depth(statement: DfStatement) -> Result<DfStatement> {
    if !too_deep(&statement) {
        return Ok(statement);
    }
    drop_deep(statement);
    Err(too_deep_error())
}

/// Whether a sqlparser statement's expression tree is deeper than the limit.
pub(crate) fn sql_too_deep<T: Visit>(node: &T) -> bool {
    let mut depth = Depth { current: 0 };
    node.visit(&mut depth).is_break()
}

/// Drops a (possibly very deep) value on a thread with a stack large enough for it.
pub(crate) fn drop_deep<T: Send + 'static>(value: T) {
    // The stack is reserved address space: only the pages the drop touches are used.
    let dropper = std::thread::Builder::new()
        .name("phantomdb-drop".into())
        .stack_size(1 << 30)
        .spawn(move || drop(value));
    match dropper {
        Ok(handle) => {
            let _ = handle.join();
        }
        // No thread: leaking the tree is better than overflowing this thread's stack.
        Err(e) => tracing::warn!("cannot start a thread to drop a deep statement: {e}"),
    }
}

fn too_deep(statement: &DfStatement) -> bool {
    match statement {
        DfStatement::Statement(s) => sql_too_deep(s.as_ref()),
        DfStatement::Explain(e) => too_deep(&e.statement),
        DfStatement::CopyTo(c) => match &c.source {
            CopyToSource::Query(q) => sql_too_deep(q.as_ref()),
            CopyToSource::Relation(_) => false,
        },
        DfStatement::CreateExternalTable(_) | DfStatement::Reset(_) => false,
    }
}

fn too_deep_error() -> Error {
    Error::Limit(
        SqlState::StatementTooComplex,
        format!("expression tree is too large (maximum depth {MAX_EXPRESSION_DEPTH})"),
    )
}

/// Counts nesting while the AST is walked; stops (breaks) as soon as it is too deep, so the
/// walk itself never recurses deeper than the limit.
struct Depth {
    current: usize,
}

impl Depth {
    fn enter(&mut self) -> ControlFlow<()> {
        self.current += 1;
        if self.current > MAX_EXPRESSION_DEPTH {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
    fn leave(&mut self) -> ControlFlow<()> {
        self.current = self.current.saturating_sub(1);
        ControlFlow::Continue(())
    }
}

impl Visitor for Depth {
    type Break = ();

    fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.enter()
    }
    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.leave()
    }
    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.enter()
    }
    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.leave()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(terms: usize, op: &str) -> String {
        format!("SELECT {}", vec!["1"; terms].join(op))
    }

    #[test]
    fn long_chains_are_refused_with_54001_and_short_ones_pass() {
        for sql in [chain(20_000, " + "), chain(5_000, " AND ")] {
            let err = crate::sql::parse(&sql).unwrap_err();
            assert_eq!(err.sqlstate(), SqlState::StatementTooComplex, "{err}");
            assert!(err.to_string().contains("maximum depth 1000"), "{err}");
        }
        crate::sql::parse(&chain(900, " + ")).expect("900 terms are fine");
    }

    #[test]
    fn overlong_text_is_refused_with_54000() {
        let err = check_length_within("SELECT 1", 7).unwrap_err();
        assert_eq!(err.sqlstate(), SqlState::ProgramLimitExceeded);
        assert!(err.to_string().contains("the limit is 7 bytes"), "{err}");
        check_length_within("SELECT 1", 8).expect("at the limit");
    }
}
