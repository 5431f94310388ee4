//! The function interfaces on the host side: reading and checking the plugin's function
//! descriptors into [`FunctionDecl`]s (types from Arrow C schemas through
//! `phantomdb.functions/2`, from type codes through `/1`), per-function call counters ([`FunctionStats`]),
//! and the validated scalar and table function calls of [`LoadedPlugin`]. (Aggregate calls go
//! through [`PluginAccumulator`].)

use std::collections::HashMap;
use std::ffi::c_char;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, SchemaRef};
use phantomdb_plugin_abi::{
    AccumulatorHandle, FunctionDescriptor, FunctionsInterface, CUSTOM_TYPE_METADATA_KEY,
    FUNCTION_DESCRIPTOR_SIZE_1_6,
};

use crate::ffi::{c_str, import_result, ExportedArgs};
use crate::signature_schema::declared_field;
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
    /// Field metadata of each declared argument type (empty maps through
    /// `phantomdb.functions/1`): a custom type's name, an Arrow extension type.
    pub arg_metadata: Vec<FieldMetadata>,
    /// Whether the last argument type may repeat.
    pub variadic: bool,
    /// Return type (`None` for table functions: their schema is dynamic).
    pub return_type: Option<DataType>,
    /// Field metadata of the return type.
    pub return_metadata: FieldMetadata,
    /// Volatility.
    pub volatility: Volatility,
    /// Aggregate state column types (empty otherwise).
    pub state_types: Vec<DataType>,
}

/// Field metadata of a declared type.
pub type FieldMetadata = HashMap<String, String>;

/// The custom type a declared type's metadata names.
fn custom_type(metadata: &FieldMetadata) -> Option<&str> {
    metadata.get(CUSTOM_TYPE_METADATA_KEY).map(String::as_str)
}

impl FunctionDecl {
    /// The custom type argument `i` is declared as (the last one repeats for variadic
    /// functions).
    pub fn arg_custom_type(&self, i: usize) -> Option<&str> {
        let metadata = match self.arg_metadata.get(i) {
            Some(m) => m,
            None if self.variadic => self.arg_metadata.last()?,
            None => return None,
        };
        custom_type(metadata)
    }

    /// The custom type the function returns, if it returns one.
    pub fn return_custom_type(&self) -> Option<&str> {
        custom_type(&self.return_metadata)
    }

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

/// Checks a declared list of `n` entries at `p`: `Ok(false)` when empty, an error when too
/// long or null.
fn check_list<T>(p: *const T, n: usize, what: &str) -> Result<bool, String> {
    if n == 0 {
        return Ok(false);
    }
    if n > MAX_ARGS {
        return Err(format!("{what}: {n} entries is too many"));
    }
    if p.is_null() {
        return Err(format!("{what} is null"));
    }
    Ok(true)
}

unsafe fn type_list(p: *const u32, n: usize, what: &str) -> Result<Vec<DataType>, String> {
    if !check_list(p, n, what)? {
        return Ok(Vec::new());
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

/// A copy of the descriptor at `p`: the fields of the 1.6 layout, and with `full` the schemas
/// of 1.7 (null otherwise: a `/1` descriptor may be shorter than this struct, so no reference
/// to the whole struct is made).
///
/// # Safety
/// `p` points to a descriptor of at least the 1.6 size, or with `full` the 1.7 size.
unsafe fn read_descriptor(p: *const u8, full: bool) -> FunctionDescriptor {
    let p = p as *const FunctionDescriptor;
    // SAFETY: every field read lies inside the descriptor's size (forwarded contract); the
    // fields are plain integers and pointers.
    unsafe {
        use std::ptr::addr_of;
        let null = std::ptr::null();
        FunctionDescriptor {
            struct_size: addr_of!((*p).struct_size).read(),
            name: addr_of!((*p).name).read(),
            description: addr_of!((*p).description).read(),
            kind: addr_of!((*p).kind).read(),
            volatility: addr_of!((*p).volatility).read(),
            arg_types: addr_of!((*p).arg_types).read(),
            num_args: addr_of!((*p).num_args).read(),
            variadic: addr_of!((*p).variadic).read(),
            return_type: addr_of!((*p).return_type).read(),
            state_types: addr_of!((*p).state_types).read(),
            num_state: addr_of!((*p).num_state).read(),
            arg_schemas: if full {
                addr_of!((*p).arg_schemas).read()
            } else {
                null
            },
            return_schema: if full {
                addr_of!((*p).return_schema).read()
            } else {
                null
            },
            state_schemas: if full {
                addr_of!((*p).state_schemas).read()
            } else {
                null
            },
        }
    }
}

/// `n` declared types from an array of Arrow C schemas (see [`declared_field`]).
///
/// # Safety
/// `p` is null or points to `n` schemas that live as long as the plugin.
unsafe fn schema_list(
    p: *const FFI_ArrowSchema,
    n: usize,
    what: &str,
) -> Result<Vec<Field>, String> {
    if !check_list(p, n, what)? {
        return Ok(Vec::new());
    }
    (0..n)
        .map(|i| {
            // SAFETY: `n` schemas at `p`.
            unsafe { declared_field(p.add(i)) }.map_err(|e| format!("{what}: #{i}: {e}"))
        })
        .collect()
}

/// The declared types of one descriptor: (arguments, their metadata, return type and metadata,
/// state types).
type DeclaredTypes = (
    Vec<DataType>,
    Vec<FieldMetadata>,
    Option<(DataType, FieldMetadata)>,
    Vec<DataType>,
);

/// The types of `d` as Arrow C schemas (`phantomdb.functions/2`).
///
/// # Safety
/// `d` is a descriptor of at least the 1.7 size whose pointers follow the ABI.
unsafe fn schema_types(
    d: &FunctionDescriptor,
    kind: FunctionKind,
) -> Result<DeclaredTypes, String> {
    // SAFETY: forwarded contract.
    let args = unsafe { schema_list(d.arg_schemas, d.num_args, "argument types") }?;
    // SAFETY: as above.
    let states = unsafe { schema_list(d.state_schemas, d.num_state, "state types") }?;
    let ret = match kind {
        FunctionKind::Table => None,
        _ if d.return_schema.is_null() => return Err("return type is null".to_string()),
        // SAFETY: non-null schema of the plugin.
        _ => Some(
            unsafe { declared_field(d.return_schema) }.map_err(|e| format!("return type: {e}"))?,
        ),
    };
    Ok((
        args.iter().map(|f| f.data_type().clone()).collect(),
        args.iter().map(|f| f.metadata().clone()).collect(),
        ret.map(|f| (f.data_type().clone(), f.metadata().clone())),
        states.iter().map(|f| f.data_type().clone()).collect(),
    ))
}

/// The types of `d` as type codes (`phantomdb.functions/1`).
///
/// # Safety
/// `d`'s pointers follow the ABI.
unsafe fn coded_types(d: &FunctionDescriptor, kind: FunctionKind) -> Result<DeclaredTypes, String> {
    // SAFETY: `num_args` codes at `arg_types`.
    let args = unsafe { type_list(d.arg_types, d.num_args, "argument types") }?;
    // SAFETY: `num_state` codes at `state_types`.
    let states = unsafe { type_list(d.state_types, d.num_state, "state types") }?;
    let ret = match kind {
        FunctionKind::Table => None,
        _ => Some((
            TypeCode::from_u32(d.return_type)
                .map(TypeCode::to_data_type)
                .ok_or_else(|| format!("unknown return type code {}", d.return_type))?,
            FieldMetadata::new(),
        )),
    };
    let metadata = vec![FieldMetadata::new(); args.len()];
    Ok((args, metadata, ret, states))
}

/// Reads the descriptors of a function interface: with `schemas` (`phantomdb.functions/2`)
/// their types are Arrow C schemas, otherwise (`/1`) type codes.
pub(crate) fn read_functions(
    iface: &FunctionsInterface,
    schemas: bool,
) -> Result<Vec<FunctionDecl>, String> {
    // SAFETY: the interface's descriptors follow the ABI.
    unsafe { read_descriptors(iface.functions, iface.num_functions, schemas) }
}

/// [`read_functions`] over the `n` descriptors at `functions`.
///
/// # Safety
/// `functions` is null or points to `n` descriptors, strided by their `struct_size`, whose
/// pointers follow the ABI.
unsafe fn read_descriptors(
    functions: *const FunctionDescriptor,
    n: usize,
    schemas: bool,
) -> Result<Vec<FunctionDecl>, String> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if n > MAX_FUNCTIONS || functions.is_null() {
        return Err(format!("invalid function table ({n} functions)"));
    }
    // Descriptors form an array whose stride is the descriptors' `struct_size` (so later ABI
    // minor versions can append fields); read the first one's size field (offset 0) to get it.
    // SAFETY: non-null pointer to at least one descriptor.
    let stride = unsafe { (*functions).struct_size };
    let least = if schemas {
        std::mem::size_of::<FunctionDescriptor>()
    } else {
        FUNCTION_DESCRIPTOR_SIZE_1_6
    };
    if stride < least || stride % std::mem::align_of::<FunctionDescriptor>() != 0 {
        return Err(format!(
            "function descriptors are {stride} bytes, expected at least {least}"
        ));
    }
    let base = functions as *const u8;
    let mut out: Vec<FunctionDecl> = Vec::with_capacity(n);
    for index in 0..n {
        // SAFETY: `functions` points to `num_functions` descriptors laid out with a stride of
        // `stride` bytes (checked above to be at least the size read and suitably aligned).
        let d = unsafe { read_descriptor(base.add(index * stride), schemas) };
        let d = &d;
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
        let (arg_types, arg_metadata, ret, state_types) = if schemas {
            // SAFETY: a descriptor of the full size (checked above).
            unsafe { schema_types(d, kind) }
        } else {
            // SAFETY: the descriptor's pointers follow the ABI.
            unsafe { coded_types(d, kind) }
        }
        .map_err(ctx)?;
        let (return_type, return_metadata) = match ret {
            Some((t, m)) => (Some(t), m),
            None => (None, FieldMetadata::new()),
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
            arg_metadata,
            variadic: d.variadic != 0,
            return_type,
            return_metadata,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(t: DataType, metadata: &[(&str, &str)]) -> FFI_ArrowSchema {
        let metadata = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        FFI_ArrowSchema::try_from(Field::new("", t, true).with_metadata(metadata)).expect("schema")
    }

    /// One scalar function whose codes say `(Int64) -> Utf8` and whose schemas say
    /// `(Decimal128(20, 4)) -> uuid`.
    fn descriptor(
        args: &[u32],
        arg_schemas: &[FFI_ArrowSchema],
        ret: *const FFI_ArrowSchema,
    ) -> FunctionDescriptor {
        FunctionDescriptor {
            struct_size: std::mem::size_of::<FunctionDescriptor>(),
            name: c"f".as_ptr(),
            description: c"".as_ptr(),
            kind: FunctionKind::Scalar as u32,
            volatility: Volatility::Immutable as u32,
            arg_types: args.as_ptr(),
            num_args: args.len(),
            variadic: 0,
            return_type: TypeCode::Utf8 as u32,
            state_types: std::ptr::null(),
            num_state: 0,
            arg_schemas: arg_schemas.as_ptr(),
            return_schema: ret,
            state_schemas: std::ptr::null(),
        }
    }

    #[test]
    fn the_interface_name_says_where_types_are_read_from() {
        let codes = [TypeCode::Int64 as u32];
        let args = [schema(DataType::Decimal128(20, 4), &[])];
        let ret = schema(
            DataType::FixedSizeBinary(16),
            &[(CUSTOM_TYPE_METADATA_KEY, "uuid")],
        );
        let d = descriptor(&codes, &args, &ret);
        // SAFETY: one descriptor whose pointers outlive the calls.
        let v2 = unsafe { read_descriptors(&d, 1, true) }.expect("read through /2");
        assert_eq!(v2[0].arg_types, [DataType::Decimal128(20, 4)]);
        assert_eq!(v2[0].return_type, Some(DataType::FixedSizeBinary(16)));
        assert_eq!(v2[0].return_custom_type(), Some("uuid"));
        assert_eq!(v2[0].arg_custom_type(0), None);
        // SAFETY: as above.
        let v1 = unsafe { read_descriptors(&d, 1, false) }.expect("read through /1");
        assert_eq!(v1[0].arg_types, [DataType::Int64]);
        assert_eq!(v1[0].return_type, Some(DataType::Utf8));
        assert_eq!(v1[0].return_custom_type(), None);
    }

    #[test]
    fn bad_schema_signatures_are_refused() {
        let codes = [TypeCode::Int64 as u32];
        let args = [schema(DataType::Int64, &[])];
        // A scalar function without a return schema.
        let d = descriptor(&codes, &args, std::ptr::null());
        // SAFETY: one descriptor whose pointers outlive the call.
        let e = unsafe { read_descriptors(&d, 1, true) }.unwrap_err();
        assert!(e.contains("return type is null"), "{e}");
        // A descriptor of the 1.6 size cannot be read through /2.
        let ret = schema(DataType::Int64, &[]);
        let mut short = descriptor(&codes, &args, &ret);
        short.struct_size = FUNCTION_DESCRIPTOR_SIZE_1_6;
        // SAFETY: as above (the struct is full size; only its size field says otherwise).
        let e = unsafe { read_descriptors(&short, 1, true) }.unwrap_err();
        assert!(e.contains("expected at least"), "{e}");
        // SAFETY: as above.
        assert!(unsafe { read_descriptors(&short, 1, false) }.is_ok());
        // A nested argument type without its child.
        let list = [FFI_ArrowSchema::try_new("+l", vec![], None).expect("schema")];
        let d = descriptor(&codes, &list, &ret);
        // SAFETY: as above.
        let e = unsafe { read_descriptors(&d, 1, true) }.unwrap_err();
        assert!(e.contains("argument types: #0"), "{e}");
    }
}
