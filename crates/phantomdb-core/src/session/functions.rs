//! SQL functions that read the session: `current_setting(name [, missing_ok])`,
//! `current_user`, `session_user`, `current_database()`, and the table function
//! `phantomdb_settings()`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use arrow::datatypes::DataType;
use datafusion::catalog::{TableFunctionImpl, TableProvider};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use super::settings::{is_engine_setting, unrecognized, SessionSettings, KNOWN};

/// Registers the session functions on a connection's DataFusion context.
pub(crate) fn register(ctx: &SessionContext, settings: SessionSettings, user: &str, db: &str) {
    ctx.register_udf(ScalarUDF::new_from_impl(CurrentSetting::new(
        settings.clone(),
    )));
    for name in ["current_user", "session_user"] {
        ctx.register_udf(ScalarUDF::new_from_impl(Constant::new(name, user)));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(Constant::new(
        "current_database",
        db,
    )));
    ctx.register_udtf("phantomdb_settings", Arc::new(SettingsTable(settings)));
}

/// `phantomdb_settings()`: PhantomDB's settings and the custom keys set in this session,
/// with their values and descriptions (DataFusion's options are in
/// `information_schema.df_settings`).
#[derive(Debug)]
struct SettingsTable(SessionSettings);

impl TableFunctionImpl for SettingsTable {
    fn call(&self, args: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return plan_err!("phantomdb_settings() takes no arguments");
        }
        let rows = self
            .0
            .all()
            .into_iter()
            .map(|(name, value)| {
                let description = KNOWN
                    .iter()
                    .find(|k| k.name == name)
                    .map_or("custom setting", |k| k.description)
                    .to_string();
                vec![name, value, description]
            })
            .collect();
        crate::plugins::tables::table(&["name", "value", "description"], rows)
    }
}

/// `current_setting(name [, missing_ok])`: a setting's value as text.
#[derive(Debug)]
struct CurrentSetting {
    settings: SessionSettings,
    signature: Signature,
}

impl CurrentSetting {
    fn new(settings: SessionSettings) -> Self {
        Self {
            settings,
            signature: Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Utf8]),
                    TypeSignature::Exact(vec![DataType::Utf8View]),
                    TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean]),
                    TypeSignature::Exact(vec![DataType::Utf8View, DataType::Boolean]),
                ],
                Volatility::Stable,
            ),
        }
    }

    fn lookup(&self, name: &str, config: &datafusion::config::ConfigOptions) -> Option<String> {
        if is_engine_setting(name) {
            return config
                .entries()
                .into_iter()
                .find(|e| e.key == name)
                .map(|e| e.value.unwrap_or_default());
        }
        self.settings.get(name)
    }
}

impl PartialEq for CurrentSetting {
    fn eq(&self, _: &Self) -> bool {
        // One per connection; two are never compared across connections.
        true
    }
}
impl Eq for CurrentSetting {}
impl std::hash::Hash for CurrentSetting {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "current_setting".hash(state);
    }
}

impl ScalarUDFImpl for CurrentSetting {
    fn name(&self) -> &str {
        "current_setting"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let names = arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
        let names = names.as_string::<i32>();
        let missing_ok: Option<&BooleanArray> = arrays.get(1).map(|a| a.as_boolean());
        let mut out = Vec::with_capacity(names.len());
        for i in 0..names.len() {
            if names.is_null(i) {
                out.push(None);
                continue;
            }
            let name = names.value(i);
            match self.lookup(&name.to_ascii_lowercase(), &args.config_options) {
                Some(v) => out.push(Some(v)),
                None if missing_ok.is_some_and(|m| m.is_valid(i) && m.value(i)) => out.push(None),
                None => return Err(unrecognized(name).into()),
            }
        }
        let array: ArrayRef = Arc::new(StringArray::from(out));
        if args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
            && rows <= 1
        {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &array, 0,
            )?));
        }
        Ok(ColumnarValue::Array(array))
    }
}

/// A function of no arguments whose value is fixed for the session.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Constant {
    name: &'static str,
    value: String,
    signature: Signature,
}

impl Constant {
    fn new(name: &'static str, value: &str) -> Self {
        Self {
            name,
            value: value.to_string(),
            signature: Signature::nullary(Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for Constant {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if !args.args.is_empty() {
            return exec_err!("{}() takes no arguments", self.name);
        }
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
            self.value.clone(),
        ))))
    }
}
