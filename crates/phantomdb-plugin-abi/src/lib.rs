//! The stable C ABI between PhantomDB and its native (`cdylib`) plugins.
//!
//! Everything that crosses the library boundary is defined here and is one of:
//! * a `#[repr(C)]` struct of integers, pointers and `extern "C"` function pointers,
//! * an Arrow C Data Interface struct ([`FFI_ArrowArray`], [`FFI_ArrowSchema`],
//!   [`FFI_ArrowArrayStream`]).
//!
//! No Rust trait objects, generics, `String`s or `Vec`s cross the boundary, and nothing here depends
//! on DataFusion, so a plugin keeps working across host releases as long as the ABI major version
//! ([`PHANTOMDB_PLUGIN_ABI_MAJOR`]) is unchanged.
//!
//! # Rules
//! * **Append-only structs.** Every table starts with `struct_size`; new fields are only ever
//!   appended. A reader must check `struct_size` before touching a field past the ones it knows.
//! * **Whoever allocates frees.** Error strings returned by a plugin are allocated by the plugin and
//!   released by the host through [`PluginVTable::free_string`]. Arrow arrays, schemas and streams
//!   carry their own `release` callback (Arrow C Data Interface).
//! * **Argument arrays are moved.** When the host passes `*mut FFI_ArrowArray` arguments the plugin
//!   *moves* them out (`FFI_ArrowArray::from_raw`, which leaves a released struct behind). Whatever
//!   the plugin did not move, the host releases after the call. Argument schemas are borrowed.
//! * **Outputs are written by the plugin** into host-provided, empty (released) structs; the host
//!   then owns them.
//! * **No unwinding.** No function in these tables may unwind; a panic must be caught and turned
//!   into [`Status::PANIC`] plus an error message.
//! * **Nothing is unloaded.** The host never `dlclose`s a plugin, so static data (names, the
//!   manifest) may be handed out as pointers that live forever.
//!
//! # Data types
//! Function signatures use the stable [`TypeCode`] enumeration (Boolean, Int8..Int64,
//! UInt8..UInt64, Float32, Float64, Utf8, Binary, Date32, TimestampMicrosecond). Text arguments are
//! always passed as `Utf8` (i32 offsets); the host casts `Utf8View`/`LargeUtf8` to `Utf8` before a
//! call. The data inside arrays travels as Arrow C Data Interface structs.

use std::ffi::{c_char, c_void};

pub use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
pub use arrow_array::ffi_stream::FFI_ArrowArrayStream;

/// Major version of this ABI. A host only loads plugins built against the same major version.
pub const PHANTOMDB_PLUGIN_ABI_MAJOR: u32 = 1;
/// Minor version of this ABI. Minor versions only append fields and interfaces; a host accepts
/// plugins of any minor version of its major version (checking `struct_size` for new fields).
pub const PHANTOMDB_PLUGIN_ABI_MINOR: u32 = 1;

/// Magic bytes at offset 0 of the embedded [`PluginManifest`].
pub const PHANTOMDB_PLUGIN_MAGIC: [u8; 16] = *b"PHANTOMDB-PLUGIN";

/// Name of the exported entry point symbol: [`PluginEntryFn`].
pub const PLUGIN_ENTRY_SYMBOL: &str = "phantomdb_plugin_entry";

/// Name of the object-file section holding the [`PluginManifest`] (ELF, PE).
pub const MANIFEST_SECTION_NAME: &str = ".phantomdb_plugin";
/// Name of the Mach-O section (in segment `__DATA`) holding the [`PluginManifest`].
pub const MANIFEST_SECTION_NAME_MACHO: &str = "__phdb_plugin";

/// Name of the scalar/aggregate/table function interface ([`FunctionsInterface`]).
pub const FUNCTIONS_INTERFACE_V1: &str = "phantomdb.functions/1";
/// Same as [`FUNCTIONS_INTERFACE_V1`], NUL-terminated for `get_interface`.
pub const FUNCTIONS_INTERFACE_V1_C: &std::ffi::CStr = c"phantomdb.functions/1";

/// Name of the storage engine interface ([`StorageInterface`]), since ABI 1.1.
pub const STORAGE_INTERFACE_V1: &str = "phantomdb.storage/1";
/// Same as [`STORAGE_INTERFACE_V1`], NUL-terminated for `get_interface`.
pub const STORAGE_INTERFACE_V1_C: &std::ffi::CStr = c"phantomdb.storage/1";

// ---------------------------------------------------------------------------------------------
// Manifest
// ---------------------------------------------------------------------------------------------

/// Size of [`PluginManifest::platform`].
pub const MANIFEST_PLATFORM_LEN: usize = 32;
/// Size of [`PluginManifest::name`].
pub const MANIFEST_NAME_LEN: usize = 64;
/// Size of [`PluginManifest::version`].
pub const MANIFEST_VERSION_LEN: usize = 32;
/// Size of [`PluginManifest::host_version_req`].
pub const MANIFEST_HOST_REQ_LEN: usize = 64;
/// Size of [`PluginManifest::description`].
pub const MANIFEST_DESCRIPTION_LEN: usize = 256;

/// Byte offsets of the manifest fields, for readers that parse the section bytes without loading
/// the library. `magic`, `abi_major`, `abi_minor` and `manifest_size` keep these offsets in every
/// ABI version, so any host can tell a plugin built for another ABI major version.
pub mod manifest_offsets {
    /// `magic`: 16 bytes.
    pub const MAGIC: usize = 0;
    /// `abi_major`: u32 in the target's byte order.
    pub const ABI_MAJOR: usize = 16;
    /// `abi_minor`: u32.
    pub const ABI_MINOR: usize = 20;
    /// `manifest_size`: u32.
    pub const MANIFEST_SIZE: usize = 24;
    /// `plugin_type`: u32 ([`super::PluginType`]).
    pub const PLUGIN_TYPE: usize = 28;
    /// `platform`: NUL-padded UTF-8.
    pub const PLATFORM: usize = 32;
    /// `name`: NUL-padded UTF-8.
    pub const NAME: usize = PLATFORM + super::MANIFEST_PLATFORM_LEN;
    /// `version`: NUL-padded UTF-8 (semver).
    pub const VERSION: usize = NAME + super::MANIFEST_NAME_LEN;
    /// `host_version_req`: NUL-padded UTF-8 (semver requirement).
    pub const HOST_VERSION_REQ: usize = VERSION + super::MANIFEST_VERSION_LEN;
    /// `description`: NUL-padded UTF-8.
    pub const DESCRIPTION: usize = HOST_VERSION_REQ + super::MANIFEST_HOST_REQ_LEN;
    /// Total size of the version-1 manifest.
    pub const END: usize = DESCRIPTION + super::MANIFEST_DESCRIPTION_LEN;
}

/// Kind of plugin, stored as `u32` in the manifest.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginType {
    /// Adds scalar, aggregate and/or table functions (`phantomdb.functions/1`).
    Functions = 1,
    /// Adds storage engines (`phantomdb.storage/1`), possibly functions too. Since ABI 1.1.
    Storage = 2,
}

impl PluginType {
    /// Decodes a manifest value; `None` for values this ABI version does not know.
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Functions),
            2 => Some(Self::Storage),
            _ => None,
        }
    }

    /// Stable lower-case name, e.g. `"functions"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Functions => "functions",
            Self::Storage => "storage",
        }
    }
}

/// Metadata embedded in the plugin library in section [`MANIFEST_SECTION_NAME`], readable without
/// loading (`dlopen`) the library. All strings are UTF-8, NUL-padded to their fixed size.
///
/// Build one with [`PluginManifest::new`] in a `#[used] #[link_section]` static (the SDK's
/// `phantomdb_plugin!` macro does this).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PluginManifest {
    /// Always [`PHANTOMDB_PLUGIN_MAGIC`].
    pub magic: [u8; 16],
    /// ABI major version the plugin was built with.
    pub abi_major: u32,
    /// ABI minor version the plugin was built with.
    pub abi_minor: u32,
    /// `size_of::<PluginManifest>()` in the plugin's ABI version (append-only).
    pub manifest_size: u32,
    /// [`PluginType`] as `u32`.
    pub plugin_type: u32,
    /// Platform the plugin was compiled for: `"{arch}-{os}"` as in `std::env::consts`,
    /// e.g. `"x86_64-linux"`.
    pub platform: [u8; MANIFEST_PLATFORM_LEN],
    /// Plugin name (unique in a host), e.g. `"math_functions"`.
    pub name: [u8; MANIFEST_NAME_LEN],
    /// Plugin version, semver, e.g. `"1.2.0"`.
    pub version: [u8; MANIFEST_VERSION_LEN],
    /// Host versions the plugin accepts, a semver requirement such as `">=0.1, <0.2"`.
    pub host_version_req: [u8; MANIFEST_HOST_REQ_LEN],
    /// One-line human-readable description.
    pub description: [u8; MANIFEST_DESCRIPTION_LEN],
}

const _: () = assert!(std::mem::size_of::<PluginManifest>() == manifest_offsets::END);

/// Copies `s` into a NUL-padded fixed buffer; fails compilation (in const context) when too long.
const fn fixed_str<const N: usize>(s: &str) -> [u8; N] {
    let b = s.as_bytes();
    assert!(
        b.len() < N,
        "PhantomDB plugin manifest string is too long for its field"
    );
    let mut out = [0u8; N];
    let mut i = 0;
    while i < b.len() {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// The current platform string, `"{ARCH}-{OS}"` (e.g. `"x86_64-linux"`), NUL-padded.
pub const fn current_platform() -> [u8; MANIFEST_PLATFORM_LEN] {
    let arch = std::env::consts::ARCH.as_bytes();
    let os = std::env::consts::OS.as_bytes();
    assert!(arch.len() + 1 + os.len() < MANIFEST_PLATFORM_LEN);
    let mut out = [0u8; MANIFEST_PLATFORM_LEN];
    let mut i = 0;
    while i < arch.len() {
        out[i] = arch[i];
        i += 1;
    }
    out[i] = b'-';
    let mut j = 0;
    while j < os.len() {
        out[i + 1 + j] = os[j];
        j += 1;
    }
    out
}

/// The current platform string as a `String` (e.g. `"x86_64-linux"`).
pub fn current_platform_string() -> String {
    format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS)
}

impl PluginManifest {
    /// A manifest for the current ABI version and the platform being compiled for.
    ///
    /// Panics (a compile error when used in a `static`) if a string is too long for its field:
    /// name < 64 bytes, version < 32, host_version_req < 64, description < 256.
    pub const fn new(
        plugin_type: PluginType,
        name: &str,
        version: &str,
        host_version_req: &str,
        description: &str,
    ) -> Self {
        Self {
            magic: PHANTOMDB_PLUGIN_MAGIC,
            abi_major: PHANTOMDB_PLUGIN_ABI_MAJOR,
            abi_minor: PHANTOMDB_PLUGIN_ABI_MINOR,
            manifest_size: std::mem::size_of::<PluginManifest>() as u32,
            plugin_type: plugin_type as u32,
            platform: current_platform(),
            name: fixed_str(name),
            version: fixed_str(version),
            host_version_req: fixed_str(host_version_req),
            description: fixed_str(description),
        }
    }

    /// Overrides the ABI version (for tests and compatibility fixtures).
    pub const fn with_abi_version(mut self, major: u32, minor: u32) -> Self {
        self.abi_major = major;
        self.abi_minor = minor;
        self
    }

    /// Overrides the platform string (for tests and fixtures).
    pub const fn with_platform(mut self, platform: &str) -> Self {
        self.platform = fixed_str(platform);
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Status and common types
// ---------------------------------------------------------------------------------------------

/// Result code of every fallible call. A transparent `i32` (not a Rust enum) so an unknown value
/// coming from a newer/buggy peer is never undefined behaviour.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(pub i32);

impl Status {
    /// Success.
    pub const OK: Status = Status(0);
    /// The plugin reported an error; `out_error` holds the message.
    pub const ERROR: Status = Status(1);
    /// Plugin code panicked; the panic was caught and `out_error` holds the message.
    pub const PANIC: Status = Status(2);
    /// The caller passed invalid arguments (bad index, null pointer, wrong argument count...).
    pub const INVALID_ARGUMENT: Status = Status(3);
    /// The call is not allowed in the plugin's current state (e.g. before `initialize`).
    pub const INVALID_STATE: Status = Status(4);

    /// `true` for [`Status::OK`].
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// Stable name for messages.
    pub const fn name(self) -> &'static str {
        match self.0 {
            0 => "ok",
            1 => "error",
            2 => "panic",
            3 => "invalid argument",
            4 => "invalid state",
            _ => "unknown status",
        }
    }
}

/// Out-parameter for error messages: on failure the plugin stores a NUL-terminated UTF-8 string it
/// allocated (or leaves null); the host releases it with [`PluginVTable::free_string`].
pub type OutError = *mut *mut c_char;

/// Log levels for [`HostApi::log`].
pub mod log_level {
    /// Error.
    pub const ERROR: u32 = 1;
    /// Warning.
    pub const WARN: u32 = 2;
    /// Informational.
    pub const INFO: u32 = 3;
    /// Debug.
    pub const DEBUG: u32 = 4;
    /// Trace.
    pub const TRACE: u32 = 5;
}

// ---------------------------------------------------------------------------------------------
// Host API and plugin vtable
// ---------------------------------------------------------------------------------------------

/// What the host hands the plugin at entry. Append-only; lives for the whole process.
#[repr(C)]
#[derive(Debug)]
pub struct HostApi {
    /// `size_of::<HostApi>()` in the host's ABI version.
    pub struct_size: usize,
    /// Host's ABI major version.
    pub abi_major: u32,
    /// Host's ABI minor version.
    pub abi_minor: u32,
    /// Host (PhantomDB) version, NUL-terminated, e.g. `"0.1.0"`.
    pub host_version: *const c_char,
    /// Log sink: `level` from [`log_level`], UTF-8 message bytes (not NUL-terminated). The
    /// message is borrowed for the duration of the call. Thread-safe. May be `None`.
    pub log: Option<unsafe extern "C" fn(level: u32, msg: *const u8, len: usize)>,
}

/// Signature of the exported [`PLUGIN_ENTRY_SYMBOL`]. Returns the plugin's vtable (which lives
/// forever), or null on failure. Must not unwind. Called once per load.
pub type PluginEntryFn = unsafe extern "C" fn(host: *const HostApi) -> *const PluginVTable;

/// The plugin's root table, returned by the entry point. Append-only.
#[repr(C)]
#[derive(Debug)]
pub struct PluginVTable {
    /// `size_of::<PluginVTable>()` in the plugin's ABI version; fields beyond it are absent.
    pub struct_size: usize,
    /// ABI major version the plugin was built with.
    pub abi_major: u32,
    /// ABI minor version the plugin was built with.
    pub abi_minor: u32,
    /// The plugin's embedded manifest (same bytes as the manifest section).
    pub manifest: *const PluginManifest,
    /// Initialise the plugin with a configuration (UTF-8 JSON text, may be empty; not
    /// NUL-terminated). Called exactly once, before any function call.
    pub initialize:
        unsafe extern "C" fn(config: *const u8, config_len: usize, out_error: OutError) -> Status,
    /// Shut the plugin down. Called at most once, after all calls have finished.
    pub shutdown: unsafe extern "C" fn(out_error: OutError) -> Status,
    /// Look up an interface table by NUL-terminated name (e.g. [`FUNCTIONS_INTERFACE_V1_C`]).
    /// Returns null for unknown names. The table lives forever.
    pub get_interface: unsafe extern "C" fn(name: *const c_char) -> *const c_void,
    /// Release a string the plugin allocated (error messages). Null is ignored.
    pub free_string: unsafe extern "C" fn(s: *mut c_char),
}

// ---------------------------------------------------------------------------------------------
// phantomdb.functions/1
// ---------------------------------------------------------------------------------------------

/// Kind of a function, stored as `u32`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FunctionKind {
    /// Row-wise function, invoked once per batch.
    Scalar = 1,
    /// Aggregate function with an accumulator.
    Aggregate = 2,
    /// Table function: literal arguments in, a stream of record batches out.
    Table = 3,
}

impl FunctionKind {
    /// Decodes an ABI value.
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Scalar),
            2 => Some(Self::Aggregate),
            3 => Some(Self::Table),
            _ => None,
        }
    }
}

/// Volatility of a function, stored as `u32` (same meaning as in DataFusion).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Volatility {
    /// Same inputs always give the same output; may be constant-folded.
    Immutable = 0,
    /// Same output within one query.
    Stable = 1,
    /// May change on every call (e.g. random).
    Volatile = 2,
}

impl Volatility {
    /// Decodes an ABI value.
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            0 => Some(Self::Immutable),
            1 => Some(Self::Stable),
            2 => Some(Self::Volatile),
            _ => None,
        }
    }
}

/// Stable data type codes used in function signatures, stored as `u32`. The data itself always
/// travels as Arrow C Data Interface arrays of the corresponding Arrow type.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeCode {
    /// Arrow `Null`.
    Null = 0,
    /// Arrow `Boolean`.
    Boolean = 1,
    /// Arrow `Int8`.
    Int8 = 2,
    /// Arrow `Int16`.
    Int16 = 3,
    /// Arrow `Int32`.
    Int32 = 4,
    /// Arrow `Int64`.
    Int64 = 5,
    /// Arrow `UInt8`.
    UInt8 = 6,
    /// Arrow `UInt16`.
    UInt16 = 7,
    /// Arrow `UInt32`.
    UInt32 = 8,
    /// Arrow `UInt64`.
    UInt64 = 9,
    /// Arrow `Float32`.
    Float32 = 10,
    /// Arrow `Float64`.
    Float64 = 11,
    /// Arrow `Utf8` (i32 offsets). The host casts `Utf8View` and `LargeUtf8` to this.
    Utf8 = 12,
    /// Arrow `Binary` (i32 offsets).
    Binary = 13,
    /// Arrow `Date32` (days since epoch).
    Date32 = 14,
    /// Arrow `Timestamp(Microsecond, None)`.
    TimestampMicrosecond = 15,
}

impl TypeCode {
    /// Decodes an ABI value.
    pub const fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => Self::Null,
            1 => Self::Boolean,
            2 => Self::Int8,
            3 => Self::Int16,
            4 => Self::Int32,
            5 => Self::Int64,
            6 => Self::UInt8,
            7 => Self::UInt16,
            8 => Self::UInt32,
            9 => Self::UInt64,
            10 => Self::Float32,
            11 => Self::Float64,
            12 => Self::Utf8,
            13 => Self::Binary,
            14 => Self::Date32,
            15 => Self::TimestampMicrosecond,
            _ => return None,
        })
    }

    /// The Arrow data type for this code.
    pub fn to_data_type(self) -> arrow_schema::DataType {
        use arrow_schema::{DataType, TimeUnit};
        match self {
            Self::Null => DataType::Null,
            Self::Boolean => DataType::Boolean,
            Self::Int8 => DataType::Int8,
            Self::Int16 => DataType::Int16,
            Self::Int32 => DataType::Int32,
            Self::Int64 => DataType::Int64,
            Self::UInt8 => DataType::UInt8,
            Self::UInt16 => DataType::UInt16,
            Self::UInt32 => DataType::UInt32,
            Self::UInt64 => DataType::UInt64,
            Self::Float32 => DataType::Float32,
            Self::Float64 => DataType::Float64,
            Self::Utf8 => DataType::Utf8,
            Self::Binary => DataType::Binary,
            Self::Date32 => DataType::Date32,
            Self::TimestampMicrosecond => DataType::Timestamp(TimeUnit::Microsecond, None),
        }
    }

    /// The code for an Arrow data type, if it is one of the ABI types.
    pub fn from_data_type(dt: &arrow_schema::DataType) -> Option<Self> {
        use arrow_schema::{DataType, TimeUnit};
        Some(match dt {
            DataType::Null => Self::Null,
            DataType::Boolean => Self::Boolean,
            DataType::Int8 => Self::Int8,
            DataType::Int16 => Self::Int16,
            DataType::Int32 => Self::Int32,
            DataType::Int64 => Self::Int64,
            DataType::UInt8 => Self::UInt8,
            DataType::UInt16 => Self::UInt16,
            DataType::UInt32 => Self::UInt32,
            DataType::UInt64 => Self::UInt64,
            DataType::Float32 => Self::Float32,
            DataType::Float64 => Self::Float64,
            DataType::Utf8 => Self::Utf8,
            DataType::Binary => Self::Binary,
            DataType::Date32 => Self::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, None) => Self::TimestampMicrosecond,
            _ => return None,
        })
    }
}

/// Describes one function exported through [`FunctionsInterface`]. Append-only.
#[repr(C)]
#[derive(Debug)]
pub struct FunctionDescriptor {
    /// `size_of::<FunctionDescriptor>()` in the plugin's ABI version.
    pub struct_size: usize,
    /// NUL-terminated UTF-8 SQL name (lower case), e.g. `"gcd"`.
    pub name: *const c_char,
    /// NUL-terminated UTF-8 one-line description (may be empty, never null).
    pub description: *const c_char,
    /// [`FunctionKind`] as `u32`.
    pub kind: u32,
    /// [`Volatility`] as `u32`.
    pub volatility: u32,
    /// Argument [`TypeCode`]s (`num_args` of them; may be null when `num_args == 0`).
    pub arg_types: *const u32,
    /// Number of declared arguments.
    pub num_args: usize,
    /// Non-zero when the last declared argument type may repeat (then at least `num_args`
    /// arguments are passed, all extra ones of the last type).
    pub variadic: u8,
    /// Return [`TypeCode`] of scalar and aggregate functions. Unused (0) for table functions,
    /// whose schema comes with the returned stream.
    pub return_type: u32,
    /// Aggregate only: [`TypeCode`]s of the accumulator state columns (`num_state` of them).
    pub state_types: *const u32,
    /// Aggregate only: number of state columns.
    pub num_state: usize,
}

/// Opaque accumulator handle, owned by the plugin; freed with
/// [`FunctionsInterface::accumulator_free`].
pub type AccumulatorHandle = *mut c_void;

/// The `phantomdb.functions/1` interface: function descriptors plus vectorised entry points.
/// Append-only. Every call takes the function's index into `functions`.
///
/// In every call, `args`/`arg_schemas` point to `nargs` arrays (all of length `num_rows`) whose
/// types match the descriptor; the plugin moves the arrays it uses (see crate docs).
#[repr(C)]
#[derive(Debug)]
pub struct FunctionsInterface {
    /// `size_of::<FunctionsInterface>()` in the plugin's ABI version.
    pub struct_size: usize,
    /// Number of entries in `functions`.
    pub num_functions: usize,
    /// Function descriptors (`num_functions` of them). The array's stride is the descriptors'
    /// `struct_size` (all equal), so later minor versions can append descriptor fields.
    pub functions: *const FunctionDescriptor,

    /// Scalar: evaluate function `fn_index` on one batch. On success writes an array of
    /// `num_rows` rows of the declared return type into `out_array`/`out_schema`.
    pub scalar_invoke: unsafe extern "C" fn(
        fn_index: usize,
        args: *mut FFI_ArrowArray,
        arg_schemas: *const FFI_ArrowSchema,
        nargs: usize,
        num_rows: usize,
        out_array: *mut FFI_ArrowArray,
        out_schema: *mut FFI_ArrowSchema,
        out_error: OutError,
    ) -> Status,

    /// Aggregate: create an accumulator for function `fn_index`, stored in `out_handle`.
    pub accumulator_create: unsafe extern "C" fn(
        fn_index: usize,
        out_handle: *mut AccumulatorHandle,
        out_error: OutError,
    ) -> Status,
    /// Aggregate: feed one batch of argument rows.
    pub accumulator_update: unsafe extern "C" fn(
        handle: AccumulatorHandle,
        args: *mut FFI_ArrowArray,
        arg_schemas: *const FFI_ArrowSchema,
        nargs: usize,
        num_rows: usize,
        out_error: OutError,
    ) -> Status,
    /// Aggregate: merge `num_rows` partial states (one array per state column).
    pub accumulator_merge: unsafe extern "C" fn(
        handle: AccumulatorHandle,
        states: *mut FFI_ArrowArray,
        state_schemas: *const FFI_ArrowSchema,
        nstates: usize,
        num_rows: usize,
        out_error: OutError,
    ) -> Status,
    /// Aggregate: write the current state: `nstates` (== descriptor `num_state`) one-row arrays
    /// into the host-provided `out_arrays`/`out_schemas`.
    pub accumulator_state: unsafe extern "C" fn(
        handle: AccumulatorHandle,
        out_arrays: *mut FFI_ArrowArray,
        out_schemas: *mut FFI_ArrowSchema,
        nstates: usize,
        out_error: OutError,
    ) -> Status,
    /// Aggregate: write the final value as a one-row array of the return type.
    pub accumulator_evaluate: unsafe extern "C" fn(
        handle: AccumulatorHandle,
        out_array: *mut FFI_ArrowArray,
        out_schema: *mut FFI_ArrowSchema,
        out_error: OutError,
    ) -> Status,
    /// Aggregate: free an accumulator. Null is ignored.
    pub accumulator_free: unsafe extern "C" fn(handle: AccumulatorHandle),

    /// Table: call function `fn_index` with literal arguments (`nargs` one-row arrays); on
    /// success writes a record-batch stream into `out_stream`.
    pub table_call: unsafe extern "C" fn(
        fn_index: usize,
        args: *mut FFI_ArrowArray,
        arg_schemas: *const FFI_ArrowSchema,
        nargs: usize,
        out_stream: *mut FFI_ArrowArrayStream,
        out_error: OutError,
    ) -> Status,
}

// ---------------------------------------------------------------------------------------------
// phantomdb.storage/1
// ---------------------------------------------------------------------------------------------

/// Capability bits of a storage engine ([`StorageEngineDescriptor::capabilities`]). The host
/// refuses, with a clear error, what an engine does not declare.
pub mod storage_caps {
    /// Takes part in `BEGIN ... COMMIT/ROLLBACK`: writes stay invisible to other transactions
    /// until `commit`, and `rollback` discards them. Without it, each write is applied at once and
    /// the host refuses writes to the engine inside an explicit transaction.
    pub const TRANSACTIONS: u64 = 1;
    /// Supports `delete` and `update` by row id (and hands out row ids in scans).
    pub const UPDATE_DELETE: u64 = 1 << 1;
    /// Enforces primary keys and serves key lookups itself. Without it the host enforces
    /// primary keys by scanning the key columns.
    pub const INDEXES: u64 = 1 << 2;
    /// Answers `statistics` (row count, per-column min/max).
    pub const STATISTICS: u64 = 1 << 3;
}

/// Per-filter answer of [`StorageInterface::supports_filters`], stored as `u8`.
pub mod filter_support {
    /// The engine ignores the filter; the host applies it.
    pub const UNSUPPORTED: u8 = 0;
    /// The engine uses the filter to skip data but may return rows that fail it (e.g. pruning by
    /// min/max statistics); the host applies it again.
    pub const INEXACT: u8 = 1;
    /// The engine returns only rows that pass the filter; the host does not re-apply it.
    pub const EXACT: u8 = 2;
}

/// Name of the row-id column an engine appends to a scan when asked to
/// ([`ScanRequest::with_row_ids`]): `UInt64`, not null, unique within the table for the life of
/// the transaction.
pub const ROW_ID_COLUMN: &str = "__phantomdb_rowid";

/// One storage engine of a plugin. Strings live as long as the plugin (forever).
#[repr(C)]
#[derive(Debug)]
pub struct StorageEngineDescriptor {
    /// `size_of::<StorageEngineDescriptor>()` in the plugin's ABI version.
    pub struct_size: usize,
    /// Engine name as used in `CREATE TABLE ... USING name` (lower case), NUL-terminated.
    pub name: *const c_char,
    /// One-line description, NUL-terminated.
    pub description: *const c_char,
    /// Bit set of [`storage_caps`].
    pub capabilities: u64,
}

/// Identifies a table in every storage call. All pointers are borrowed for the call.
///
/// `options_json` is a JSON object of string keys to string values: the `WITH (...)` options of
/// `CREATE TABLE`, as completed by [`StorageInterface::create_table`].
#[repr(C)]
#[derive(Debug)]
pub struct TableRef {
    /// `size_of::<TableRef>()` in the host's ABI version.
    pub struct_size: usize,
    /// The host's id of the table: unique in the database and stable across renames.
    pub table_id: u64,
    /// Table name, UTF-8 (not NUL-terminated).
    pub name: *const u8,
    /// Length of `name` in bytes.
    pub name_len: usize,
    /// Engine options, UTF-8 JSON object (not NUL-terminated).
    pub options_json: *const u8,
    /// Length of `options_json` in bytes.
    pub options_len: usize,
    /// The table's current schema (a struct schema whose children are the columns).
    pub schema: *const FFI_ArrowSchema,
}

/// What a scan should return.
///
/// `filters_json` is a JSON array of filter expressions that all must hold (a conjunction); see
/// the SDK's `Filter` type for the full format:
///
/// ```json
/// [{"compare": {"op": ">", "left": {"column": "id"}, "right": {"literal": {"int": 5}}}},
///  {"is_not_null": {"column": "v"}},
///  {"in_list": {"expr": {"column": "v"}, "list": [{"literal": {"str": "a"}}], "negated": false}}]
/// ```
///
/// Operands are `{"column": name}` or `{"literal": value}`, with values `"null"`, `{"bool": b}`,
/// `{"int": i64}`, `{"uint": u64}`, `{"float": f64}`, `{"str": s}`, `{"date32": days}`,
/// `{"timestamp_us": micros}`; operators `compare` (`=`, `!=`, `<`, `<=`, `>`, `>=`), `and`,
/// `or`, `not`, `is_null`, `is_not_null` and `in_list`.
///
/// An engine may apply any subset of them; it must apply exactly those for which
/// `supports_filters` answered [`filter_support::EXACT`].
#[repr(C)]
#[derive(Debug)]
pub struct ScanRequest {
    /// `size_of::<ScanRequest>()` in the host's ABI version.
    pub struct_size: usize,
    /// Column indexes to return, in order; ignored when `has_projection` is 0 (all columns).
    pub projection: *const usize,
    /// Number of entries in `projection`.
    pub projection_len: usize,
    /// 1 when `projection` applies.
    pub has_projection: u8,
    /// 1 to append a [`ROW_ID_COLUMN`] column.
    pub with_row_ids: u8,
    /// Filters, UTF-8 JSON array (not NUL-terminated); may be empty (length 0).
    pub filters_json: *const u8,
    /// Length of `filters_json`.
    pub filters_len: usize,
    /// Maximum rows the host needs, or `u64::MAX` for no limit. Only sent when every filter is
    /// applied exactly, so the engine may stop early.
    pub limit: u64,
}

/// Opaque transaction handle, owned by the plugin; ended by exactly one of
/// [`StorageInterface::commit`] or [`StorageInterface::rollback`], which free it.
pub type StorageTxnHandle = *mut c_void;

/// The `phantomdb.storage/1` interface. Append-only. `engine` arguments index `engines`.
///
/// Table lifecycle calls (`create_table`, `drop_table`) are not transactional: the host creates
/// eagerly (dropping again if its transaction rolls back) and drops only after its transaction
/// committed. Data calls run inside a transaction from `begin`; an engine without
/// [`storage_caps::TRANSACTIONS`] may apply them immediately.
///
/// String results (`out_json`) are allocated by the plugin and released by the host with
/// [`PluginVTable::free_string`].
#[repr(C)]
#[derive(Debug)]
pub struct StorageInterface {
    /// `size_of::<StorageInterface>()` in the plugin's ABI version.
    pub struct_size: usize,
    /// Number of entries in `engines`.
    pub num_engines: usize,
    /// Engine descriptors; stride is their `struct_size`.
    pub engines: *const StorageEngineDescriptor,

    /// Creates the table's storage. Writes the completed options (defaults filled in, e.g. a
    /// generated location) as a JSON object into `out_json`; the host stores them in its catalog
    /// and passes them in every later call.
    pub create_table: unsafe extern "C" fn(
        engine: usize,
        table: *const TableRef,
        out_json: *mut *mut c_char,
        out_error: OutError,
    ) -> Status,
    /// Deletes the table's storage.
    pub drop_table:
        unsafe extern "C" fn(engine: usize, table: *const TableRef, out_error: OutError) -> Status,
    /// Lists the tables the engine holds under the given options (a JSON object, e.g. a `path`)
    /// as a JSON array of `{"name": ..., "options": {...}}` objects written into `out_json`.
    pub list_tables: unsafe extern "C" fn(
        engine: usize,
        options_json: *const u8,
        options_len: usize,
        out_json: *mut *mut c_char,
        out_error: OutError,
    ) -> Status,
    /// For each of the filters in the JSON array, writes one [`filter_support`] value into
    /// `out_support` (which has room for `num_filters` bytes).
    pub supports_filters: unsafe extern "C" fn(
        engine: usize,
        table: *const TableRef,
        filters_json: *const u8,
        filters_len: usize,
        out_support: *mut u8,
        num_filters: usize,
        out_error: OutError,
    ) -> Status,
    /// Starts a transaction.
    pub begin: unsafe extern "C" fn(
        engine: usize,
        out_txn: *mut StorageTxnHandle,
        out_error: OutError,
    ) -> Status,
    /// Scans a table as the transaction sees it, writing a record-batch stream into
    /// `out_stream`. The stream's schema is the projected columns (plus the row-id column when
    /// asked). The stream stays valid after the transaction ends.
    pub scan: unsafe extern "C" fn(
        txn: StorageTxnHandle,
        table: *const TableRef,
        request: *const ScanRequest,
        out_stream: *mut FFI_ArrowArrayStream,
        out_error: OutError,
    ) -> Status,
    /// Inserts one batch in the table's schema. The plugin moves `batch` (a struct array).
    pub insert: unsafe extern "C" fn(
        txn: StorageTxnHandle,
        table: *const TableRef,
        batch: *mut FFI_ArrowArray,
        batch_schema: *const FFI_ArrowSchema,
        out_error: OutError,
    ) -> Status,
    /// Deletes rows by id (a `UInt64` array the plugin moves); writes how many were deleted.
    pub delete_rows: unsafe extern "C" fn(
        txn: StorageTxnHandle,
        table: *const TableRef,
        row_ids: *mut FFI_ArrowArray,
        row_ids_schema: *const FFI_ArrowSchema,
        out_count: *mut u64,
        out_error: OutError,
    ) -> Status,
    /// Replaces rows by id: row `i` of `rows` (a struct array in the table's schema) is the new
    /// content of row `row_ids[i]`. Writes how many were updated.
    #[allow(clippy::type_complexity)]
    pub update_rows: unsafe extern "C" fn(
        txn: StorageTxnHandle,
        table: *const TableRef,
        row_ids: *mut FFI_ArrowArray,
        row_ids_schema: *const FFI_ArrowSchema,
        rows: *mut FFI_ArrowArray,
        rows_schema: *const FFI_ArrowSchema,
        out_count: *mut u64,
        out_error: OutError,
    ) -> Status,
    /// Table statistics: the row count (or -1 when unknown) and, when `out_min_max` is written
    /// (non-released), a 2-row struct array in the table's schema: row 0 the per-column minimum,
    /// row 1 the maximum (null where unknown).
    pub statistics: unsafe extern "C" fn(
        txn: StorageTxnHandle,
        table: *const TableRef,
        out_row_count: *mut i64,
        out_min_max: *mut FFI_ArrowArray,
        out_min_max_schema: *mut FFI_ArrowSchema,
        out_error: OutError,
    ) -> Status,
    /// First commit phase: does everything that can fail (writes data files, checks
    /// conflicts) without making the changes visible. Optional to call; `commit` prepares
    /// when it was not called.
    pub prepare: unsafe extern "C" fn(txn: StorageTxnHandle, out_error: OutError) -> Status,
    /// Makes the transaction's changes visible atomically and frees the handle (also on error).
    pub commit: unsafe extern "C" fn(txn: StorageTxnHandle, out_error: OutError) -> Status,
    /// Discards the transaction's changes and frees the handle.
    pub rollback: unsafe extern "C" fn(txn: StorageTxnHandle, out_error: OutError) -> Status,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_layout_is_fixed() {
        let m = PluginManifest::new(PluginType::Functions, "x", "1.0.0", "*", "d");
        let base = &m as *const _ as usize;
        assert_eq!(
            &m.abi_major as *const _ as usize - base,
            manifest_offsets::ABI_MAJOR
        );
        assert_eq!(&m.name as *const _ as usize - base, manifest_offsets::NAME);
        assert_eq!(
            &m.description as *const _ as usize - base,
            manifest_offsets::DESCRIPTION
        );
        assert_eq!(m.manifest_size as usize, manifest_offsets::END);
    }

    #[test]
    fn type_codes_round_trip() {
        for v in 0..16 {
            let code = TypeCode::from_u32(v).expect("known code");
            assert_eq!(TypeCode::from_data_type(&code.to_data_type()), Some(code));
        }
        assert!(TypeCode::from_u32(999).is_none());
    }

    #[test]
    fn platform_string() {
        let p = current_platform();
        let s = std::str::from_utf8(&p)
            .expect("utf8")
            .trim_end_matches('\0');
        assert_eq!(s, current_platform_string());
    }
}
