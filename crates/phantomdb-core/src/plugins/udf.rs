//! DataFusion wrappers around native plugin functions: one boundary crossing per batch.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{new_null_array, ArrayRef};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::catalog::{TableFunctionImpl, TableProvider};
use datafusion::common::{plan_err, ScalarValue};
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, Expr, ReturnFieldArgs,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use phantomdb_plugin_host::{CallError, FunctionDecl, LoadedPlugin, PluginAccumulator};

/// One loaded generation of a plugin, shared by the wrappers of its functions.
#[derive(Debug)]
pub(crate) struct PluginLease {
    pub(crate) plugin: LoadedPlugin,
    pub(crate) generation: u64,
}

fn call_error(e: CallError) -> DataFusionError {
    DataFusionError::External(Box::new(crate::Error::Plugin(
        crate::SqlState::ExternalRoutineException,
        e.to_string(),
    )))
}

fn signature(decl: &FunctionDecl) -> Signature {
    let volatility = match decl.volatility {
        phantomdb_plugin_host::Volatility::Immutable => Volatility::Immutable,
        phantomdb_plugin_host::Volatility::Stable => Volatility::Stable,
        phantomdb_plugin_host::Volatility::Volatile => Volatility::Volatile,
    };
    // Binary parameters also take the other binary types (a custom type's storage, such as
    // uuid's FixedSizeBinary(16)), which DataFusion's exact signatures do not coerce; custom
    // type parameters take text (parsed by the type's planner rewrite) and NULL.
    let custom = (0..decl.arg_types.len()).any(|i| decl.arg_custom_type(i).is_some());
    if custom || decl.arg_types.contains(&DataType::Binary) {
        Signature::user_defined(volatility)
    } else if decl.variadic && decl.arg_types.len() == 1 {
        Signature::variadic(decl.arg_types.clone(), volatility)
    } else {
        Signature::exact(decl.arg_types.clone(), volatility)
    }
}

/// The argument types a call is coerced to, for functions with Binary or custom-typed
/// parameters (see [`signature`]): the declared types, where each argument's type casts to it
/// or, for a Binary parameter, is any binary or text type. An argument given for a custom type
/// stays as it is: the types rewrite (`types::calls`) parses text into the type and refuses
/// other types before execution.
fn coerce_args(decl: &FunctionDecl, arg_types: &[DataType]) -> Result<Vec<DataType>> {
    let arity_ok = if decl.variadic {
        arg_types.len() + 1 >= decl.arg_types.len()
    } else {
        arg_types.len() == decl.arg_types.len()
    };
    let wrong = || {
        let given: Vec<String> = arg_types.iter().map(ToString::to_string).collect();
        DataFusionError::Plan(format!(
            "no function matches {}({}): expected {}",
            decl.name,
            given.join(", "),
            describe(decl)
        ))
    };
    if !arity_ok {
        return Err(wrong());
    }
    arg_types
        .iter()
        .enumerate()
        .map(|(i, given)| {
            let wanted = decl.arg_type(i).ok_or_else(wrong)?;
            if decl.arg_custom_type(i).is_some() {
                // The types rewrite checks these arguments (with PostgreSQL's message).
                return Ok(if given == &DataType::Null {
                    wanted.clone()
                } else {
                    given.clone()
                });
            }
            let ok = given == wanted
                || given == &DataType::Null
                || if wanted == &DataType::Binary {
                    // Any binary value, or a text's bytes (as DataFusion passes text to Binary).
                    matches!(
                        given,
                        DataType::FixedSizeBinary(_)
                            | DataType::LargeBinary
                            | DataType::BinaryView
                            | DataType::Utf8
                            | DataType::LargeUtf8
                            | DataType::Utf8View
                    )
                } else {
                    arrow::compute::can_cast_types(given, wanted)
                };
            if ok {
                Ok(wanted.clone())
            } else {
                Err(wrong())
            }
        })
        .collect()
}

/// Casts arguments to the declared types (e.g. `Utf8View` columns to the ABI's `Utf8`).
fn conform_args(decl: &FunctionDecl, args: Vec<ArrayRef>) -> Result<Vec<ArrayRef>> {
    args.into_iter()
        .enumerate()
        .map(|(i, a)| match decl.arg_type(i) {
            Some(t) if a.data_type() == &DataType::Null => Ok(new_null_array(t, a.len())),
            Some(t) if a.data_type() != t => Ok(cast(&a, t)?),
            _ => Ok(a),
        })
        .collect()
}

/// Human-readable signature, e.g. `gcd(Int64, Int64) -> Int64`, `uuid_version(uuid) -> Int16`.
pub(crate) fn describe(decl: &FunctionDecl) -> String {
    let mut args: Vec<String> = decl
        .arg_types
        .iter()
        .enumerate()
        .map(|(i, t)| match decl.arg_custom_type(i) {
            Some(name) => name.to_string(),
            None => t.to_string(),
        })
        .collect();
    if decl.variadic {
        args.push("...".into());
    }
    match (&decl.return_type, decl.return_custom_type()) {
        (Some(_), Some(name)) => format!("{}({}) -> {name}", decl.name, args.join(", ")),
        (Some(r), None) => format!("{}({}) -> {r}", decl.name, args.join(", ")),
        (None, _) => format!("{}({}) -> TABLE", decl.name, args.join(", ")),
    }
}

/// The declaration of the plugin function `func` wraps, if it wraps one.
pub(crate) fn plugin_scalar_decl(func: &ScalarUDF) -> Option<&FunctionDecl> {
    let f = func.inner().downcast_ref::<PluginScalar>()?;
    Some(&f.0.decl)
}

/// The declaration of the plugin aggregate `func` wraps, if it wraps one.
pub(crate) fn plugin_aggregate_decl(func: &AggregateUDF) -> Option<&FunctionDecl> {
    let f = func.inner().downcast_ref::<PluginAggregate>()?;
    Some(&f.0.decl)
}

/// One function of one plugin generation: what the DataFusion wrappers share.
#[derive(Debug)]
struct PluginFunction {
    lease: Arc<PluginLease>,
    decl: FunctionDecl,
    signature: Signature,
}

impl PluginFunction {
    fn new(lease: Arc<PluginLease>, decl: FunctionDecl) -> Self {
        let signature = signature(&decl);
        Self {
            lease,
            decl,
            signature,
        }
    }

    fn return_type(&self) -> Result<DataType> {
        self.decl
            .return_type
            .clone()
            .ok_or_else(|| DataFusionError::Plan(format!("{} has no return type", self.decl.name)))
    }

    /// The result field: the return type with its declared metadata (a custom type's name, an
    /// Arrow extension type), so the result is typed wherever DataFusion derives fields.
    fn return_field(&self, name: &str) -> Result<FieldRef> {
        Ok(Arc::new(
            Field::new(name, self.return_type()?, true)
                .with_metadata(self.decl.return_metadata.clone()),
        ))
    }
}

/// Two wrappers are equal when they wrap the same function of the same plugin generation.
impl PartialEq for PluginFunction {
    fn eq(&self, other: &Self) -> bool {
        self.lease.generation == other.lease.generation && self.decl.index == other.decl.index
    }
}
impl Eq for PluginFunction {}
impl Hash for PluginFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.lease.generation.hash(state);
        self.decl.index.hash(state);
    }
}

/// A scalar function of a native plugin.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct PluginScalar(PluginFunction);

impl PluginScalar {
    pub(crate) fn new(lease: Arc<PluginLease>, decl: FunctionDecl) -> Self {
        Self(PluginFunction::new(lease, decl))
    }
}

impl ScalarUDFImpl for PluginScalar {
    fn name(&self) -> &str {
        &self.0.decl.name
    }

    fn signature(&self) -> &Signature {
        &self.0.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        self.0.return_type()
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> Result<FieldRef> {
        self.0.return_field(self.name())
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_args(&self.0.decl, arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .into_iter()
            .map(|a| a.into_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let f = &self.0;
        let arrays = conform_args(&f.decl, arrays)?;
        let out = f
            .lease
            .plugin
            .call_scalar(f.decl.index, &arrays, rows)
            .map_err(call_error)?;
        Ok(ColumnarValue::Array(out))
    }
}

/// An aggregate function of a native plugin.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct PluginAggregate(PluginFunction);

impl PluginAggregate {
    pub(crate) fn new(lease: Arc<PluginLease>, decl: FunctionDecl) -> Self {
        Self(PluginFunction::new(lease, decl))
    }
}

impl AggregateUDFImpl for PluginAggregate {
    fn name(&self) -> &str {
        &self.0.decl.name
    }

    fn signature(&self) -> &Signature {
        &self.0.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        self.0.return_type()
    }

    fn return_field(&self, _arg_fields: &[FieldRef]) -> Result<FieldRef> {
        self.0.return_field(self.name())
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_args(&self.0.decl, arg_types)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let f = &self.0;
        let inner = f
            .lease
            .plugin
            .create_accumulator(f.decl.index)
            .map_err(call_error)?;
        Ok(Box::new(PluginAccumulatorAdapter {
            inner,
            decl: f.decl.clone(),
            _lease: f.lease.clone(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(self
            .0
            .decl
            .state_types
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Arc::new(Field::new(
                    format!("{}[state{i}]", args.name),
                    t.clone(),
                    true,
                ))
            })
            .collect())
    }
}

/// DataFusion's accumulator interface over a plugin accumulator handle.
#[derive(Debug)]
struct PluginAccumulatorAdapter {
    inner: PluginAccumulator,
    decl: FunctionDecl,
    _lease: Arc<PluginLease>,
}

impl Accumulator for PluginAccumulatorAdapter {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let values = conform_args(&self.decl, values.to_vec())?;
        self.inner.update(&values).map_err(call_error)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.inner.merge(states).map_err(call_error)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.inner
            .state()
            .map_err(call_error)?
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect()
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let out = self.inner.evaluate().map_err(call_error)?;
        ScalarValue::try_from_array(&out, 0)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

/// A table function of a native plugin (constant arguments, result materialized).
#[derive(Debug)]
pub(crate) struct PluginTable {
    lease: Arc<PluginLease>,
    decl: FunctionDecl,
}

impl PluginTable {
    pub(crate) fn new(lease: Arc<PluginLease>, decl: FunctionDecl) -> Self {
        Self { lease, decl }
    }
}

impl TableFunctionImpl for PluginTable {
    fn call(&self, exprs: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        if !self.decl.accepts_arity(exprs.len()) {
            return plan_err!(
                "{} takes {} argument(s), got {}",
                self.decl.name,
                self.decl.arg_types.len(),
                exprs.len()
            );
        }
        let mut args = Vec::with_capacity(exprs.len());
        for e in exprs {
            match e {
                Expr::Literal(v, _) => args.push(v.to_array_of_size(1)?),
                other => {
                    return plan_err!(
                        "arguments of table function {} must be constants, got {other}",
                        self.decl.name
                    )
                }
            }
        }
        let args = conform_args(&self.decl, args)?;
        let (schema, batches) = self
            .lease
            .plugin
            .call_table(self.decl.index, &args)
            .map_err(call_error)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
    }
}
