//! `SET`, `SHOW` and `RESET` of PhantomDB's settings and custom keys; DataFusion's own
//! options (`datafusion.*`) go on to DataFusion.

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, Ident, ObjectName, Value as SqlValue};

use super::settings::{is_engine_setting, unrecognized};
use super::Connection;
use crate::catalog::DEFAULT_ENGINE_SETTING;
use crate::error::{Error, Result};
use crate::result::ResultSet;
use crate::sql::normalize_ident;

/// A setting's name as written (`app.tenant`), normalized; `None` for DataFusion's options,
/// which DataFusion handles itself.
pub(super) fn own_setting(parts: &[Ident]) -> Option<String> {
    let name = parts
        .iter()
        .map(normalize_ident)
        .collect::<Vec<_>>()
        .join(".");
    let engine = is_engine_setting(&name) || name == "timezone" || name == "time.zone";
    (!engine && name != "all").then_some(name)
}

/// The parts of a dotted name.
pub(super) fn name_parts(name: &ObjectName) -> Vec<Ident> {
    name.0
        .iter()
        .filter_map(|p| p.as_ident().cloned())
        .collect()
}

impl Connection {
    /// `SET name = value` / `SET name TO value`; `SET name = DEFAULT` resets.
    pub(super) fn set_setting(&self, name: &str, values: &[SqlExpr]) -> Result<ResultSet> {
        let [value] = values else {
            return Err(Error::Sql(format!("SET {name} takes one value")));
        };
        let value = match value {
            SqlExpr::Value(v) => match &v.value {
                SqlValue::SingleQuotedString(s) | SqlValue::DoubleQuotedString(s) => s.clone(),
                SqlValue::Number(n, _) => n.to_string(),
                SqlValue::Boolean(b) => b.to_string(),
                other => other.to_string(),
            },
            SqlExpr::Identifier(i) if i.value.eq_ignore_ascii_case("default") => {
                return self.reset_setting(name);
            }
            SqlExpr::Identifier(i) => i.value.clone(),
            other => other.to_string(),
        };
        let value = self.settings.set(name, &value)?;
        self.apply_setting(name, &value);
        Ok(ResultSet::empty())
    }

    /// `RESET name`.
    pub(super) fn reset_setting(&self, name: &str) -> Result<ResultSet> {
        if let Some(value) = self.settings.reset(name)? {
            self.apply_setting(name, &value);
        }
        Ok(ResultSet::empty())
    }

    /// `SHOW name`: one row, one column named after the setting.
    pub(super) async fn show_setting(&self, name: &str) -> Result<ResultSet> {
        let value = if name == DEFAULT_ENGINE_SETTING {
            Some(self.catalog().await?.default_engine().to_string())
        } else {
            self.settings.get(name)
        };
        let value = value.ok_or_else(|| unrecognized(name))?;
        let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec![value]))],
        )?;
        Ok(ResultSet::rows(schema, vec![batch]))
    }

    /// Settings the session itself acts on.
    fn apply_setting(&self, name: &str, value: &str) {
        if name == "memory_limit" {
            if let Ok(bytes) = value.parse::<usize>() {
                self.memory_cap
                    .store(bytes, std::sync::atomic::Ordering::SeqCst);
                // A sort partition reserves this much up front to merge its spill files: at
                // most an eighth of a small cap, so two partitions leave room to sort in.
                let default =
                    datafusion::config::ExecutionOptions::default().sort_spill_reservation_bytes;
                let reserve = if bytes == 0 {
                    default
                } else {
                    default.min(bytes / 8)
                };
                let state = self.planner.context().state_ref();
                state
                    .write()
                    .config_mut()
                    .options_mut()
                    .execution
                    .sort_spill_reservation_bytes = reserve;
            }
        }
        if name == "busy_timeout" {
            if let Ok(ms) = value.parse() {
                self.txn
                    .set_busy_timeout(std::time::Duration::from_millis(ms));
            }
        }
    }
}
