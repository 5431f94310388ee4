//! Plugin functions over custom types (`phantomdb.functions/2` signatures naming a type): the
//! arguments given for a typed parameter are checked and text is parsed into the type, and a
//! typed result is tagged with the type and its plugin, as a column of the type is.

use datafusion::common::tree_node::Transformed;
use datafusion::common::DFSchema;
use datafusion::logical_expr::expr::{AggregateFunction, ScalarFunction};
use datafusion::logical_expr::Expr;
use phantomdb_plugin_host::FunctionDecl;

use super::typing::{data_type, is_text, sql_name, type_of, Types};
use super::{udf, TypeInfo};
use crate::error::{Error, Result, SqlState};
use crate::plugins::{plugin_aggregate_decl, plugin_scalar_decl};

/// A call of a plugin scalar function, typed (see the module documentation); other calls are
/// returned unchanged.
pub(super) fn scalar_call(
    f: ScalarFunction,
    schema: &DFSchema,
    types: &Types,
) -> Result<Transformed<Expr>> {
    let func = f.func.clone();
    let Some(decl) = plugin_scalar_decl(&func) else {
        return Ok(Transformed::no(Expr::ScalarFunction(f)));
    };
    let args = typed_arguments(decl, f.args, schema, types)?;
    let e = Expr::ScalarFunction(ScalarFunction::new_udf(func.clone(), args.data));
    match decl.return_custom_type() {
        Some(name) => {
            let t = declared_type(decl, name, decl.return_type.as_ref(), types)?;
            Ok(Transformed::yes(udf::retag(t, e)))
        }
        None if args.transformed => Ok(Transformed::yes(e)),
        None => Ok(Transformed::no(e)),
    }
}

/// A call of a plugin aggregate with its typed arguments checked and text parsed (its result's
/// type comes with the aggregate's return field).
pub(super) fn aggregate_call(
    mut f: AggregateFunction,
    schema: &DFSchema,
    types: &Types,
) -> Result<(AggregateFunction, bool)> {
    let func = f.func.clone();
    let Some(decl) = plugin_aggregate_decl(&func) else {
        return Ok((f, false));
    };
    if let Some(name) = decl.return_custom_type() {
        declared_type(decl, name, decl.return_type.as_ref(), types)?;
    }
    let args = typed_arguments(decl, std::mem::take(&mut f.params.args), schema, types)?;
    f.params.args = args.data;
    Ok((f, args.transformed))
}

/// The loaded type `name` a signature of `decl` names, checked against the storage type the
/// signature gives it.
fn declared_type<'a>(
    decl: &FunctionDecl,
    name: &str,
    declared_storage: Option<&arrow::datatypes::DataType>,
    types: &Types<'a>,
) -> Result<&'a TypeInfo> {
    let t = types.named(name).ok_or_else(|| {
        Error::Plugin(
            SqlState::UndefinedObject,
            format!(
                "function {} uses type {name}, which no loaded plugin provides",
                decl.name
            ),
        )
    })?;
    match declared_storage {
        Some(storage) if storage != &t.storage => Err(Error::Plugin(
            SqlState::DatatypeMismatch,
            format!(
                "function {} declares type {name} as {storage}, but type {name} (plugin {}) is \
                 stored as {}",
                decl.name, t.plugin, t.storage
            ),
        )),
        _ => Ok(t),
    }
}

/// The arguments of a call of `decl`: for each custom-typed parameter, a value of the type
/// stays, text is parsed into the type, NULL stays, anything else is refused (42883).
fn typed_arguments(
    decl: &FunctionDecl,
    args: Vec<Expr>,
    schema: &DFSchema,
    types: &Types,
) -> Result<Transformed<Vec<Expr>>> {
    let mut changed = false;
    let mut out = Vec::with_capacity(args.len());
    let shown: Vec<String> = args
        .iter()
        .map(|a| match type_of(a, schema, types) {
            Ok(Some(t)) => t.name.clone(),
            _ => data_type(a, schema).map_or_else(|| "unknown".into(), |t| sql_name(&t)),
        })
        .collect();
    for (i, arg) in args.into_iter().enumerate() {
        let Some(name) = decl.arg_custom_type(i) else {
            out.push(arg);
            continue;
        };
        let declared = decl.arg_type(i);
        let t = declared_type(decl, name, declared, types)?;
        let refused = || {
            Error::Plugin(
                SqlState::UndefinedFunction,
                format!(
                    "function {}({}) does not exist: argument {} must be {name}",
                    decl.name,
                    shown.join(", "),
                    i + 1
                ),
            )
        };
        match type_of(&arg, schema, types)? {
            Some(given) if given.name == t.name => out.push(arg),
            Some(_) => return Err(refused()),
            None => match data_type(&arg, schema) {
                Some(given) if is_text(&given) => {
                    out.push(udf::parse(t, arg));
                    changed = true;
                }
                Some(arrow::datatypes::DataType::Null) => out.push(arg),
                _ => return Err(refused()),
            },
        }
    }
    Ok(if changed {
        Transformed::yes(out)
    } else {
        Transformed::no(out)
    })
}
