//! Plugin-side trampolines of the `phantomdb.query/1` interface: decode the JSON arguments,
//! call the plugin's [`QueryProcessor`]s under `catch_unwind` (see [`crate::runtime::call`])
//! and encode what they return.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use phantomdb_plugin_abi::{
    failure_mode, query_hook, query_stage, OutError, QueryInterface, QueryProcessorDescriptor,
    Status,
};

use crate::plan::{Plan, PLAN_FORM_VERSION};
use crate::query::{FailureMode, QueryEnd, QueryProcessor, Session, Stage};
use crate::runtime::{call, tables, text, write_string, Failure, InterfaceTables};

/// The plugin's processors and the C tables describing them.
pub(crate) struct QueryTables {
    processors: Vec<Arc<dyn QueryProcessor>>,
    _strings: Vec<CString>,
    _descriptors: Vec<QueryProcessorDescriptor>,
    interface: QueryInterface,
}

impl QueryTables {
    /// `None` when the plugin has no processors (then it does not offer the interface).
    pub(crate) fn new(processors: Vec<Arc<dyn QueryProcessor>>) -> Option<Self> {
        if processors.is_empty() {
            return None;
        }
        let c = |s: &str| {
            CString::new(s.replace('\0', "")).unwrap_or_else(|_| CString::from(c"invalid"))
        };
        let mut strings = Vec::new();
        let mut descriptors = Vec::new();
        for p in &processors {
            let name = c(p.name());
            let description = c(p.description());
            let hooks = p.hooks();
            let bits = [
                (hooks.on_statement, query_hook::ON_STATEMENT),
                (hooks.rewrite_analyzed, query_hook::REWRITE_ANALYZED),
                (hooks.rewrite_optimized, query_hook::REWRITE_OPTIMIZED),
                (hooks.on_query_end, query_hook::ON_QUERY_END),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .fold(0, |acc, (_, bit)| acc | bit);
            descriptors.push(QueryProcessorDescriptor {
                struct_size: std::mem::size_of::<QueryProcessorDescriptor>(),
                name: name.as_ptr(),
                description: description.as_ptr(),
                hooks: bits,
                failure_mode: match p.failure_mode() {
                    FailureMode::Fail => failure_mode::FAIL,
                    FailureMode::Skip => failure_mode::SKIP,
                },
                order: p.order(),
            });
            // Moving a CString does not move its heap buffer, so the pointers stay valid.
            strings.push(name);
            strings.push(description);
        }
        let interface = QueryInterface {
            struct_size: std::mem::size_of::<QueryInterface>(),
            num_processors: descriptors.len(),
            processors: descriptors.as_ptr(),
            on_statement,
            rewrite,
            on_query_end,
        };
        Some(Self {
            processors,
            _strings: strings,
            _descriptors: descriptors,
            interface,
        })
    }
}

impl InterfaceTables for QueryTables {
    fn interface_name(&self) -> &'static std::ffi::CStr {
        phantomdb_plugin_abi::QUERY_INTERFACE_V1_C
    }

    fn interface_ptr(&self) -> *const c_void {
        &self.interface as *const QueryInterface as *const c_void
    }
}

fn processor(index: usize) -> Result<&'static Arc<dyn QueryProcessor>, Failure> {
    tables::<QueryTables>("query processors")?
        .processors
        .get(index)
        .ok_or_else(|| Failure::invalid(format!("no query processor #{index}")))
}

fn json<'a, T: serde::Deserialize<'a>>(text: &'a str, what: &str) -> Result<T, Failure> {
    serde_json::from_str(text).map_err(|e| Failure::invalid(format!("bad {what} JSON: {e}")))
}

unsafe extern "C" fn on_statement(
    index: usize,
    sql: *const u8,
    sql_len: usize,
    session_json: *const u8,
    session_len: usize,
    out_reject: *mut *mut c_char,
    out_error: OutError,
) -> Status {
    let work = || {
        let p = processor(index)?;
        // SAFETY: the host passes readable bytes of the given lengths for the call.
        let (sql, session) = unsafe {
            (
                text(sql, sql_len, "statement")?,
                text(session_json, session_len, "session")?,
            )
        };
        let session: Session = json(session, "session")?;
        if let Err(reason) = p.on_statement(sql, &session) {
            // SAFETY: a host slot (checked for null when written).
            unsafe { write_string(out_reject, &reason) };
        }
        Ok(())
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn rewrite(
    index: usize,
    stage: u32,
    plan_json: *const u8,
    plan_len: usize,
    session_json: *const u8,
    session_len: usize,
    out_plan: *mut *mut c_char,
    out_error: OutError,
) -> Status {
    let work = || {
        let p = processor(index)?;
        let stage = match stage {
            query_stage::ANALYZED => Stage::Analyzed,
            query_stage::OPTIMIZED => Stage::Optimized,
            other => return Err(Failure::invalid(format!("unknown stage {other}"))),
        };
        // SAFETY: the host passes readable bytes of the given lengths for the call.
        let (plan, session) = unsafe {
            (
                text(plan_json, plan_len, "plan")?,
                text(session_json, session_len, "session")?,
            )
        };
        let plan: Plan = json(plan, "plan")?;
        if plan.version != PLAN_FORM_VERSION {
            return Err(Failure::invalid(format!(
                "plan form version {} (this plugin reads version {PLAN_FORM_VERSION})",
                plan.version
            )));
        }
        let session: Session = json(session, "session")?;
        if let Some(new) = p.rewrite(stage, plan, &session).map_err(Failure::error)? {
            let text = serde_json::to_string(&new)
                .map_err(|e| Failure::error(format!("cannot encode the plan: {e}")))?;
            if out_plan.is_null() {
                return Err(Failure::invalid("null plan slot"));
            }
            // SAFETY: non-null host slot.
            unsafe { write_string(out_plan, &text) };
        }
        Ok(())
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn on_query_end(
    index: usize,
    event_json: *const u8,
    event_len: usize,
    out_error: OutError,
) -> Status {
    let work = || {
        let p = processor(index)?;
        // SAFETY: the host passes `event_len` readable bytes for the call.
        let event: QueryEnd = json(unsafe { text(event_json, event_len, "event") }?, "event")?;
        p.on_query_end(&event).map_err(Failure::error)
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}
