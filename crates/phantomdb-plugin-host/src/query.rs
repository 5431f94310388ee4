//! Host side of `phantomdb.query/1`: a plugin's query processors, seen through the SDK's safe
//! [`QueryProcessor`] trait, so the core treats every processor the same way.
//!
//! Every call checks the plugin is initialized (and holds its state lock for the call, so a
//! shutdown waits for it). What comes back is checked for shape here: a plan that is not
//! valid plan-form JSON of the current version is an error. Whether the plan makes sense
//! (its references, its output schema) is checked by the core, which converts it back.

use std::ffi::{c_char, CStr};

use phantomdb_plugin_abi::{
    failure_mode, query_hook, query_stage, QueryInterface, QueryProcessorDescriptor,
    QUERY_INTERFACE_V1, QUERY_INTERFACE_V1_C,
};
use phantomdb_plugin_sdk::plan::{Plan, PLAN_FORM_VERSION};
use phantomdb_plugin_sdk::query::{FailureMode, Hooks, QueryEnd, QueryProcessor, Session, Stage};

use crate::ffi::c_str;
use crate::{CallError, LoadedPlugin};

const MAX_PROCESSORS: usize = 1_000;

/// A processor as declared by a plugin.
#[derive(Debug, Clone)]
pub(crate) struct ProcessorDecl {
    name: String,
    description: String,
    hooks: Hooks,
    failure_mode: FailureMode,
    order: i32,
}

/// Reads the plugin's query interface, if it has one.
pub(crate) fn read_interface(
    vtable: &'static phantomdb_plugin_abi::PluginVTable,
) -> Result<(Option<&'static QueryInterface>, Vec<ProcessorDecl>), String> {
    // SAFETY: valid NUL-terminated name; the plugin returns null or a pointer to a static table.
    let ptr = unsafe { (vtable.get_interface)(QUERY_INTERFACE_V1_C.as_ptr()) };
    if ptr.is_null() {
        return Ok((None, Vec::new()));
    }
    // SAFETY: a `QueryInterface` by ABI contract; struct_size is checked before other fields.
    let iface: &'static QueryInterface = unsafe { &*(ptr as *const QueryInterface) };
    if iface.struct_size < std::mem::size_of::<QueryInterface>() {
        return Err(format!(
            "`{QUERY_INTERFACE_V1}` table is {} bytes, expected at least {}",
            iface.struct_size,
            std::mem::size_of::<QueryInterface>()
        ));
    }
    if iface.num_processors > MAX_PROCESSORS
        || (iface.num_processors > 0 && iface.processors.is_null())
    {
        return Err(format!(
            "`{QUERY_INTERFACE_V1}` declares {} processors at an invalid address",
            iface.num_processors
        ));
    }
    let mut processors = Vec::with_capacity(iface.num_processors);
    let mut stride = std::mem::size_of::<QueryProcessorDescriptor>();
    for i in 0..iface.num_processors {
        // SAFETY: `num_processors` descriptors with a common stride (their struct_size).
        let d = unsafe {
            &*((iface.processors as *const u8).add(i * stride) as *const QueryProcessorDescriptor)
        };
        if i == 0 {
            if d.struct_size < std::mem::size_of::<QueryProcessorDescriptor>() {
                return Err("query processor descriptor is too small".to_string());
            }
            stride = d.struct_size;
        }
        // SAFETY: NUL-terminated strings that live forever.
        let name = unsafe { c_str(d.name, "processor name") }?;
        // SAFETY: as above.
        let description = unsafe { c_str(d.description, "processor description") }?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "query processor name `{name}` must be non-empty ASCII letters, digits or _"
            ));
        }
        let known = query_hook::ON_STATEMENT
            | query_hook::REWRITE_ANALYZED
            | query_hook::REWRITE_OPTIMIZED
            | query_hook::ON_QUERY_END;
        if d.hooks & !known != 0 {
            return Err(format!(
                "query processor `{name}` declares unknown hooks {:#x}",
                d.hooks & !known
            ));
        }
        let failure_mode = match d.failure_mode {
            failure_mode::FAIL => FailureMode::Fail,
            failure_mode::SKIP => FailureMode::Skip,
            other => {
                return Err(format!(
                    "query processor `{name}` declares unknown failure mode {other}"
                ))
            }
        };
        processors.push(ProcessorDecl {
            name: name.to_ascii_lowercase(),
            description,
            hooks: Hooks {
                on_statement: d.hooks & query_hook::ON_STATEMENT != 0,
                rewrite_analyzed: d.hooks & query_hook::REWRITE_ANALYZED != 0,
                rewrite_optimized: d.hooks & query_hook::REWRITE_OPTIMIZED != 0,
                on_query_end: d.hooks & query_hook::ON_QUERY_END != 0,
            },
            failure_mode,
            order: d.order,
        });
    }
    Ok((Some(iface), processors))
}

/// A query processor living in a native plugin.
#[derive(Clone)]
pub struct NativeQueryProcessor {
    plugin: LoadedPlugin,
    index: usize,
}

impl std::fmt::Debug for NativeQueryProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeQueryProcessor")
            .field("plugin", &self.plugin.name())
            .field("processor", &self.decl().name)
            .finish()
    }
}

impl NativeQueryProcessor {
    pub(crate) fn new(plugin: LoadedPlugin, index: usize) -> Self {
        Self { plugin, index }
    }

    fn decl(&self) -> &ProcessorDecl {
        &self.plugin.inner.query_processors[self.index]
    }

    fn iface(&self) -> Result<&'static QueryInterface, String> {
        self.plugin.inner.query_iface.ok_or_else(|| {
            CallError::NoSuchFunction {
                plugin: self.plugin.name().to_string(),
                reason: "plugin has no query interface".to_string(),
            }
            .to_string()
        })
    }

    fn function(&self, call: &str) -> String {
        format!("{}.{call}", self.decl().name)
    }

    fn invalid(&self, call: &str, reason: impl Into<String>) -> String {
        CallError::InvalidResult {
            plugin: self.plugin.name().to_string(),
            function: self.function(call),
            reason: reason.into(),
        }
        .to_string()
    }

    /// A plugin-allocated string from an out slot (freed here), if written.
    fn take_string(&self, p: *mut c_char, call: &str) -> Result<Option<String>, String> {
        if p.is_null() {
            return Ok(None);
        }
        // SAFETY: plugin-allocated NUL-terminated string, freed right after.
        let text = unsafe { CStr::from_ptr(p) }.to_str().map(str::to_string);
        // SAFETY: returned to the allocator that produced it.
        unsafe { (self.plugin.inner.vtable.free_string)(p) };
        text.map(Some)
            .map_err(|_| self.invalid(call, "a string it returned is not UTF-8"))
    }

    fn session_json(session: &Session) -> Result<String, String> {
        serde_json::to_string(session).map_err(|e| e.to_string())
    }
}

impl QueryProcessor for NativeQueryProcessor {
    fn name(&self) -> &str {
        &self.decl().name
    }

    fn description(&self) -> &str {
        &self.decl().description
    }

    fn hooks(&self) -> Hooks {
        self.decl().hooks
    }

    fn order(&self) -> i32 {
        self.decl().order
    }

    fn failure_mode(&self) -> FailureMode {
        self.decl().failure_mode
    }

    fn on_statement(&self, sql: &str, session: &Session) -> Result<(), String> {
        let iface = self.iface()?;
        let session = Self::session_json(session)?;
        let _guard = self.plugin.enter().map_err(|e| e.to_string())?;
        let mut reject: *mut c_char = std::ptr::null_mut();
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: the inputs live for the call; the out slots are valid.
        let status = unsafe {
            (iface.on_statement)(
                self.index,
                sql.as_ptr(),
                sql.len(),
                session.as_ptr(),
                session.len(),
                &mut reject,
                &mut err,
            )
        };
        let reject = self.take_string(reject, "on_statement");
        self.plugin
            .check_status(status, err, &self.function("on_statement"))
            .map_err(|e| e.to_string())?;
        match reject? {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }

    fn rewrite(&self, stage: Stage, plan: Plan, session: &Session) -> Result<Option<Plan>, String> {
        let iface = self.iface()?;
        let plan = serde_json::to_string(&plan).map_err(|e| e.to_string())?;
        let session = Self::session_json(session)?;
        let stage = match stage {
            Stage::Analyzed => query_stage::ANALYZED,
            Stage::Optimized => query_stage::OPTIMIZED,
        };
        let _guard = self.plugin.enter().map_err(|e| e.to_string())?;
        let mut out: *mut c_char = std::ptr::null_mut();
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: the inputs live for the call; the out slots are valid.
        let status = unsafe {
            (iface.rewrite)(
                self.index,
                stage,
                plan.as_ptr(),
                plan.len(),
                session.as_ptr(),
                session.len(),
                &mut out,
                &mut err,
            )
        };
        let out = self.take_string(out, "rewrite");
        self.plugin
            .check_status(status, err, &self.function("rewrite"))
            .map_err(|e| e.to_string())?;
        let Some(text) = out? else {
            return Ok(None);
        };
        // The plan handed back as it came (a no-op rewrite): nothing to read.
        if text == plan {
            return Ok(None);
        }
        let plan: Plan = serde_json::from_str(&text)
            .map_err(|e| self.invalid("rewrite", format!("it returned a malformed plan: {e}")))?;
        if plan.version != PLAN_FORM_VERSION {
            return Err(self.invalid(
                "rewrite",
                format!(
                    "it returned plan form version {}, expected {PLAN_FORM_VERSION}",
                    plan.version
                ),
            ));
        }
        Ok(Some(plan))
    }

    fn on_query_end(&self, end: &QueryEnd) -> Result<(), String> {
        let iface = self.iface()?;
        let event = serde_json::to_string(end).map_err(|e| e.to_string())?;
        let _guard = self.plugin.enter().map_err(|e| e.to_string())?;
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: the event lives for the call; the error slot is valid.
        let status =
            unsafe { (iface.on_query_end)(self.index, event.as_ptr(), event.len(), &mut err) };
        self.plugin
            .check_status(status, err, &self.function("on_query_end"))
            .map_err(|e| e.to_string())
    }
}
