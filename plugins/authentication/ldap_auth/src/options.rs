//! The `ldap` provider's options (a rule's `options` table), read and checked in one place:
//! when the rules load and again at every login.

use std::path::PathBuf;
use std::time::Duration;

use phantomdb_plugin_sdk::prelude::AuthOptions;
use serde::Deserialize;

/// What the rule says about the directory.
#[derive(Debug, Clone, PartialEq)]
pub struct LdapOptions {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    pub starttls: bool,
    /// PEM file of the CA that signed the directory's certificate (else the system's roots).
    pub ca_file: Option<PathBuf>,
    /// Bounds connecting and each operation.
    pub timeout: Duration,
    /// Simple bind: the user's DN, `%u` standing for the user name.
    pub user_dn: Option<String>,
    /// Search then bind: where to search.
    pub search_base: Option<String>,
    /// Search then bind: the filter, `%u` standing for the user name.
    pub search_filter: String,
    /// Search then bind: the DN to search as (else anonymously).
    pub bind_dn: Option<String>,
    /// Password of `bind_dn`.
    pub bind_password: Option<String>,
    /// Only members of this group may log in.
    pub group_dn: Option<String>,
    /// The group's attribute holding member DNs.
    pub member_attribute: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    url: String,
    #[serde(default)]
    starttls: bool,
    ca_file: Option<PathBuf>,
    timeout: Option<serde_json::Value>,
    user_dn: Option<String>,
    search_base: Option<String>,
    search_filter: Option<String>,
    bind_dn: Option<String>,
    bind_password: Option<String>,
    group_dn: Option<String>,
    member_attribute: Option<String>,
}

impl LdapOptions {
    /// Reads and checks a rule's options.
    pub fn from_json(options: &AuthOptions) -> Result<Self, String> {
        let raw: Raw = serde_json::from_value(serde_json::Value::Object(options.clone()))
            .map_err(|e| format!("ldap options: {e}"))?;
        let scheme_ok = raw.url.starts_with("ldap://") || raw.url.starts_with("ldaps://");
        if !scheme_ok {
            return Err(format!(
                "ldap options: url \"{}\" must start with ldap:// or ldaps://",
                raw.url
            ));
        }
        if raw.starttls && raw.url.starts_with("ldaps://") {
            return Err(
                "ldap options: starttls is for ldap:// URLs (ldaps:// is TLS already)".into(),
            );
        }
        match (&raw.user_dn, &raw.search_base) {
            (Some(_), Some(_)) | (None, None) => {
                return Err("ldap options: give user_dn (simple bind) or search_base (search then bind), not both".into())
            }
            (Some(t), None) if !t.contains("%u") => {
                return Err(format!("ldap options: user_dn \"{t}\" has no %u"))
            }
            _ => {}
        }
        if raw.user_dn.is_some()
            && (raw.search_filter.is_some() || raw.bind_dn.is_some() || raw.bind_password.is_some())
        {
            return Err(
                "ldap options: search_filter, bind_dn and bind_password go with search_base".into(),
            );
        }
        if raw.bind_password.is_some() && raw.bind_dn.is_none() {
            return Err("ldap options: bind_password needs bind_dn".into());
        }
        let search_filter = raw.search_filter.unwrap_or_else(|| "(uid=%u)".into());
        if !search_filter.contains("%u") {
            return Err(format!(
                "ldap options: search_filter \"{search_filter}\" has no %u"
            ));
        }
        if ldap3::parse_filter(search_filter.replace("%u", "x")).is_err() {
            return Err(format!(
                "ldap options: search_filter \"{search_filter}\" is not an LDAP filter"
            ));
        }
        let member_attribute = raw.member_attribute.unwrap_or_else(|| "member".into());
        if member_attribute.is_empty()
            || !member_attribute
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';')
        {
            return Err(format!(
                "ldap options: member_attribute \"{member_attribute}\" is not an attribute name"
            ));
        }
        Ok(Self {
            url: raw.url,
            starttls: raw.starttls,
            ca_file: raw.ca_file,
            timeout: timeout(raw.timeout)?,
            user_dn: raw.user_dn,
            search_base: raw.search_base,
            search_filter,
            bind_dn: raw.bind_dn,
            bind_password: raw.bind_password,
            group_dn: raw.group_dn,
            member_attribute,
        })
    }
}

/// `timeout`: seconds (a number) or text such as `"5s"`, `"500ms"`; 5 s when absent.
fn timeout(value: Option<serde_json::Value>) -> Result<Duration, String> {
    let bad = |v: &dyn std::fmt::Display| {
        format!("ldap options: timeout {v} is not a duration (seconds, or \"5s\", \"500ms\")")
    };
    let duration = match value {
        None => return Ok(Duration::from_secs(5)),
        Some(serde_json::Value::Number(n)) => n
            .as_f64()
            .filter(|s| *s > 0.0 && s.is_finite() && *s < 86_400.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| bad(&n))?,
        Some(serde_json::Value::String(s)) => {
            let t = s.trim();
            let (number, unit) = match t.strip_suffix("ms") {
                Some(n) => (n, 0.001),
                None => (t.strip_suffix('s').unwrap_or(t), 1.0),
            };
            number
                .trim()
                .parse::<f64>()
                .ok()
                .map(|n| n * unit)
                .filter(|s| *s > 0.0 && s.is_finite() && *s < 86_400.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| bad(&s))?
        }
        Some(other) => return Err(bad(&other)),
    };
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<LdapOptions, String> {
        let value: serde_json::Value = serde_json::from_str(json).expect("json");
        LdapOptions::from_json(value.as_object().expect("object"))
    }

    #[test]
    fn simple_bind_and_search_options() {
        let o = read(
            r#"{"url": "ldap://127.0.0.1:389", "user_dn": "uid=%u,dc=x", "timeout": "250ms"}"#,
        )
        .expect("simple bind");
        assert_eq!(o.timeout, Duration::from_millis(250));
        assert_eq!(o.search_filter, "(uid=%u)");
        let o = read(r#"{"url": "ldaps://h", "search_base": "dc=x", "search_filter": "(&(objectClass=person)(cn=%u))", "bind_dn": "cn=admin,dc=x", "bind_password": "pw", "group_dn": "cn=g,dc=x", "timeout": 2}"#)
            .expect("search then bind");
        assert_eq!(o.timeout, Duration::from_secs(2));
        assert_eq!(o.member_attribute, "member");
    }

    #[test]
    fn mistakes_are_refused() {
        for (json, needle) in [
            (r#"{"user_dn": "uid=%u"}"#, "url"),
            (r#"{"url": "http://h", "user_dn": "uid=%u"}"#, "ldap://"),
            (r#"{"url": "ldap://h"}"#, "not both"),
            (
                r#"{"url": "ldap://h", "user_dn": "uid=%u", "search_base": "dc=x"}"#,
                "not both",
            ),
            (r#"{"url": "ldap://h", "user_dn": "uid=alice"}"#, "no %u"),
            (
                r#"{"url": "ldaps://h", "starttls": true, "user_dn": "uid=%u"}"#,
                "starttls",
            ),
            (
                r#"{"url": "ldap://h", "search_base": "dc=x", "search_filter": "uid=%u)("}"#,
                "not an LDAP filter",
            ),
            (
                r#"{"url": "ldap://h", "search_base": "dc=x", "bind_password": "pw"}"#,
                "needs bind_dn",
            ),
            (
                r#"{"url": "ldap://h", "user_dn": "uid=%u", "timeout": "soon"}"#,
                "timeout",
            ),
            (
                r#"{"url": "ldap://h", "user_dn": "uid=%u", "colour": "red"}"#,
                "colour",
            ),
        ] {
            let e = read(json).expect_err(json);
            assert!(e.contains(needle), "{json}: {e}");
        }
    }
}
