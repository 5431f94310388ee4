//! Plugin-side trampolines of the `phantomdb.types/1` interface: import the host's array,
//! call the plugin's [`CustomType`] under `catch_unwind` (see [`crate::runtime::call`]) and
//! export what it returns.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use arrow_array::ffi::{from_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::{make_array, Array, ArrayRef};
use arrow_schema::DataType;
use phantomdb_plugin_abi::{
    cast_context, cast_direction, type_ordering, CastDescriptor, OutError, Status, TypeDescriptor,
    TypesInterface,
};

use crate::data_type::{Cast, CastContext, CastDirection, CustomType, TypeError, TypeOrdering};
use crate::runtime::{call, tables, Failure, InterfaceTables};

/// The plugin's types and the C tables describing them.
pub(crate) struct TypeTables {
    types: Vec<Arc<dyn CustomType>>,
    /// Per type, the casts it declared (asked once).
    casts: Vec<Vec<Cast>>,
    _strings: Vec<CString>,
    _alias_lists: Vec<Vec<*const c_char>>,
    _cast_lists: Vec<Vec<CastDescriptor>>,
    _descriptors: Vec<TypeDescriptor>,
    interface: TypesInterface,
}

impl TypeTables {
    /// `None` when the plugin has no types (then it does not offer the interface).
    pub(crate) fn new(types: Vec<Arc<dyn CustomType>>) -> Option<Self> {
        if types.is_empty() {
            return None;
        }
        let c = |s: &str| {
            CString::new(s.replace('\0', "")).unwrap_or_else(|_| CString::from(c"invalid"))
        };
        let mut strings = Vec::new();
        let mut alias_lists = Vec::new();
        let mut cast_lists = Vec::new();
        let mut casts = Vec::new();
        let mut descriptors = Vec::new();
        for t in &types {
            let name = c(t.name());
            let description = c(t.description());
            let format = format_of(&t.storage_type(), &c);
            let aliases: Vec<CString> = t.aliases().iter().map(|a| c(a)).collect();
            let alias_ptrs: Vec<*const c_char> = aliases.iter().map(|a| a.as_ptr()).collect();
            let declared = t.casts();
            let mut cast_descriptors = Vec::with_capacity(declared.len());
            for cast in &declared {
                let other = format_of(&cast.other, &c);
                cast_descriptors.push(CastDescriptor {
                    struct_size: std::mem::size_of::<CastDescriptor>(),
                    direction: match cast.direction {
                        CastDirection::IntoType => cast_direction::INTO_TYPE,
                        CastDirection::FromType => cast_direction::FROM_TYPE,
                    },
                    context: match cast.context {
                        CastContext::Explicit => cast_context::EXPLICIT,
                        CastContext::Assignment => cast_context::ASSIGNMENT,
                    },
                    other_format: other.as_ptr(),
                });
                strings.push(other);
            }
            descriptors.push(TypeDescriptor {
                struct_size: std::mem::size_of::<TypeDescriptor>(),
                name: name.as_ptr(),
                description: description.as_ptr(),
                aliases: alias_ptrs.as_ptr(),
                num_aliases: alias_ptrs.len(),
                storage_format: format.as_ptr(),
                ordering: match t.ordering() {
                    TypeOrdering::Storage => type_ordering::STORAGE,
                    TypeOrdering::SortKey => type_ordering::SORT_KEY,
                },
                casts: if cast_descriptors.is_empty() {
                    std::ptr::null()
                } else {
                    cast_descriptors.as_ptr()
                },
                num_casts: cast_descriptors.len(),
            });
            cast_lists.push(cast_descriptors);
            casts.push(declared);
            // Moving a CString or Vec does not move its heap buffer: the pointers stay valid.
            strings.extend([name, description, format]);
            strings.extend(aliases);
            alias_lists.push(alias_ptrs);
        }
        let interface = TypesInterface {
            struct_size: std::mem::size_of::<TypesInterface>(),
            num_types: descriptors.len(),
            types: descriptors.as_ptr(),
            parse,
            format,
            sort_key,
            cast: Some(cast),
        };
        Some(Self {
            types,
            casts,
            _strings: strings,
            _alias_lists: alias_lists,
            _cast_lists: cast_lists,
            _descriptors: descriptors,
            interface,
        })
    }
}

impl InterfaceTables for TypeTables {
    fn interface_name(&self) -> &'static std::ffi::CStr {
        phantomdb_plugin_abi::TYPES_INTERFACE_V1_C
    }

    fn interface_ptr(&self) -> *const c_void {
        &self.interface as *const TypesInterface as *const c_void
    }
}

/// The Arrow format string of `t` (a type Arrow cannot describe becomes an empty format,
/// which the host refuses with the type's name).
fn format_of(t: &DataType, c: &impl Fn(&str) -> CString) -> CString {
    FFI_ArrowSchema::try_from(t)
        .map(|s| c(s.format()))
        .unwrap_or_else(|_| c(""))
}

fn custom_type(index: usize) -> Result<&'static Arc<dyn CustomType>, Failure> {
    tables::<TypeTables>("data types")?
        .types
        .get(index)
        .ok_or_else(|| Failure::invalid(format!("no data type #{index}")))
}

/// Moves the host's input array in and checks its type.
///
/// # Safety
/// `input`/`schema` are valid Arrow C structs for the call.
unsafe fn import(
    input: *mut FFI_ArrowArray,
    schema: *const FFI_ArrowSchema,
    expected: &DataType,
) -> Result<ArrayRef, Failure> {
    if input.is_null() || schema.is_null() {
        return Err(Failure::invalid("null input array"));
    }
    // SAFETY: the host passes a valid array (moved out here) and schema.
    let data = unsafe { from_ffi(FFI_ArrowArray::from_raw(input), &*schema) }
        .map_err(|e| Failure::invalid(format!("cannot import the input: {e}")))?;
    if data.data_type() != expected {
        return Err(Failure::invalid(format!(
            "input has type {}, expected {expected}",
            data.data_type()
        )));
    }
    Ok(make_array(data))
}

/// Exports `array` (checked to have `rows` rows of `expected`) into the host's slots.
///
/// # Safety
/// The out slots are null or writable.
unsafe fn export(
    array: ArrayRef,
    rows: usize,
    expected: &DataType,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
) -> Result<(), Failure> {
    if array.len() != rows || array.data_type() != expected {
        return Err(Failure::error(format!(
            "the type returned {} rows of {}, expected {rows} of {expected}",
            array.len(),
            array.data_type()
        )));
    }
    if out_array.is_null() || out_schema.is_null() {
        return Err(Failure::invalid("null output pointer"));
    }
    let (a, s) = arrow_array::ffi::to_ffi(&array.to_data())
        .map_err(|e| Failure::error(format!("cannot export the result: {e}")))?;
    // SAFETY: non-null host slots holding released structs (nothing to drop).
    unsafe {
        std::ptr::write(out_array, a);
        std::ptr::write(out_schema, s);
    }
    Ok(())
}

/// The failure of a call that reads values: a bad value's row goes into the host's
/// `out_bad_row`.
///
/// # Safety
/// `out_bad_row` is null or writable.
unsafe fn failure(e: TypeError, out_bad_row: *mut i64) -> Failure {
    match e {
        TypeError::InvalidInput(bad) => {
            if !out_bad_row.is_null() {
                // SAFETY: non-null host slot.
                unsafe { *out_bad_row = bad.row as i64 };
            }
            Failure::error(bad.reason)
        }
        TypeError::Failed(m) => Failure::error(m),
    }
}

/// Marks the host's bad-row slot (when there is one) as "no row" before a conversion.
///
/// # Safety
/// `out_bad_row` is null or a writable host slot.
unsafe fn no_bad_row(out_bad_row: *mut i64) {
    if !out_bad_row.is_null() {
        // SAFETY: non-null host slot.
        unsafe { *out_bad_row = -1 };
    }
}

unsafe extern "C" fn parse(
    index: usize,
    input: *mut FFI_ArrowArray,
    input_schema: *const FFI_ArrowSchema,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
    out_bad_row: *mut i64,
    out_error: OutError,
) -> Status {
    // SAFETY: forwarded contract of the call.
    unsafe { no_bad_row(out_bad_row) };
    let work = || {
        let t = custom_type(index)?;
        // SAFETY: forwarded contract of the call.
        let input = unsafe { import(input, input_schema, &DataType::Utf8) }?;
        let text = input
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .ok_or_else(|| Failure::invalid("input is not a Utf8 array"))?;
        // SAFETY: the host's slot.
        let out = t
            .parse(text)
            .map_err(|e| unsafe { failure(e, out_bad_row) })?;
        // SAFETY: host slots.
        unsafe { export(out, text.len(), &t.storage_type(), out_array, out_schema) }
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn format(
    index: usize,
    input: *mut FFI_ArrowArray,
    input_schema: *const FFI_ArrowSchema,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
    out_error: OutError,
) -> Status {
    let work = || {
        let t = custom_type(index)?;
        // SAFETY: forwarded contract of the call.
        let input = unsafe { import(input, input_schema, &t.storage_type()) }?;
        let rows = input.len();
        let out = t.format(&input).map_err(Failure::error)?;
        // SAFETY: host slots.
        unsafe { export(Arc::new(out), rows, &DataType::Utf8, out_array, out_schema) }
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn sort_key(
    index: usize,
    input: *mut FFI_ArrowArray,
    input_schema: *const FFI_ArrowSchema,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
    out_error: OutError,
) -> Status {
    let work = || {
        let t = custom_type(index)?;
        if t.ordering() != TypeOrdering::SortKey {
            return Err(Failure::invalid(format!(
                "type {} is ordered by its storage and has no sort keys",
                t.name()
            )));
        }
        // SAFETY: forwarded contract of the call.
        let input = unsafe { import(input, input_schema, &t.storage_type()) }?;
        let rows = input.len();
        let out = t.sort_key(&input).map_err(Failure::error)?;
        // SAFETY: host slots.
        unsafe {
            export(
                Arc::new(out),
                rows,
                &DataType::Binary,
                out_array,
                out_schema,
            )
        }
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn cast(
    index: usize,
    cast_index: usize,
    input: *mut FFI_ArrowArray,
    input_schema: *const FFI_ArrowSchema,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
    out_bad_row: *mut i64,
    out_error: OutError,
) -> Status {
    // SAFETY: forwarded contract of the call.
    unsafe { no_bad_row(out_bad_row) };
    let work = || {
        let t = custom_type(index)?;
        let declared = tables::<TypeTables>("data types")?
            .casts
            .get(index)
            .and_then(|c| c.get(cast_index))
            .ok_or_else(|| {
                Failure::invalid(format!("type {} has no cast #{cast_index}", t.name()))
            })?;
        let (from, to) = match declared.direction {
            CastDirection::IntoType => (declared.other.clone(), t.storage_type()),
            CastDirection::FromType => (t.storage_type(), declared.other.clone()),
        };
        // SAFETY: forwarded contract of the call.
        let input = unsafe { import(input, input_schema, &from) }?;
        let rows = input.len();
        // SAFETY: the host's slot.
        let out = t
            .cast(cast_index, &input)
            .map_err(|e| unsafe { failure(e, out_bad_row) })?;
        // SAFETY: host slots.
        unsafe { export(out, rows, &to, out_array, out_schema) }
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}
