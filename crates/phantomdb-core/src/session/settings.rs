//! A session's settings: `SET name = value`, `SHOW name`, `RESET name`, `current_setting()`.
//!
//! Three kinds of names, as in PostgreSQL:
//! * PhantomDB's own settings ([`KNOWN`]), checked when set, with defaults;
//! * custom keys with a dot (`app.tenant`), free-form text for applications (row-level
//!   security policies and audit hooks read them);
//! * DataFusion's options (`datafusion.*`), which DataFusion itself keeps.
//!
//! Later settings (statement timeout, memory limit, search path) are one more [`KNOWN`] row.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::error::{Error, Result, SqlState};

/// A PhantomDB setting: its name, its default, and how a value is checked and normalized.
pub(crate) struct KnownSetting {
    pub(crate) name: &'static str,
    pub(crate) default: &'static str,
    pub(crate) description: &'static str,
    check: fn(&str) -> std::result::Result<String, String>,
}

/// PhantomDB's session settings.
pub(crate) const KNOWN: &[KnownSetting] = &[
    KnownSetting {
        name: "application_name",
        default: "",
        description: "the application's name, for logs and the server's session list",
        check: |v| Ok(v.to_string()),
    },
    KnownSetting {
        name: "busy_timeout",
        default: "5000",
        description: "milliseconds a write waits for another transaction's write lock",
        check: |v| {
            v.trim()
                .parse::<u64>()
                .map(|ms| ms.to_string())
                .map_err(|_| "expects a whole number of milliseconds".to_string())
        },
    },
    KnownSetting {
        name: "memory_limit",
        default: "0",
        description:
            "bytes this session's queries may hold (e.g. '2GB'); 0: only the process limit",
        check: |v| crate::memory::parse_size(v).map(|bytes| bytes.to_string()),
    },
    KnownSetting {
        name: "statement_timeout",
        default: "0",
        description: "milliseconds a statement may run before it is canceled (57014); 0: no limit",
        check: |v| duration_ms(v).map(|ms| ms.to_string()),
    },
];

/// A duration as PostgreSQL writes it (`'5s'`, `'250ms'`, `'10min'`; a bare number is
/// milliseconds), for embedders' own configuration (the server's `phantomdb.toml`).
pub fn parse_duration(value: &str) -> crate::error::Result<std::time::Duration> {
    duration_ms(value)
        .map(std::time::Duration::from_millis)
        .map_err(|why| {
            crate::error::Error::Data(
                crate::error::SqlState::InvalidParameterValue,
                format!("invalid duration {value:?}: {why}"),
            )
        })
}

/// A duration as PostgreSQL writes it: a number of milliseconds, or a number with a unit
/// (`ms`, `s`, `min`, `h`, `d`), e.g. `'5s'`, `'250ms'`.
pub(crate) fn duration_ms(value: &str) -> std::result::Result<u64, String> {
    let v = value.trim().to_ascii_lowercase();
    let split = v
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| "expects a duration such as 5000, '5s' or '250ms'".to_string())?;
    let scale = match unit.trim() {
        "" | "ms" => 1.0,
        "s" => 1_000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        other => return Err(format!("unknown unit \"{other}\" (ms, s, min, h, d)")),
    };
    let ms = number * scale;
    if !ms.is_finite() || ms < 0.0 || ms > u64::MAX as f64 {
        return Err("out of range".into());
    }
    Ok(ms.round() as u64)
}

/// Whether DataFusion keeps this setting.
pub(crate) fn is_engine_setting(name: &str) -> bool {
    name.starts_with("datafusion.")
}

/// The values of one session's settings, shared with its `current_setting()` function.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionSettings(Arc<RwLock<BTreeMap<String, String>>>);

impl SessionSettings {
    /// Sets a PhantomDB setting (checked) or a custom key.
    pub(crate) fn set(&self, name: &str, value: &str) -> Result<String> {
        let name = name.to_ascii_lowercase();
        let value = match KNOWN.iter().find(|k| k.name == name) {
            Some(known) => (known.check)(value).map_err(|why| {
                Error::Data(
                    SqlState::InvalidParameterValue,
                    format!("invalid value for parameter \"{name}\": \"{value}\" ({why})"),
                )
            })?,
            None if name.contains('.') => value.to_string(),
            None => return Err(unrecognized(&name)),
        };
        self.0.write().insert(name, value.clone());
        Ok(value)
    }

    /// The value of a PhantomDB setting or custom key; `None` when it was never set (custom
    /// keys) or does not exist.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_lowercase();
        if let Some(v) = self.0.read().get(&name) {
            return Some(v.clone());
        }
        KNOWN
            .iter()
            .find(|k| k.name == name)
            .map(|k| k.default.to_string())
    }

    /// Back to the default (custom keys: unset). Returns the value now in force.
    pub(crate) fn reset(&self, name: &str) -> Result<Option<String>> {
        let name = name.to_ascii_lowercase();
        if !name.contains('.') && !KNOWN.iter().any(|k| k.name == name) {
            return Err(unrecognized(&name));
        }
        self.0.write().remove(&name);
        Ok(self.get(&name))
    }

    /// Every PhantomDB setting and every custom key set, with its value.
    pub(crate) fn all(&self) -> Vec<(String, String)> {
        let mut out: BTreeMap<String, String> = KNOWN
            .iter()
            .map(|k| (k.name.to_string(), k.default.to_string()))
            .collect();
        out.extend(self.0.read().iter().map(|(k, v)| (k.clone(), v.clone())));
        out.into_iter().collect()
    }
}

/// The error for a name that is no setting (`42704`).
pub(crate) fn unrecognized(name: &str) -> Error {
    Error::Catalog(
        SqlState::UndefinedObject,
        format!("unrecognized configuration parameter \"{name}\""),
    )
}
