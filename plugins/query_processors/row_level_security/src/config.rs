//! The plugin's configuration: one policy per table, and whether the database owner is
//! subject to them.
//!
//! ```json
//! {"policies": {
//!     "orders": "tenant_id = current_setting('app.tenant')::int",
//!     "notes": {"using": "author = current_user", "check": "author = current_user"}},
//!  "enforce_for_owner": false}
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

/// Session setting that subjects a superuser (the database owner) to the policies:
/// `SET phantomdb.rls_enforce = on`.
pub const ENFORCE_SETTING: &str = "phantomdb.rls_enforce";

/// One table's policy: SQL boolean expressions over the table's columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Which existing rows a statement sees (and so may update or delete).
    pub using: String,
    /// What a new or updated row must satisfy (PostgreSQL's `WITH CHECK`).
    pub check: String,
}

/// The parsed configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Policies by table name (lower case, without schema).
    pub policies: BTreeMap<String, Policy>,
    /// Whether superusers are subject to the policies even without the session setting.
    pub enforce_for_owner: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    policies: BTreeMap<String, RawPolicy>,
    #[serde(default)]
    enforce_for_owner: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPolicy {
    Using(String),
    Both {
        using: String,
        #[serde(default)]
        check: Option<String>,
    },
}

impl Config {
    /// Parses the configuration text (empty: no policies).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let raw: RawConfig = serde_json::from_str(text)
            .map_err(|e| format!("row_level_security: invalid configuration: {e}"))?;
        let mut policies = BTreeMap::new();
        for (table, policy) in raw.policies {
            let (using, check) = match policy {
                RawPolicy::Using(u) => (u.clone(), u),
                RawPolicy::Both { using, check } => {
                    let check = check.unwrap_or_else(|| using.clone());
                    (using, check)
                }
            };
            for (what, sql) in [("using", &using), ("check", &check)] {
                if sql.trim().is_empty() {
                    return Err(format!(
                        "row_level_security: the {what} expression of table {table} is empty"
                    ));
                }
            }
            let key = table_key(&table);
            if policies
                .insert(key.clone(), Policy { using, check })
                .is_some()
            {
                return Err(format!(
                    "row_level_security: table {key} has more than one policy"
                ));
            }
        }
        Ok(Self {
            policies,
            enforce_for_owner: raw.enforce_for_owner,
        })
    }

    /// The policy of a table as a plan names it (`orders`, `public.orders`, `"Orders"`).
    pub fn policy(&self, table: &str) -> Option<&Policy> {
        self.policies.get(&table_key(table))
    }
}

/// A table name without its schema and quotes, in lower case unless it was quoted.
pub fn table_key(name: &str) -> String {
    let last = split_last(name);
    match last.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => last.to_ascii_lowercase(),
    }
}

/// The last dot-separated part of a possibly quoted, qualified name.
fn split_last(name: &str) -> &str {
    let mut in_quotes = false;
    let mut start = 0;
    for (i, c) in name.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            '.' if !in_quotes => start = i + 1,
            _ => {}
        }
    }
    name[start..].trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_policy_forms() {
        let c = Config::parse(
            r#"{"policies": {"Orders": "tenant_id = 1",
                "notes": {"using": "a = 1", "check": "a = 2"}}}"#,
        )
        .unwrap();
        assert_eq!(c.policy("public.orders").unwrap().check, "tenant_id = 1");
        assert_eq!(c.policy("notes").unwrap().check, "a = 2");
        assert!(c.policy("\"Orders\"").is_none());
        assert!(!c.enforce_for_owner);
    }

    #[test]
    fn refuses_bad_configurations() {
        assert!(Config::parse("{").is_err());
        assert!(Config::parse(r#"{"policy": {}}"#).is_err());
        assert!(Config::parse(r#"{"policies": {"t": ""}}"#).is_err());
        assert!(Config::parse(r#"{"policies": {"t": "a", "T": "b"}}"#).is_err());
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }
}
