//! [`PluginAccumulator`]: the state of one aggregate function evaluation, living in the
//! plugin (created by [`LoadedPlugin::create_accumulator`], freed in the plugin on drop).
//! Inputs are checked against the declaration and results validated, as for every call.

use std::ffi::c_char;
use std::time::Instant;

use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ArrayRef;
use phantomdb_plugin_abi::{AccumulatorHandle, FunctionsInterface};

use crate::ffi::import_result;
use crate::{CallError, FunctionDecl, LoadedPlugin};

/// An accumulator living in a plugin. Freed in the plugin on drop. `Send + Sync` (mutating
/// methods take `&mut self`, so the plugin sees one thread at a time).
pub struct PluginAccumulator {
    pub(crate) plugin: LoadedPlugin,
    pub(crate) index: usize,
    pub(crate) handle: AccumulatorHandle,
    pub(crate) iface: &'static FunctionsInterface,
}

// SAFETY: the handle is only used through `&mut self` (one thread at a time); the SDK requires
// accumulators to be `Send`.
unsafe impl Send for PluginAccumulator {}
// SAFETY: no `&self` method touches the handle.
unsafe impl Sync for PluginAccumulator {}

impl std::fmt::Debug for PluginAccumulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginAccumulator")
            .field("plugin", &self.plugin.name())
            .field("function", &self.decl().name)
            .finish()
    }
}

impl PluginAccumulator {
    fn decl(&self) -> &FunctionDecl {
        // The index was validated at creation.
        &self.plugin.inner.functions[self.index]
    }

    /// The aggregate's declaration.
    pub fn function(&self) -> &FunctionDecl {
        self.decl()
    }

    fn call_with_arrays(&mut self, arrays: &[ArrayRef], is_merge: bool) -> Result<(), CallError> {
        let plugin = self.plugin.clone();
        let decl = self.decl().clone();
        let num_rows = arrays.first().map(|a| a.len()).unwrap_or(0);
        if is_merge {
            let bad = |reason: String| CallError::InvalidArguments {
                plugin: plugin.name().to_string(),
                function: decl.name.clone(),
                reason,
            };
            if arrays.len() != decl.state_types.len() {
                return Err(bad(format!(
                    "got {} state arrays, expected {}",
                    arrays.len(),
                    decl.state_types.len()
                )));
            }
            for (i, (a, t)) in arrays.iter().zip(&decl.state_types).enumerate() {
                if a.data_type() != t || a.len() != num_rows {
                    return Err(bad(format!(
                        "state column {i} is {} with {} rows, expected {t} with {num_rows} rows",
                        a.data_type(),
                        a.len()
                    )));
                }
            }
        } else {
            plugin.check_args(&decl, arrays, Some(num_rows))?;
        }
        let _guard = plugin.enter()?;
        let mut exported = plugin.export(&decl, arrays, is_merge)?;
        let mut err: *mut c_char = std::ptr::null_mut();
        let f = if is_merge {
            self.iface.accumulator_merge
        } else {
            self.iface.accumulator_update
        };
        // SAFETY: valid handle and pointers for the call.
        let status = unsafe {
            f(
                self.handle,
                exported.arrays.as_mut_ptr(),
                exported.schemas.as_ptr(),
                arrays.len(),
                num_rows,
                &mut err,
            )
        };
        drop(exported);
        plugin.check_status(status, err, &decl.name)
    }

    /// Feeds a batch of argument rows.
    pub fn update(&mut self, args: &[ArrayRef]) -> Result<(), CallError> {
        let start = Instant::now();
        let rows = args.first().map(|a| a.len()).unwrap_or(0);
        let r = self.call_with_arrays(args, false);
        self.plugin.record(self.index, rows, start, &r);
        r
    }

    /// Merges partial states (one array per state column, one row per partial state).
    pub fn merge(&mut self, states: &[ArrayRef]) -> Result<(), CallError> {
        self.call_with_arrays(states, true)
    }

    /// The current state: one one-row array per declared state column.
    pub fn state(&mut self) -> Result<Vec<ArrayRef>, CallError> {
        let plugin = self.plugin.clone();
        let decl = self.decl().clone();
        let _guard = plugin.enter()?;
        let n = decl.state_types.len();
        let mut arrays: Vec<FFI_ArrowArray> = (0..n).map(|_| FFI_ArrowArray::empty()).collect();
        let mut schemas: Vec<FFI_ArrowSchema> = (0..n).map(|_| FFI_ArrowSchema::empty()).collect();
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: `n` output slots.
        let status = unsafe {
            (self.iface.accumulator_state)(
                self.handle,
                arrays.as_mut_ptr(),
                schemas.as_mut_ptr(),
                n,
                &mut err,
            )
        };
        plugin.check_status(status, err, &decl.name)?;
        let mut out = Vec::with_capacity(n);
        for (i, (a, s)) in arrays.into_iter().zip(schemas.iter()).enumerate() {
            let arr = import_result(a, s, decl.state_types.get(i), Some(1))
                .map_err(|r| plugin.invalid_result(&decl, format!("state column {i}: {r}")))?;
            out.push(arr);
        }
        Ok(out)
    }

    /// The final value: a one-row array of the declared return type.
    pub fn evaluate(&mut self) -> Result<ArrayRef, CallError> {
        let plugin = self.plugin.clone();
        let decl = self.decl().clone();
        let _guard = plugin.enter()?;
        let mut out_array = FFI_ArrowArray::empty();
        let mut out_schema = FFI_ArrowSchema::empty();
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid out slots.
        let status = unsafe {
            (self.iface.accumulator_evaluate)(
                self.handle,
                &mut out_array,
                &mut out_schema,
                &mut err,
            )
        };
        plugin.check_status(status, err, &decl.name)?;
        import_result(out_array, &out_schema, decl.return_type.as_ref(), Some(1))
            .map_err(|r| plugin.invalid_result(&decl, r))
    }
}

impl Drop for PluginAccumulator {
    fn drop(&mut self) {
        // SAFETY: the handle came from accumulator_create and is freed exactly once.
        unsafe { (self.iface.accumulator_free)(self.handle) };
    }
}
