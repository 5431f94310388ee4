//! The function interfaces on the plugin side (`phantomdb.functions/2`, and `/1` for older
//! hosts when every type has a code): the descriptor tables built from the registered scalar,
//! aggregate and table functions, and the `extern "C"` trampolines that check arguments and call
//! them under `catch_unwind` (see [`crate::runtime::call`]).

use std::ffi::{c_void, CStr, CString};
use std::panic::catch_unwind;

use arrow_array::ffi::{from_ffi, to_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{make_array, Array, ArrayRef, RecordBatchIterator};
use phantomdb_plugin_abi::{
    AccumulatorHandle, FunctionDescriptor, FunctionKind, FunctionsInterface, OutError, Status,
    TypeCode, FUNCTIONS_INTERFACE_V1_C, FUNCTIONS_INTERFACE_V2_C,
};

use crate::runtime::{call, host_log, tables, Failure, InterfaceTables};
use crate::{
    Accumulator, AggregateFunction, Literal, Registrar, ScalarFunction, Signature, TableFunction,
    ValueType,
};

enum Func {
    Scalar(Box<dyn ScalarFunction>),
    Aggregate(Box<dyn AggregateFunction>),
    Table(Box<dyn TableFunction>),
}

struct FuncEntry {
    func: Func,
    signature: Signature,
    state_types: Vec<ValueType>,
}

impl FuncEntry {
    fn name_and_kind(&self) -> (&str, &str, FunctionKind) {
        match &self.func {
            Func::Scalar(f) => (f.name(), f.description(), FunctionKind::Scalar),
            Func::Aggregate(f) => (f.name(), f.description(), FunctionKind::Aggregate),
            Func::Table(f) => (f.name(), f.description(), FunctionKind::Table),
        }
    }
}

/// The registered functions and the C tables describing them.
pub(crate) struct FunctionTables {
    functions: Vec<FuncEntry>,
    /// Whether every type has a `phantomdb.functions/1` code (then `/1` is answered too).
    coded: bool,
    // Owned storage the descriptors point into (never mutated after construction; moving a
    // `Vec`, `Box` or `CString` does not move its heap buffer).
    _strings: Vec<CString>,
    _codes: Vec<Vec<u32>>,
    _schemas: Vec<Vec<FFI_ArrowSchema>>,
    _descriptors: Vec<FunctionDescriptor>,
    interface: FunctionsInterface,
}

// SAFETY: the raw pointers in the descriptors and the interface point to immutable data owned by
// the tables; the function objects are `Send + Sync`.
unsafe impl Send for FunctionTables {}
// SAFETY: see above.
unsafe impl Sync for FunctionTables {}

/// `t` as an Arrow C schema (a type Arrow cannot export is logged and declared with an empty
/// format, which the host refuses naming the function).
fn schema_of(t: &ValueType, function: &str) -> FFI_ArrowSchema {
    FFI_ArrowSchema::try_from(t.field("")).unwrap_or_else(|e| {
        host_log(
            phantomdb_plugin_abi::log_level::ERROR,
            &format!("function {function}: cannot declare type {t}: {e}"),
        );
        FFI_ArrowSchema::empty()
    })
}

fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_else(|_| CString::from(c"invalid"))
}

impl FunctionTables {
    /// The tables of the registered functions, `None` when there are none.
    pub(crate) fn new(registered: &mut Registrar) -> Option<Self> {
        let mut functions = Vec::new();
        for f in registered.scalar.drain(..) {
            let signature = f.signature();
            functions.push(FuncEntry {
                func: Func::Scalar(f),
                signature,
                state_types: Vec::new(),
            });
        }
        for f in registered.aggregate.drain(..) {
            let signature = f.signature();
            let state_types = f.state_types();
            functions.push(FuncEntry {
                func: Func::Aggregate(f),
                signature,
                state_types,
            });
        }
        for f in registered.table.drain(..) {
            let signature = f.signature();
            functions.push(FuncEntry {
                func: Func::Table(f),
                signature,
                state_types: Vec::new(),
            });
        }
        if functions.is_empty() {
            return None;
        }

        let mut strings = Vec::new();
        let mut codes: Vec<Vec<u32>> = Vec::new();
        let mut schemas: Vec<Vec<FFI_ArrowSchema>> = Vec::new();
        let mut descriptors = Vec::with_capacity(functions.len());
        let mut coded = true;
        for e in &functions {
            let (name, description, kind) = e.name_and_kind();
            let table = kind == FunctionKind::Table;
            let mut code = |t: &ValueType| match t.code() {
                Some(c) => c as u32,
                None => {
                    coded = false;
                    TypeCode::Null as u32
                }
            };
            let arg_codes: Vec<u32> = e.signature.args.iter().map(&mut code).collect();
            let state_codes: Vec<u32> = e.state_types.iter().map(&mut code).collect();
            let return_code = if table {
                TypeCode::Null as u32
            } else {
                code(&e.signature.return_type)
            };
            let arg_schemas: Vec<FFI_ArrowSchema> = e
                .signature
                .args
                .iter()
                .map(|t| schema_of(t, name))
                .collect();
            let state_schemas: Vec<FFI_ArrowSchema> =
                e.state_types.iter().map(|t| schema_of(t, name)).collect();
            let return_schema: Vec<FFI_ArrowSchema> = if table {
                Vec::new()
            } else {
                vec![schema_of(&e.signature.return_type, name)]
            };
            let (name, description) = (c_string(name), c_string(description));
            descriptors.push(FunctionDescriptor {
                struct_size: std::mem::size_of::<FunctionDescriptor>(),
                name: name.as_ptr(),
                description: description.as_ptr(),
                kind: kind as u32,
                volatility: e.signature.volatility as u32,
                arg_types: arg_codes.as_ptr(),
                num_args: arg_codes.len(),
                variadic: u8::from(e.signature.variadic),
                return_type: return_code,
                state_types: state_codes.as_ptr(),
                num_state: state_codes.len(),
                arg_schemas: arg_schemas.as_ptr(),
                return_schema: return_schema
                    .first()
                    .map_or(std::ptr::null(), |s| s as *const _),
                state_schemas: state_schemas.as_ptr(),
            });
            strings.extend([name, description]);
            codes.extend([arg_codes, state_codes]);
            schemas.extend([arg_schemas, return_schema, state_schemas]);
        }
        let interface = FunctionsInterface {
            struct_size: std::mem::size_of::<FunctionsInterface>(),
            num_functions: descriptors.len(),
            functions: descriptors.as_ptr(),
            scalar_invoke,
            accumulator_create,
            accumulator_update,
            accumulator_merge,
            accumulator_state,
            accumulator_evaluate,
            accumulator_free,
            table_call,
        };
        Some(Self {
            functions,
            coded,
            _strings: strings,
            _codes: codes,
            _schemas: schemas,
            _descriptors: descriptors,
            interface,
        })
    }
}

impl InterfaceTables for FunctionTables {
    fn interface_name(&self) -> &'static CStr {
        FUNCTIONS_INTERFACE_V2_C
    }

    fn answers(&self, name: &CStr) -> bool {
        name == FUNCTIONS_INTERFACE_V2_C || (self.coded && name == FUNCTIONS_INTERFACE_V1_C)
    }

    fn interface_ptr(&self) -> *const c_void {
        &self.interface as *const FunctionsInterface as *const c_void
    }
}

/// Function `fn_index` of the initialized plugin.
fn function_at(fn_index: usize) -> Result<&'static FuncEntry, Failure> {
    let functions = &tables::<FunctionTables>("functions")?.functions;
    functions.get(fn_index).ok_or_else(|| {
        Failure::invalid(format!(
            "function index {fn_index} out of range (plugin has {} functions)",
            functions.len()
        ))
    })
}

/// Takes ownership of `nargs` argument arrays and checks them against `signature`.
unsafe fn import_arrays(
    args: *mut FFI_ArrowArray,
    schemas: *const FFI_ArrowSchema,
    nargs: usize,
    num_rows: Option<usize>,
) -> Result<Vec<ArrayRef>, Failure> {
    if nargs == 0 {
        return Ok(Vec::new());
    }
    if args.is_null() || schemas.is_null() {
        return Err(Failure::invalid("null argument array pointer"));
    }
    let mut out = Vec::with_capacity(nargs);
    for i in 0..nargs {
        // SAFETY: the host passes `nargs` valid arrays and schemas; we move each array out.
        let array = unsafe { FFI_ArrowArray::from_raw(args.add(i)) };
        // SAFETY: as above.
        let schema = unsafe { &*schemas.add(i) };
        // SAFETY: the host exported valid Arrow C data.
        let data = unsafe { from_ffi(array, schema) }
            .map_err(|e| Failure::invalid(format!("cannot import argument {i}: {e}")))?;
        if let Some(n) = num_rows {
            if data.len() != n {
                return Err(Failure::invalid(format!(
                    "argument {i} has {} rows, expected {n}",
                    data.len()
                )));
            }
        }
        out.push(make_array(data));
    }
    Ok(out)
}

fn check_types(signature: &Signature, args: &[ArrayRef], what: &str) -> Result<(), Failure> {
    if !signature.accepts_arity(args.len()) {
        return Err(Failure::invalid(format!(
            "{what}: wrong number of arguments: got {}, expected {}{}",
            args.len(),
            if signature.variadic { "at least " } else { "" },
            signature.args.len()
        )));
    }
    for (i, a) in args.iter().enumerate() {
        let expected = signature.arg_type(i).map(|t| &t.data_type);
        if expected != Some(a.data_type()) {
            return Err(Failure::invalid(format!(
                "{what}: argument {i} has type {}, expected {}",
                a.data_type(),
                expected.map(|t| t.to_string()).unwrap_or_default()
            )));
        }
    }
    Ok(())
}

fn check_state_types(types: &[ValueType], states: &[ArrayRef]) -> Result<(), Failure> {
    if types.len() != states.len() {
        return Err(Failure::invalid(format!(
            "got {} state arrays, expected {}",
            states.len(),
            types.len()
        )));
    }
    for (i, (t, a)) in types.iter().zip(states).enumerate() {
        if &t.data_type != a.data_type() {
            return Err(Failure::invalid(format!(
                "state column {i} has type {}, expected {}",
                a.data_type(),
                t.data_type
            )));
        }
    }
    Ok(())
}

unsafe fn export_array(
    array: &ArrayRef,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
) -> Result<(), Failure> {
    if out_array.is_null() || out_schema.is_null() {
        return Err(Failure::invalid("null output pointer"));
    }
    let (a, s) = to_ffi(&array.to_data())
        .map_err(|e| Failure::error(format!("cannot export result: {e}")))?;
    // SAFETY: non-null, host-provided output slots; `write` does not drop the (empty) previous value.
    unsafe {
        std::ptr::write(out_array, a);
        std::ptr::write(out_schema, s);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Function trampolines
// ---------------------------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn scalar_invoke(
    fn_index: usize,
    args: *mut FFI_ArrowArray,
    arg_schemas: *const FFI_ArrowSchema,
    nargs: usize,
    num_rows: usize,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
    out_error: OutError,
) -> Status {
    let work = || {
        let e = function_at(fn_index)?;
        let Func::Scalar(f) = &e.func else {
            return Err(Failure::invalid(format!(
                "function {fn_index} is not scalar"
            )));
        };
        // SAFETY: the host passes `nargs` valid arrays/schemas.
        let args = unsafe { import_arrays(args, arg_schemas, nargs, Some(num_rows)) }?;
        check_types(&e.signature, &args, f.name())?;
        let result = f.invoke(&args, num_rows).map_err(Failure::error)?;
        // SAFETY: host-provided output slots.
        unsafe { export_array(&result, out_array, out_schema) }
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

struct AccState {
    acc: Box<dyn Accumulator>,
    fn_index: usize,
}

unsafe fn acc_from_handle<'a>(handle: AccumulatorHandle) -> Result<&'a mut AccState, Failure> {
    if handle.is_null() {
        return Err(Failure::invalid("null accumulator handle"));
    }
    // SAFETY: handles come from `accumulator_create`; the host uses each from one thread at a time.
    Ok(unsafe { &mut *(handle as *mut AccState) })
}

unsafe extern "C" fn accumulator_create(
    fn_index: usize,
    out_handle: *mut AccumulatorHandle,
    out_error: OutError,
) -> Status {
    let work = || {
        let e = function_at(fn_index)?;
        let Func::Aggregate(f) = &e.func else {
            return Err(Failure::invalid(format!(
                "function {fn_index} is not an aggregate"
            )));
        };
        if out_handle.is_null() {
            return Err(Failure::invalid("null output handle pointer"));
        }
        let acc = f.create_accumulator().map_err(Failure::error)?;
        let state = Box::new(AccState { acc, fn_index });
        // SAFETY: non-null host-provided slot.
        unsafe { *out_handle = Box::into_raw(state) as AccumulatorHandle };
        Ok(())
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn accumulator_update(
    handle: AccumulatorHandle,
    args: *mut FFI_ArrowArray,
    arg_schemas: *const FFI_ArrowSchema,
    nargs: usize,
    num_rows: usize,
    out_error: OutError,
) -> Status {
    let work = || {
        // SAFETY: handle from accumulator_create, used by one thread at a time.
        let st = unsafe { acc_from_handle(handle) }?;
        let e = function_at(st.fn_index)?;
        // SAFETY: the host passes `nargs` valid arrays/schemas.
        let args = unsafe { import_arrays(args, arg_schemas, nargs, Some(num_rows)) }?;
        check_types(&e.signature, &args, "accumulator update")?;
        st.acc.update(&args).map_err(Failure::error)
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn accumulator_merge(
    handle: AccumulatorHandle,
    states: *mut FFI_ArrowArray,
    state_schemas: *const FFI_ArrowSchema,
    nstates: usize,
    num_rows: usize,
    out_error: OutError,
) -> Status {
    let work = || {
        // SAFETY: handle from accumulator_create, used by one thread at a time.
        let st = unsafe { acc_from_handle(handle) }?;
        let e = function_at(st.fn_index)?;
        // SAFETY: the host passes `nstates` valid arrays/schemas.
        let states = unsafe { import_arrays(states, state_schemas, nstates, Some(num_rows)) }?;
        check_state_types(&e.state_types, &states)?;
        st.acc.merge(&states).map_err(Failure::error)
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn accumulator_state(
    handle: AccumulatorHandle,
    out_arrays: *mut FFI_ArrowArray,
    out_schemas: *mut FFI_ArrowSchema,
    nstates: usize,
    out_error: OutError,
) -> Status {
    let work = || {
        // SAFETY: handle from accumulator_create, used by one thread at a time.
        let st = unsafe { acc_from_handle(handle) }?;
        let e = function_at(st.fn_index)?;
        if nstates != e.state_types.len() {
            return Err(Failure::invalid(format!(
                "host asked for {nstates} state columns, function declares {}",
                e.state_types.len()
            )));
        }
        let state = st.acc.state().map_err(Failure::error)?;
        if state.len() != nstates {
            return Err(Failure::error(format!(
                "accumulator returned {} state columns, declared {nstates}",
                state.len()
            )));
        }
        for (i, a) in state.iter().enumerate() {
            if out_arrays.is_null() || out_schemas.is_null() {
                return Err(Failure::invalid("null output pointer"));
            }
            // SAFETY: the host provides `nstates` output slots.
            unsafe { export_array(a, out_arrays.add(i), out_schemas.add(i)) }?;
        }
        Ok(())
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn accumulator_evaluate(
    handle: AccumulatorHandle,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
    out_error: OutError,
) -> Status {
    let work = || {
        tables::<FunctionTables>("functions")?;
        // SAFETY: handle from accumulator_create, used by one thread at a time.
        let st = unsafe { acc_from_handle(handle) }?;
        let value = st.acc.evaluate().map_err(Failure::error)?;
        // SAFETY: host-provided output slots.
        unsafe { export_array(&value, out_array, out_schema) }
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn accumulator_free(handle: AccumulatorHandle) {
    if handle.is_null() {
        return;
    }
    // SAFETY: the handle came from `accumulator_create` and is freed once.
    let _ = catch_unwind(|| drop(unsafe { Box::from_raw(handle as *mut AccState) }));
}

unsafe extern "C" fn table_call(
    fn_index: usize,
    args: *mut FFI_ArrowArray,
    arg_schemas: *const FFI_ArrowSchema,
    nargs: usize,
    out_stream: *mut FFI_ArrowArrayStream,
    out_error: OutError,
) -> Status {
    let work = || {
        let e = function_at(fn_index)?;
        let Func::Table(f) = &e.func else {
            return Err(Failure::invalid(format!(
                "function {fn_index} is not a table function"
            )));
        };
        if out_stream.is_null() {
            return Err(Failure::invalid("null output stream pointer"));
        }
        // SAFETY: the host passes `nargs` valid arrays/schemas.
        let args = unsafe { import_arrays(args, arg_schemas, nargs, None) }?;
        check_types(&e.signature, &args, f.name())?;
        let literals = args
            .iter()
            .map(|a| Literal::from_array(a.as_ref(), 0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::invalid)?;
        let (schema, batches) = f.call(&literals).map_err(Failure::error)?;
        let reader = RecordBatchIterator::new(batches.into_iter().map(Ok), schema);
        // SAFETY: non-null host-provided slot; `write` does not drop the empty old value.
        unsafe { std::ptr::write(out_stream, FFI_ArrowArrayStream::new(Box::new(reader))) };
        Ok(())
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}
