//! The `phantomdb.functions/1` interface on the host side: reading and checking the plugin's
//! function descriptors into [`FunctionDecl`]s, per-function call counters ([`FunctionStats`]),
//! and the validated scalar and table function calls of [`LoadedPlugin`]. (Aggregate calls go
//! through [`PluginAccumulator`].)

use std::ffi::c_char;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use phantomdb_plugin_abi::{AccumulatorHandle, FunctionDescriptor, FunctionsInterface};

use crate::ffi::{c_str, import_result, ExportedArgs};
use crate::stream::read_stream;
use crate::{CallError, FunctionKind, LoadedPlugin, PluginAccumulator, TypeCode, Volatility};

/// Declaration of one plugin function, decoded from the ABI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionDecl {
    /// Index to pass to the call methods.
    pub index: usize,
    /// SQL name.
    pub name: String,
    /// Description (may be empty).
    pub description: String,
    /// Scalar, aggregate or table.
    pub kind: FunctionKind,
    /// Declared argument types.
    pub arg_types: Vec<DataType>,
    /// Whether the last argument type may repeat.
    pub variadic: bool,
    /// Return type (`None` for table functions: their schema is dynamic).
    pub return_type: Option<DataType>,
    /// Volatility.
    pub volatility: Volatility,
    /// Aggregate state column types (empty otherwise).
    pub state_types: Vec<DataType>,
}

impl FunctionDecl {
    /// Whether `n` arguments match the arity.
    pub fn accepts_arity(&self, n: usize) -> bool {
        if self.variadic {
            n >= self.arg_types.len()
        } else {
            n == self.arg_types.len()
        }
    }

    /// Declared type of argument `i` (the last one repeats for variadic functions).
    pub fn arg_type(&self, i: usize) -> Option<&DataType> {
        match self.arg_types.get(i) {
            Some(t) => Some(t),
            None if self.variadic => self.arg_types.last(),
            None => None,
        }
    }
}

/// Per-function call counters (cheap atomics, updated on every call).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FunctionStats {
    /// Number of calls into the plugin.
    pub calls: u64,
    /// Number of failed calls (plugin error, panic or invalid result).
    pub errors: u64,
    /// Input rows passed.
    pub rows: u64,
    /// Total time spent in the plugin, in nanoseconds.
    pub nanos: u64,
}

/// The live counters behind [`FunctionStats`].
#[derive(Default)]
pub(crate) struct StatCounters {
    calls: AtomicU64,
    errors: AtomicU64,
    rows: AtomicU64,
    nanos: AtomicU64,
}

const MAX_FUNCTIONS: usize = 100_000;
const MAX_ARGS: usize = 1_000;

unsafe fn type_list(p: *const u32, n: usize, what: &str) -> Result<Vec<DataType>, String> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if n > MAX_ARGS {
        return Err(format!("{what}: {n} entries is too many"));
    }
    if p.is_null() {
        return Err(format!("{what} is null"));
    }
    // SAFETY: caller guarantees `n` readable u32s.
    let raw = unsafe { std::slice::from_raw_parts(p, n) };
    raw.iter()
        .map(|v| {
            TypeCode::from_u32(*v)
                .map(TypeCode::to_data_type)
                .ok_or_else(|| format!("{what}: unknown type code {v}"))
        })
        .collect()
}

pub(crate) fn read_functions(iface: &FunctionsInterface) -> Result<Vec<FunctionDecl>, String> {
    let n = iface.num_functions;
    if n == 0 {
        return Ok(Vec::new());
    }
    if n > MAX_FUNCTIONS || iface.functions.is_null() {
        return Err(format!("invalid function table ({n} functions)"));
    }
    // Descriptors form an array whose stride is the descriptors' `struct_size` (so later ABI
    // minor versions can append fields); read the first one's size field (offset 0) to get it.
    // SAFETY: non-null pointer to at least one descriptor.
    let stride = unsafe { (*iface.functions).struct_size };
    if stride < std::mem::size_of::<FunctionDescriptor>()
        || stride % std::mem::align_of::<FunctionDescriptor>() != 0
    {
        return Err(format!(
            "function descriptors are {stride} bytes, expected at least {}",
            std::mem::size_of::<FunctionDescriptor>()
        ));
    }
    let base = iface.functions as *const u8;
    let mut out: Vec<FunctionDecl> = Vec::with_capacity(n);
    for index in 0..n {
        // SAFETY: `functions` points to `num_functions` descriptors laid out with a stride of
        // `stride` bytes (checked above to be at least our size and suitably aligned).
        let d: &FunctionDescriptor =
            unsafe { &*(base.add(index * stride) as *const FunctionDescriptor) };
        if d.struct_size != stride {
            return Err(format!(
                "function #{index}: descriptor is {} bytes, but the first one is {stride}",
                d.struct_size
            ));
        }
        // SAFETY: descriptor strings are NUL-terminated and live forever.
        let name = unsafe { c_str(d.name, "function name") }
            .map_err(|e| format!("function #{index}: {e}"))?;
        // SAFETY: as above.
        let description = unsafe { c_str(d.description, "description") }.unwrap_or_default();
        let ctx = |e: String| format!("function #{index} `{name}`: {e}");
        let kind = FunctionKind::from_u32(d.kind)
            .ok_or_else(|| ctx(format!("unknown function kind {}", d.kind)))?;
        let volatility = Volatility::from_u32(d.volatility)
            .ok_or_else(|| ctx(format!("unknown volatility {}", d.volatility)))?;
        // SAFETY: `num_args` codes at `arg_types`.
        let arg_types =
            unsafe { type_list(d.arg_types, d.num_args, "argument types") }.map_err(ctx)?;
        // SAFETY: `num_state` codes at `state_types`.
        let state_types =
            unsafe { type_list(d.state_types, d.num_state, "state types") }.map_err(ctx)?;
        let return_type = match kind {
            FunctionKind::Table => None,
            _ => Some(
                TypeCode::from_u32(d.return_type)
                    .map(TypeCode::to_data_type)
                    .ok_or_else(|| ctx(format!("unknown return type code {}", d.return_type)))?,
            ),
        };
        if d.variadic != 0 && arg_types.is_empty() {
            return Err(ctx(
                "variadic function declares no argument type".to_string()
            ));
        }
        if kind == FunctionKind::Aggregate && state_types.is_empty() {
            return Err(ctx("aggregate declares no state columns".to_string()));
        }
        if name.is_empty() {
            return Err(format!("function #{index} has an empty name"));
        }
        if out.iter().any(|f| f.name == name) {
            return Err(format!("function name `{name}` is declared twice"));
        }
        out.push(FunctionDecl {
            index,
            name,
            description,
            kind,
            arg_types,
            variadic: d.variadic != 0,
            return_type,
            volatility,
            state_types,
        });
    }
    Ok(out)
}

impl LoadedPlugin {
    /// All declared functions.
    pub fn functions(&self) -> &[FunctionDecl] {
        &self.inner.functions
    }

    /// Finds a function by name.
    pub fn function(&self, name: &str) -> Option<&FunctionDecl> {
        self.inner.functions.iter().find(|f| f.name == name)
    }

    /// Call statistics of function `index`.
    pub fn stats(&self, index: usize) -> Option<FunctionStats> {
        let s = self.inner.stats.get(index)?;
        Some(FunctionStats {
            calls: s.calls.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
            rows: s.rows.load(Ordering::Relaxed),
            nanos: s.nanos.load(Ordering::Relaxed),
        })
    }

    fn decl(
        &self,
        index: usize,
        kind: FunctionKind,
    ) -> Result<(&FunctionDecl, &'static FunctionsInterface), CallError> {
        let no = |reason: String| CallError::NoSuchFunction {
            plugin: self.name().to_string(),
            reason,
        };
        let decl = self
            .inner
            .functions
            .get(index)
            .ok_or_else(|| no(format!("no function #{index}")))?;
        if decl.kind != kind {
            return Err(no(format!(
                "function `{}` is {:?}, not {kind:?}",
                decl.name, decl.kind
            )));
        }
        let iface = self
            .inner
            .functions_iface
            .ok_or_else(|| no("plugin has no functions interface".to_string()))?;
        Ok((decl, iface))
    }

    pub(crate) fn check_args(
        &self,
        decl: &FunctionDecl,
        args: &[ArrayRef],
        num_rows: Option<usize>,
    ) -> Result<(), CallError> {
        let bad = |reason: String| CallError::InvalidArguments {
            plugin: self.name().to_string(),
            function: decl.name.clone(),
            reason,
        };
        if !decl.accepts_arity(args.len()) {
            return Err(bad(format!(
                "got {} arguments, expected {}{}",
                args.len(),
                if decl.variadic { "at least " } else { "" },
                decl.arg_types.len()
            )));
        }
        for (i, a) in args.iter().enumerate() {
            let expected = decl.arg_type(i);
            if expected != Some(a.data_type()) && a.data_type() != &DataType::Null {
                return Err(bad(format!(
                    "argument {} has type {}, expected {} (cast it first)",
                    i + 1,
                    a.data_type(),
                    expected.map(|t| t.to_string()).unwrap_or_default()
                )));
            }
            if let Some(n) = num_rows {
                if a.len() != n {
                    return Err(bad(format!(
                        "argument {} has {} rows, expected {n}",
                        i + 1,
                        a.len()
                    )));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn record<T>(
        &self,
        index: usize,
        rows: usize,
        start: Instant,
        r: &Result<T, CallError>,
    ) {
        if let Some(s) = self.inner.stats.get(index) {
            s.calls.fetch_add(1, Ordering::Relaxed);
            s.rows.fetch_add(rows as u64, Ordering::Relaxed);
            s.nanos
                .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
            if r.is_err() {
                s.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn invalid_result(&self, decl: &FunctionDecl, reason: String) -> CallError {
        CallError::InvalidResult {
            plugin: self.name().to_string(),
            function: decl.name.clone(),
            reason,
        }
    }

    pub(crate) fn export(
        &self,
        decl: &FunctionDecl,
        args: &[ArrayRef],
        merge: bool,
    ) -> Result<ExportedArgs, CallError> {
        let types = |i: usize| {
            if merge {
                decl.state_types.get(i).cloned()
            } else {
                decl.arg_type(i).cloned()
            }
        };
        ExportedArgs::new(args, &types).map_err(|e| CallError::InvalidArguments {
            plugin: self.name().to_string(),
            function: decl.name.clone(),
            reason: format!("cannot export arguments: {e}"),
        })
    }

    /// Calls scalar function `index` on one batch. `args` must match the declared types (cast
    /// `Utf8View`/`LargeUtf8` to `Utf8` etc. first) and each have `num_rows` rows. The result is
    /// validated: `num_rows` rows of the declared return type, valid Arrow data.
    pub fn call_scalar(
        &self,
        index: usize,
        args: &[ArrayRef],
        num_rows: usize,
    ) -> Result<ArrayRef, CallError> {
        let start = Instant::now();
        let r = self.call_scalar_inner(index, args, num_rows);
        self.record(index, num_rows, start, &r);
        r
    }

    fn call_scalar_inner(
        &self,
        index: usize,
        args: &[ArrayRef],
        num_rows: usize,
    ) -> Result<ArrayRef, CallError> {
        let (decl, iface) = self.decl(index, FunctionKind::Scalar)?;
        self.check_args(decl, args, Some(num_rows))?;
        let _guard = self.enter()?;
        let mut exported = self.export(decl, args, false)?;
        let mut out_array = FFI_ArrowArray::empty();
        let mut out_schema = FFI_ArrowSchema::empty();
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the call; argument arrays may be moved out by the
        // plugin (leaving released structs that drop as no-ops).
        let status = unsafe {
            (iface.scalar_invoke)(
                index,
                exported.arrays.as_mut_ptr(),
                exported.schemas.as_ptr(),
                args.len(),
                num_rows,
                &mut out_array,
                &mut out_schema,
                &mut err,
            )
        };
        drop(exported);
        self.check_status(status, err, &decl.name)?;
        import_result(
            out_array,
            &out_schema,
            decl.return_type.as_ref(),
            Some(num_rows),
        )
        .map_err(|reason| self.invalid_result(decl, reason))
    }

    /// Creates an accumulator for aggregate function `index`.
    pub fn create_accumulator(&self, index: usize) -> Result<PluginAccumulator, CallError> {
        let (decl, iface) = self.decl(index, FunctionKind::Aggregate)?;
        let _guard = self.enter()?;
        let mut handle: AccumulatorHandle = std::ptr::null_mut();
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid out slots.
        let status = unsafe { (iface.accumulator_create)(index, &mut handle, &mut err) };
        self.check_status(status, err, &decl.name)?;
        if handle.is_null() {
            return Err(self.invalid_result(decl, "accumulator handle is null".to_string()));
        }
        Ok(PluginAccumulator {
            plugin: self.clone(),
            index,
            handle,
            iface,
        })
    }

    /// Calls table function `index` with literal arguments (each a one-row array of the
    /// declared type). Returns the schema and all batches, each validated.
    pub fn call_table(
        &self,
        index: usize,
        args: &[ArrayRef],
    ) -> Result<(SchemaRef, Vec<RecordBatch>), CallError> {
        let start = Instant::now();
        let r = self.call_table_inner(index, args);
        let rows = r
            .as_ref()
            .map(|(_, b)| b.iter().map(|b| b.num_rows()).sum())
            .unwrap_or(0);
        self.record(index, rows, start, &r);
        r
    }

    fn call_table_inner(
        &self,
        index: usize,
        args: &[ArrayRef],
    ) -> Result<(SchemaRef, Vec<RecordBatch>), CallError> {
        let (decl, iface) = self.decl(index, FunctionKind::Table)?;
        self.check_args(decl, args, Some(1))?;
        let _guard = self.enter()?;
        let mut exported = self.export(decl, args, false)?;
        let mut stream = FFI_ArrowArrayStream::empty();
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid pointers for the call.
        let status = unsafe {
            (iface.table_call)(
                index,
                exported.arrays.as_mut_ptr(),
                exported.schemas.as_ptr(),
                args.len(),
                &mut stream,
                &mut err,
            )
        };
        drop(exported);
        self.check_status(status, err, &decl.name)?;
        read_stream(stream).map_err(|reason| self.invalid_result(decl, reason))
    }
}
