//! The plugin's configuration:
//!
//! ```json
//! {"path": "/var/log/phantomdb/audit.jsonl", "deny": ["(?i)^\\s*drop\\s+table"]}
//! ```
//!
//! `path`: the file every statement is appended to, one JSON line each (omitted: nothing is
//! written). `deny`: regular expressions; a statement whose text matches one is refused
//! before it is planned (SQLSTATE 42501).

use regex::Regex;
use serde::Deserialize;

/// The parsed configuration.
#[derive(Debug, Default)]
pub struct Config {
    /// The log file.
    pub path: Option<String>,
    /// The deny-list, compiled.
    pub deny: Vec<Regex>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    deny: Vec<String>,
}

impl Config {
    /// Parses the configuration text (empty: no file, no deny-list).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let raw: RawConfig = serde_json::from_str(text)
            .map_err(|e| format!("audit_log: invalid configuration: {e}"))?;
        let deny = raw
            .deny
            .iter()
            .map(|p| {
                Regex::new(p)
                    .map_err(|e| format!("audit_log: deny pattern \"{p}\" is invalid: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if raw.path.as_deref().is_some_and(|p| p.trim().is_empty()) {
            return Err("audit_log: path is empty".into());
        }
        Ok(Self {
            path: raw.path,
            deny,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let c = Config::parse(r#"{"path": "/tmp/a.jsonl", "deny": ["(?i)drop"]}"#).unwrap();
        assert_eq!(c.path.as_deref(), Some("/tmp/a.jsonl"));
        assert!(c.deny[0].is_match("DROP TABLE t"));
        assert!(Config::parse(r#"{"deny": ["("]}"#).is_err());
        assert!(Config::parse(r#"{"file": "x"}"#).is_err());
        assert!(Config::parse(r#"{"path": " "}"#).is_err());
        assert!(Config::parse("").unwrap().path.is_none());
    }
}
