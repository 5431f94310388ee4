//! Write PhantomDB native plugins in safe Rust.
//!
//! A plugin is a `cdylib` crate that depends only on this SDK. It implements [`Plugin`],
//! registers its components in [`Plugin::register`] (functions: [`ScalarFunction`],
//! [`AggregateFunction`], [`TableFunction`]; storage engines: [`storage::StorageEngine`];
//! authentication providers: [`auth::AuthProvider`]; query processors:
//! [`query::QueryProcessor`], over plans in the [`plan`] form; data types:
//! [`data_type::CustomType`]) and
//! exports everything with one [`phantomdb_plugin!`] invocation, which emits:
//! * the manifest static in the `.phantomdb_plugin` section (read by the host *before* `dlopen`),
//! * the `phantomdb_plugin_entry` symbol,
//!
//! while the `extern "C"` trampolines live in this crate. Every trampoline runs plugin code inside
//! `std::panic::catch_unwind`: a panic becomes an error status and message, never an unwind across
//! the C boundary. (Do not build plugins with `panic = "abort"`: a panic would then abort the
//! host process.)
//!
//! ```
//! use phantomdb_plugin_sdk::prelude::*;
//!
//! #[derive(Default)]
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn register(&self, registrar: &mut Registrar) {
//!         registrar.scalar_functions(vec![scalar_fn("hello", Signature::exact(vec![TypeCode::Utf8], TypeCode::Utf8), |args, _rows| {
//!             let names = args[0].as_string::<i32>();
//!             let out: StringArray = names.iter().map(|n| n.map(|n| format!("hello {n}"))).collect();
//!             Ok(Arc::new(out) as ArrayRef)
//!         })]);
//!     }
//! }
//!
//! phantomdb_plugin! {
//!     name: "hello",
//!     version: env!("CARGO_PKG_VERSION"),
//!     description: "Says hello",
//!     host_version: ">=0.1, <0.2",
//!     plugin: Hello,
//! }
//! # fn main() {}
//! ```
//!
//! Functions are declared when the library is loaded (before `initialize`), so the set of
//! functions cannot depend on the configuration; functions that need configuration can share state
//! with the plugin (e.g. an `Arc<OnceLock<Config>>`) filled in by [`Plugin::initialize`].
//!
//! Argument, result and state types are [`ValueType`]s: any Arrow type (a [`TypeCode`] or an
//! Arrow `DataType` converts into one), with field metadata for Arrow extension types, or a
//! custom type by name ([`ValueType::custom`]: arguments arrive as the type's storage, a text
//! argument parsed by the type first, and results are the type). They reach the host through
//! `phantomdb.functions/2` as Arrow C schemas. Text always arrives as `Utf8` (the host casts
//! `Utf8View`/`LargeUtf8`), so `args[i].as_string::<i32>()` is the way to read it.

use std::sync::Arc;

pub use arrow_array;
pub use arrow_buffer;
pub use arrow_data;
pub use arrow_schema;
pub use phantomdb_plugin_abi as abi;
pub use phantomdb_plugin_abi::{PluginType, TypeCode, Volatility};

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;

pub mod auth;
mod auth_runtime;
pub mod data_type;
mod data_type_runtime;
mod entry;
mod function_runtime;
pub mod plan;
pub mod query;
mod query_runtime;
mod runtime;
mod signature;
pub mod storage;
mod storage_runtime;

pub use signature::{Signature, ValueType};
pub use storage::{
    BatchStream, Capabilities, CommitError, CompareOp, Filter, FilterSupport, Options, ScanRequest,
    StorageEngine, StorageTransaction, TableInfo, TableStatistics, Value,
};

#[doc(hidden)]
pub mod __private {
    pub use crate::entry::entry;
}

/// Commonly used items for plugin authors.
pub mod prelude {
    pub use crate::auth::{AuthDecision, AuthOptions, AuthProvider, AuthRequest};
    pub use crate::data_type::{
        Cast, CastContext, CastDirection, CustomType, ParseError, TypeError, TypeOrdering,
    };
    pub use crate::plan::{Plan, PlanNode};
    pub use crate::query::{FailureMode, Hooks, QueryEnd, QueryProcessor, Session, Stage};
    pub use crate::storage::{
        BatchStream, Capabilities, CommitError, CompareOp, Filter, FilterSupport, Options,
        ScanRequest, StorageEngine, StorageTransaction, TableInfo, TableStatistics, Value,
        ROW_ID_COLUMN,
    };
    pub use crate::{
        host_log, phantomdb_plugin, scalar_fn, Accumulator, AggregateFunction, Literal, Plugin,
        Registrar, ScalarFunction, Signature, TableFunction, TableOutput, TypeCode, ValueType,
        Volatility,
    };
    pub use arrow_array::{
        self, array::*, builder::*, cast::AsArray, types::*, Array, ArrayRef, RecordBatch,
        RecordBatchIterator, RecordBatchReader,
    };
    pub use arrow_schema::{self, DataType, Field, Schema, SchemaRef};
    pub use std::sync::Arc;
}

/// A plugin: lifecycle hooks, and one entry, [`Plugin::register`], through which it registers
/// every component it contributes (functions, storage engines, and the kinds later ABI versions
/// add). Name, version and description come from [`phantomdb_plugin!`].
pub trait Plugin: Send + 'static {
    /// Called once with the configuration (JSON text, may be empty) before any function call.
    fn initialize(&mut self, _config: &str) -> Result<(), String> {
        Ok(())
    }

    /// Called once when the host stops using the plugin (after all calls finished).
    fn shutdown(&mut self) {}

    /// Registers the plugin's components. Called once when the library loads, before
    /// [`Plugin::initialize`]: the set of components cannot depend on the configuration (a
    /// component that needs it can share state with the plugin, filled in by `initialize`).
    /// The default registers nothing.
    fn register(&self, _registrar: &mut Registrar) {}
}

/// What a plugin registers, by kind. The host reads each kind through its own ABI interface.
#[derive(Default)]
pub struct Registrar {
    pub(crate) scalar: Vec<Box<dyn ScalarFunction>>,
    pub(crate) aggregate: Vec<Box<dyn AggregateFunction>>,
    pub(crate) table: Vec<Box<dyn TableFunction>>,
    pub(crate) engines: Vec<Arc<dyn storage::StorageEngine>>,
    pub(crate) auth_providers: Vec<Arc<dyn auth::AuthProvider>>,
    pub(crate) query_processors: Vec<Arc<dyn query::QueryProcessor>>,
    pub(crate) data_types: Vec<Arc<dyn data_type::CustomType>>,
}

impl Registrar {
    /// Registers scalar functions (evaluated once per batch).
    pub fn scalar_functions(&mut self, functions: Vec<Box<dyn ScalarFunction>>) -> &mut Self {
        self.scalar.extend(functions);
        self
    }

    /// Registers aggregate functions.
    pub fn aggregate_functions(&mut self, functions: Vec<Box<dyn AggregateFunction>>) -> &mut Self {
        self.aggregate.extend(functions);
        self
    }

    /// Registers table functions (used in `FROM`).
    pub fn table_functions(&mut self, functions: Vec<Box<dyn TableFunction>>) -> &mut Self {
        self.table.extend(functions);
        self
    }

    /// The storage engines registered so far (for a plugin's own tests).
    pub fn registered_engines(&self) -> &[Arc<dyn storage::StorageEngine>] {
        &self.engines
    }

    /// Registers storage engines (`CREATE TABLE ... USING name`).
    pub fn storage_engines(&mut self, engines: Vec<Arc<dyn storage::StorageEngine>>) -> &mut Self {
        self.engines.extend(engines);
        self
    }

    /// Registers authentication providers (named by the server's `[[auth.rules]]`).
    pub fn auth_providers(&mut self, providers: Vec<Arc<dyn auth::AuthProvider>>) -> &mut Self {
        self.auth_providers.extend(providers);
        self
    }

    /// The authentication providers registered so far (for a plugin's own tests).
    pub fn registered_auth_providers(&self) -> &[Arc<dyn auth::AuthProvider>] {
        &self.auth_providers
    }

    /// Registers query processors (statement hooks and plan rewrites, `phantomdb.query/1`).
    pub fn query_processors(
        &mut self,
        processors: Vec<Arc<dyn query::QueryProcessor>>,
    ) -> &mut Self {
        self.query_processors.extend(processors);
        self
    }

    /// Registers custom data types (`phantomdb.types/1`).
    pub fn data_types(&mut self, types: Vec<Arc<dyn data_type::CustomType>>) -> &mut Self {
        self.data_types.extend(types);
        self
    }

    /// The data types registered so far (for a plugin's own tests).
    pub fn registered_data_types(&self) -> &[Arc<dyn data_type::CustomType>] {
        &self.data_types
    }

    /// The query processors registered so far (for a plugin's own tests).
    pub fn registered_query_processors(&self) -> &[Arc<dyn query::QueryProcessor>] {
        &self.query_processors
    }
}

/// A vectorised scalar function. Called concurrently from many threads.
pub trait ScalarFunction: Send + Sync + 'static {
    /// SQL name (lower case).
    fn name(&self) -> &str;
    /// One-line description.
    fn description(&self) -> &str {
        ""
    }
    /// Argument and return types.
    fn signature(&self) -> Signature;
    /// Evaluates one batch. `args` match the signature and all have `num_rows` rows; the result
    /// must have `num_rows` rows of the declared return type.
    fn invoke(&self, args: &[ArrayRef], num_rows: usize) -> Result<ArrayRef, String>;
}

/// An aggregate function: a factory of [`Accumulator`]s.
pub trait AggregateFunction: Send + Sync + 'static {
    /// SQL name (lower case).
    fn name(&self) -> &str;
    /// One-line description.
    fn description(&self) -> &str {
        ""
    }
    /// Argument and return types.
    fn signature(&self) -> Signature;
    /// Types of the intermediate state columns (see [`Accumulator::state`]).
    fn state_types(&self) -> Vec<ValueType>;
    /// A fresh accumulator.
    fn create_accumulator(&self) -> Result<Box<dyn Accumulator>, String>;
}

/// Per-group state of an aggregate. Used by one thread at a time (but may move between threads).
pub trait Accumulator: Send + 'static {
    /// Adds a batch of argument rows.
    fn update(&mut self, args: &[ArrayRef]) -> Result<(), String>;
    /// Merges partial states: one array per state column, each with one row per partial state.
    fn merge(&mut self, states: &[ArrayRef]) -> Result<(), String>;
    /// The current state: one one-row array per state column, of the declared state types.
    fn state(&mut self) -> Result<Vec<ArrayRef>, String>;
    /// The final value: a one-row array of the declared return type.
    fn evaluate(&mut self) -> Result<ArrayRef, String>;
}

/// Schema and batches returned by a table function.
pub type TableOutput = (SchemaRef, Vec<RecordBatch>);

/// A table function: literal arguments in, a table out.
pub trait TableFunction: Send + Sync + 'static {
    /// SQL name (lower case).
    fn name(&self) -> &str;
    /// One-line description.
    fn description(&self) -> &str {
        ""
    }
    /// Argument types (use [`Signature::table`]).
    fn signature(&self) -> Signature;
    /// Produces the table for the given literal arguments.
    fn call(&self, args: &[Literal]) -> Result<TableOutput, String>;
}

/// A literal argument of a table function.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// SQL NULL.
    Null,
    /// Boolean.
    Boolean(bool),
    /// Any signed integer type, Date32 (days) and TimestampMicrosecond (µs).
    Int(i64),
    /// Any unsigned integer type.
    UInt(u64),
    /// Float32 or Float64.
    Float(f64),
    /// Utf8.
    Utf8(String),
    /// Binary or FixedSizeBinary.
    Binary(Vec<u8>),
}

impl Literal {
    /// The text, if this is a `Utf8` literal.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Literal::Utf8(s) => Some(s),
            _ => None,
        }
    }

    /// The value as i64, if integral and in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Literal::Int(v) => Some(*v),
            Literal::UInt(v) => i64::try_from(*v).ok(),
            _ => None,
        }
    }

    /// The value as f64, if numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Literal::Int(v) => Some(*v as f64),
            Literal::UInt(v) => Some(*v as f64),
            Literal::Float(v) => Some(*v),
            _ => None,
        }
    }

    /// Row `row` of `array` as a literal.
    pub fn from_array(array: &dyn Array, row: usize) -> Result<Literal, String> {
        use arrow_array::cast::AsArray;
        use arrow_array::types::*;
        use arrow_schema::{DataType, TimeUnit};
        if row >= array.len() {
            return Err(format!(
                "row {row} out of bounds for an array of {} rows",
                array.len()
            ));
        }
        if array.is_null(row) {
            return Ok(Literal::Null);
        }
        Ok(match array.data_type() {
            DataType::Null => Literal::Null,
            DataType::Boolean => Literal::Boolean(array.as_boolean().value(row)),
            DataType::Int8 => Literal::Int(array.as_primitive::<Int8Type>().value(row).into()),
            DataType::Int16 => Literal::Int(array.as_primitive::<Int16Type>().value(row).into()),
            DataType::Int32 => Literal::Int(array.as_primitive::<Int32Type>().value(row).into()),
            DataType::Int64 => Literal::Int(array.as_primitive::<Int64Type>().value(row)),
            DataType::UInt8 => Literal::UInt(array.as_primitive::<UInt8Type>().value(row).into()),
            DataType::UInt16 => Literal::UInt(array.as_primitive::<UInt16Type>().value(row).into()),
            DataType::UInt32 => Literal::UInt(array.as_primitive::<UInt32Type>().value(row).into()),
            DataType::UInt64 => Literal::UInt(array.as_primitive::<UInt64Type>().value(row)),
            DataType::Float32 => {
                Literal::Float(array.as_primitive::<Float32Type>().value(row).into())
            }
            DataType::Float64 => Literal::Float(array.as_primitive::<Float64Type>().value(row)),
            DataType::Utf8 => Literal::Utf8(array.as_string::<i32>().value(row).to_string()),
            DataType::LargeUtf8 => Literal::Utf8(array.as_string::<i64>().value(row).to_string()),
            DataType::Utf8View => Literal::Utf8(array.as_string_view().value(row).to_string()),
            DataType::Binary => Literal::Binary(array.as_binary::<i32>().value(row).to_vec()),
            DataType::FixedSizeBinary(_) => {
                Literal::Binary(array.as_fixed_size_binary().value(row).to_vec())
            }
            DataType::Date32 => Literal::Int(array.as_primitive::<Date32Type>().value(row).into()),
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                Literal::Int(array.as_primitive::<TimestampMicrosecondType>().value(row))
            }
            other => return Err(format!("unsupported literal type {other}")),
        })
    }
}

/// A [`ScalarFunction`] made from a closure; see [`scalar_fn`].
struct ClosureScalar<F> {
    name: String,
    signature: Signature,
    f: F,
}

impl<F> ScalarFunction for ClosureScalar<F>
where
    F: Fn(&[ArrayRef], usize) -> Result<ArrayRef, String> + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> Signature {
        self.signature.clone()
    }
    fn invoke(&self, args: &[ArrayRef], num_rows: usize) -> Result<ArrayRef, String> {
        (self.f)(args, num_rows)
    }
}

/// Builds a scalar function from a name, a signature and a closure `(args, num_rows) -> array`.
pub fn scalar_fn<F>(name: &str, signature: Signature, f: F) -> Box<dyn ScalarFunction>
where
    F: Fn(&[ArrayRef], usize) -> Result<ArrayRef, String> + Send + Sync + 'static,
{
    Box::new(ClosureScalar {
        name: name.to_string(),
        signature,
        f,
    })
}

/// Sends a message to the host's log (no-op if the host gave no log callback).
/// `level` is one of [`abi::log_level`].
pub fn host_log(level: u32, message: &str) {
    runtime::host_log(level, message)
}

/// Convenience: wraps an array in an `Arc`.
pub fn array_ref<A: Array + 'static>(a: A) -> ArrayRef {
    Arc::new(a)
}

/// Exports a plugin: emits the manifest (in the `.phantomdb_plugin` section) and the
/// `phantomdb_plugin_entry` symbol.
///
/// ```ignore
/// phantomdb_plugin! {
///     name: "math_functions",
///     version: env!("CARGO_PKG_VERSION"),
///     description: "Number theory functions",
///     host_version: ">=0.1, <0.2",
///     plugin: MathPlugin::default(),
/// }
/// ```
///
/// A plugin that adds storage engines says so with `plugin_type: Storage` after `host_version`
/// (the default is `Functions`), one that adds authentication providers with
/// `plugin_type: Authentication`; `SHOW PLUGINS` shows the kinds it registered.
///
/// A further form takes a ready [`abi::PluginManifest`] expression (a `const` expression), for
/// tests that need an unusual manifest: `phantomdb_plugin! { manifest: ..., plugin: ... }`.
#[macro_export]
macro_rules! phantomdb_plugin {
    (
        name: $name:expr,
        version: $version:expr,
        description: $description:expr,
        host_version: $host_req:expr,
        plugin: $plugin:expr $(,)?
    ) => {
        $crate::phantomdb_plugin! {
            name: $name,
            version: $version,
            description: $description,
            host_version: $host_req,
            plugin_type: Functions,
            plugin: $plugin,
        }
    };
    (
        name: $name:expr,
        version: $version:expr,
        description: $description:expr,
        host_version: $host_req:expr,
        plugin_type: $plugin_type:ident,
        plugin: $plugin:expr $(,)?
    ) => {
        $crate::phantomdb_plugin! {
            manifest: $crate::abi::PluginManifest::new(
                $crate::abi::PluginType::$plugin_type,
                $name,
                $version,
                $host_req,
                $description,
            ),
            plugin: $plugin,
        }
    };
    (
        manifest: $manifest:expr,
        plugin: $plugin:expr $(,)?
    ) => {
        /// The plugin manifest, embedded in the library for inspection without loading it.
        #[used]
        #[cfg_attr(not(target_os = "macos"), unsafe(link_section = ".phantomdb_plugin"))]
        #[cfg_attr(target_os = "macos", unsafe(link_section = "__DATA,__phdb_plugin"))]
        pub static PHANTOMDB_PLUGIN_MANIFEST: $crate::abi::PluginManifest = $manifest;

        /// The plugin entry point (see `phantomdb_plugin_abi::PluginEntryFn`).
        ///
        /// # Safety
        /// `host` must be null or point to a valid `HostApi` that lives forever.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn phantomdb_plugin_entry(
            host: *const $crate::abi::HostApi,
        ) -> *const $crate::abi::PluginVTable {
            // SAFETY: forwarded contract of this function.
            unsafe {
                $crate::__private::entry(host, &PHANTOMDB_PLUGIN_MANIFEST, || {
                    let plugin: ::std::boxed::Box<dyn $crate::Plugin> =
                        ::std::boxed::Box::new($plugin);
                    plugin
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int32Array, StringArray};

    #[test]
    fn literals_from_arrays() {
        let a = Int32Array::from(vec![Some(5), None]);
        assert_eq!(Literal::from_array(&a, 0), Ok(Literal::Int(5)));
        assert_eq!(Literal::from_array(&a, 1), Ok(Literal::Null));
        assert!(Literal::from_array(&a, 2).is_err());
        let s = StringArray::from(vec!["x"]);
        let lit = Literal::from_array(&s, 0).expect("utf8");
        assert_eq!(lit.as_str(), Some("x"));
        assert_eq!(Literal::Int(3).as_f64(), Some(3.0));
    }
}
