//! Query processors: the SDK side of `phantomdb.query/1` (ABI 1.4).
//!
//! A processor sees every statement of every session of the database it is loaded into:
//! * [`QueryProcessor::on_statement`] before planning (reject a statement: firewalls);
//! * [`QueryProcessor::rewrite`] with the statement's plan in the plan form ([`crate::plan`]),
//!   at stage [`Stage::Analyzed`] (before the host's optimizer, so its pushdown still applies
//!   to what the processor adds) and/or [`Stage::Optimized`] (after it);
//! * [`QueryProcessor::on_query_end`] when the statement ends, also when it failed to parse
//!   or plan (auditing, statistics).
//!
//! Processors run in ascending [`QueryProcessor::order`] (then by name). What happens when one
//! fails (an error, a panic, a plan the host refuses) is its [`FailureMode`].
//!
//! ```
//! use phantomdb_plugin_sdk::plan::{Expr, Plan, PlanNode};
//! use phantomdb_plugin_sdk::query::{Hooks, QueryProcessor, Session, Stage};
//!
//! /// Hides rows of `secrets` whose `visible` column is false.
//! struct HideSecrets;
//!
//! impl QueryProcessor for HideSecrets {
//!     fn name(&self) -> &str {
//!         "hide_secrets"
//!     }
//!     fn hooks(&self) -> Hooks {
//!         Hooks { rewrite_analyzed: true, ..Hooks::default() }
//!     }
//!     fn rewrite(&self, _: Stage, plan: Plan, _: &Session) -> Result<Option<Plan>, String> {
//!         let root = plan.root.transform_up(&mut |node| {
//!             Ok::<_, String>(match node {
//!                 PlanNode::Scan { ref table, .. } if table == "secrets" => PlanNode::Filter {
//!                     predicate: Expr::sql("visible"),
//!                     input: Box::new(node),
//!                     schema: Vec::new(),
//!                 },
//!                 other => other,
//!             })
//!         })?;
//!         Ok(Some(Plan { version: plan.version, root }))
//!     }
//! }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::plan::Plan;

/// When a rewrite runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// After name resolution and type checking, before the optimizer.
    Analyzed,
    /// After the optimizer.
    Optimized,
}

/// What happens when a processor fails (errors, panics, returns a plan the host refuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// The statement fails (security processors must use this).
    #[default]
    Fail,
    /// The statement runs as if the processor were not there; a warning is logged.
    Skip,
}

/// Which hooks a processor implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hooks {
    /// [`QueryProcessor::on_statement`].
    pub on_statement: bool,
    /// [`QueryProcessor::rewrite`] at [`Stage::Analyzed`].
    pub rewrite_analyzed: bool,
    /// [`QueryProcessor::rewrite`] at [`Stage::Optimized`].
    pub rewrite_optimized: bool,
    /// [`QueryProcessor::on_query_end`].
    pub on_query_end: bool,
}

/// The session a statement runs in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// `current_user`.
    pub user: String,
    /// The database (`current_database()`).
    pub database: String,
    /// Whether the user is a superuser (the database's owner: the embedded API and the shell
    /// run as one).
    pub superuser: bool,
    /// The session's settings that were `SET` (`app.tenant`, ...).
    pub settings: BTreeMap<String, String>,
}

/// A statement that ended, for [`QueryProcessor::on_query_end`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryEnd {
    /// The statement's text.
    pub sql: String,
    /// The session it ran in.
    pub session: Session,
    /// When it started, in microseconds since the Unix epoch.
    pub started_at_us: u64,
    /// How long it ran, in microseconds.
    pub duration_us: u64,
    /// Rows returned or changed (`None` when it failed).
    pub rows: Option<u64>,
    /// The error, when it failed.
    pub error: Option<QueryError>,
}

/// Why a statement failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryError {
    /// SQLSTATE, e.g. `42601`.
    pub sqlstate: String,
    /// Message.
    pub message: String,
}

/// A query processor. Called concurrently from many sessions.
pub trait QueryProcessor: Send + Sync + 'static {
    /// Its name (lower case), as `phantomdb_query_processors()` lists it.
    fn name(&self) -> &str;

    /// One-line description.
    fn description(&self) -> &str {
        ""
    }

    /// The hooks it implements.
    fn hooks(&self) -> Hooks;

    /// Where it runs among processors (ascending; ties by name).
    fn order(&self) -> i32 {
        0
    }

    /// What happens when it fails.
    fn failure_mode(&self) -> FailureMode {
        FailureMode::Fail
    }

    /// Inspects a statement before planning. `Err(reason)` rejects it (SQLSTATE 42501).
    fn on_statement(&self, _sql: &str, _session: &Session) -> Result<(), String> {
        Ok(())
    }

    /// Rewrites a plan; `Ok(None)` leaves it as it is. An `Err` is a failure (see
    /// [`FailureMode`]).
    fn rewrite(
        &self,
        _stage: Stage,
        _plan: Plan,
        _session: &Session,
    ) -> Result<Option<Plan>, String> {
        Ok(None)
    }

    /// A statement ended (succeeded or failed, including a parse error).
    fn on_query_end(&self, _end: &QueryEnd) -> Result<(), String> {
        Ok(())
    }
}
