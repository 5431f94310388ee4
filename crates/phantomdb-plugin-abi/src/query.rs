//! The `phantomdb.query/1` interface ([`QueryInterface`]), since ABI 1.4: query processors.
//!
//! A processor is called for every statement of the database it is loaded into: before
//! planning ([`QueryInterface::on_statement`]), with the statement's plan
//! ([`QueryInterface::rewrite`], at the stages it declares) and when the statement ends
//! ([`QueryInterface::on_query_end`]). Plans cross as JSON in the plan form (documented in the
//! SDK's `plan` module and `docs/design.md`), never as the host planner's structures; the
//! session and the end-of-statement event cross as JSON objects too, so they can grow without
//! a new ABI version.

use std::ffi::{c_char, CStr};

use crate::{OutError, Status};
// Only named in documentation links.
#[cfg(doc)]
use crate::PluginVTable;

/// Name of the query processor interface ([`QueryInterface`]), since ABI 1.4.
pub const QUERY_INTERFACE_V1: &str = "phantomdb.query/1";
/// Same as [`QUERY_INTERFACE_V1`], NUL-terminated for `get_interface`.
pub const QUERY_INTERFACE_V1_C: &CStr = c"phantomdb.query/1";

/// Hook bits of [`QueryProcessorDescriptor::hooks`].
pub mod query_hook {
    /// `on_statement` is implemented.
    pub const ON_STATEMENT: u32 = 1;
    /// `rewrite` at stage `analyzed` (before the optimizer).
    pub const REWRITE_ANALYZED: u32 = 2;
    /// `rewrite` at stage `optimized` (after the optimizer).
    pub const REWRITE_OPTIMIZED: u32 = 4;
    /// `on_query_end` is implemented.
    pub const ON_QUERY_END: u32 = 8;
}

/// Stages of [`QueryInterface::rewrite`].
pub mod query_stage {
    /// Before the optimizer.
    pub const ANALYZED: u32 = 1;
    /// After the optimizer.
    pub const OPTIMIZED: u32 = 2;
}

/// Values of [`QueryProcessorDescriptor::failure_mode`].
pub mod failure_mode {
    /// A failing processor fails the statement.
    pub const FAIL: u32 = 1;
    /// A failing processor is skipped (the statement runs unrewritten; a warning is logged).
    pub const SKIP: u32 = 2;
}

/// One query processor of a plugin. Strings live as long as the plugin (forever).
#[repr(C)]
#[derive(Debug)]
pub struct QueryProcessorDescriptor {
    /// `size_of::<QueryProcessorDescriptor>()` in the plugin's ABI version.
    pub struct_size: usize,
    /// Processor name (lower case), NUL-terminated.
    pub name: *const c_char,
    /// One-line description, NUL-terminated.
    pub description: *const c_char,
    /// [`query_hook`] bits.
    pub hooks: u32,
    /// A [`failure_mode`] value.
    pub failure_mode: u32,
    /// Position among processors (ascending; ties by name).
    pub order: i32,
}

/// The `phantomdb.query/1` interface. Append-only. `processor` arguments index `processors`.
/// Every input is borrowed for the call (UTF-8, not NUL-terminated); strings the plugin writes
/// are allocated by the plugin and released by the host with [`PluginVTable::free_string`].
#[repr(C)]
#[derive(Debug)]
pub struct QueryInterface {
    /// `size_of::<QueryInterface>()` in the plugin's ABI version.
    pub struct_size: usize,
    /// Number of entries in `processors`.
    pub num_processors: usize,
    /// Processor descriptors; stride is their `struct_size`.
    pub processors: *const QueryProcessorDescriptor,
    /// Inspects a statement before planning. `session_json` is the session (user, database,
    /// superuser, settings). To reject the statement, return [`Status::OK`] and write the reason
    /// into `out_reject` (the host fails the statement with SQLSTATE 42501).
    pub on_statement: unsafe extern "C" fn(
        processor: usize,
        sql: *const u8,
        sql_len: usize,
        session_json: *const u8,
        session_len: usize,
        out_reject: *mut *mut c_char,
        out_error: OutError,
    ) -> Status,
    /// Rewrites a plan (plan form JSON) at `stage` ([`query_stage`]). On [`Status::OK`],
    /// `out_plan` is the new plan (plan form JSON) or stays null for "unchanged".
    pub rewrite: unsafe extern "C" fn(
        processor: usize,
        stage: u32,
        plan_json: *const u8,
        plan_len: usize,
        session_json: *const u8,
        session_len: usize,
        out_plan: *mut *mut c_char,
        out_error: OutError,
    ) -> Status,
    /// A statement ended: `event_json` holds its text, session, start, duration, rows and
    /// error (SQLSTATE and message).
    pub on_query_end: unsafe extern "C" fn(
        processor: usize,
        event_json: *const u8,
        event_len: usize,
        out_error: OutError,
    ) -> Status,
}
