//! Options, locations and object store clients.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, RetryConfig};
use phantomdb_plugin_sdk::Options;

/// Table options (`WITH (...)`), also accepted as plugin configuration defaults.
pub(crate) const TABLE_OPTIONS: &[&str] = &[
    "path",
    "location",
    "endpoint",
    "region",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "allow_http",
    "row_group_size",
];

/// Keys only accepted in the plugin configuration.
pub(crate) const CONFIG_ONLY_OPTIONS: &[&str] = &["cache_size_mb"];

/// Default rows per Parquet row group.
pub(crate) const DEFAULT_ROW_GROUP_SIZE: usize = 64 * 1024;
/// Default file cache size.
pub(crate) const DEFAULT_CACHE_MB: usize = 256;

pub(crate) const MISSING_PATH: &str = "s3_storage needs a path: CREATE TABLE ... USING s3_storage WITH (path = '...') or set path in the plugin configuration";

/// Parses the plugin configuration: a JSON object of options (string, number or boolean
/// values); empty text means no defaults.
pub(crate) fn parse_config(json: &str) -> Result<Options, String> {
    let mut out = Options::new();
    if json.trim().is_empty() {
        return Ok(out);
    }
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| format!("s3_storage: the configuration is not valid JSON: {e}"))?;
    let obj = value
        .as_object()
        .ok_or("s3_storage: the configuration must be a JSON object")?;
    for (k, v) in obj {
        let key = k.to_ascii_lowercase();
        if key == "location" {
            return Err(
                "s3_storage: 'location' is per table; set 'path' in the configuration instead"
                    .to_string(),
            );
        }
        if !TABLE_OPTIONS.contains(&key.as_str()) && !CONFIG_ONLY_OPTIONS.contains(&key.as_str()) {
            return Err(format!(
                "s3_storage: unknown configuration key '{k}' (known: {}, {})",
                TABLE_OPTIONS.join(", "),
                CONFIG_ONLY_OPTIONS.join(", ")
            ));
        }
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Null => continue,
            other => {
                return Err(format!(
                    "s3_storage: configuration key '{k}' must be a string, got {other}"
                ))
            }
        };
        out.insert(key, text);
    }
    if let Some(mb) = out.get("cache_size_mb") {
        mb.parse::<usize>()
            .map_err(|_| format!("s3_storage: cache_size_mb must be a whole number, got '{mb}'"))?;
    }
    Ok(out)
}

/// Checks the user's `WITH (...)` keys.
pub(crate) fn validate_table_options(options: &Options) -> Result<(), String> {
    for k in options.keys() {
        if !TABLE_OPTIONS.contains(&k.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "s3_storage: unknown option '{k}' (known: {})",
                TABLE_OPTIONS.join(", ")
            ));
        }
    }
    row_group_size(options)?;
    parse_bool(options, "allow_http")?;
    Ok(())
}

/// Plugin defaults overlaid with the table's options (keys lower-cased).
pub(crate) fn effective(defaults: &Options, table: &Options) -> Options {
    let mut out = defaults.clone();
    for (k, v) in table {
        out.insert(k.to_ascii_lowercase(), v.clone());
    }
    out
}

pub(crate) fn row_group_size(options: &Options) -> Result<usize, String> {
    match options.get("row_group_size") {
        None => Ok(DEFAULT_ROW_GROUP_SIZE),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "s3_storage: row_group_size must be a positive whole number, got '{v}'"
            )),
        },
    }
}

fn parse_bool(options: &Options, key: &str) -> Result<bool, String> {
    match options.get(key).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) => match v.as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" | "" => Ok(false),
            _ => Err(format!(
                "s3_storage: {key} must be true or false, got '{v}'"
            )),
        },
    }
}

/// Where a table (or a directory of tables) lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scheme {
    Local,
    S3 { bucket: String },
}

/// A parsed `path`/`location`.
#[derive(Debug, Clone)]
pub(crate) struct Url {
    pub scheme: Scheme,
    /// Object path of the directory in its store.
    pub prefix: Path,
    /// The text as given (trailing `/` removed), used to build child locations.
    pub text: String,
}

impl Url {
    pub(crate) fn parse(text: &str) -> Result<Url, String> {
        let trimmed = text.trim();
        let text = if trimmed.len() > 1 {
            trimmed.trim_end_matches('/').to_string()
        } else {
            trimmed.to_string()
        };
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("s3_storage: '{text}' has no bucket name"));
            }
            let prefix = Path::parse(key)
                .map_err(|e| format!("s3_storage: invalid object path in '{text}': {e}"))?;
            return Ok(Url {
                scheme: Scheme::S3 {
                    bucket: bucket.to_string(),
                },
                prefix,
                text,
            });
        }
        let local = if let Some(rest) = text.strip_prefix("file://") {
            rest.to_string()
        } else if text.contains("://") {
            let scheme = text.split("://").next().unwrap_or_default();
            return Err(format!(
                "s3_storage: unsupported location scheme '{scheme}://' in '{text}' (use s3://bucket/prefix, an absolute directory or file:///dir{})",
                if scheme.eq_ignore_ascii_case("hdfs") {
                    "; HDFS is not supported"
                } else {
                    ""
                }
            ));
        } else {
            text.clone()
        };
        if !local.starts_with('/') {
            return Err(format!(
                "s3_storage: path '{text}' must be absolute (/dir or file:///dir) or s3://bucket/prefix"
            ));
        }
        let prefix = Path::from_absolute_path(&local)
            .map_err(|e| format!("s3_storage: invalid directory '{text}': {e}"))?;
        Ok(Url {
            scheme: Scheme::Local,
            prefix,
            text,
        })
    }

    /// The location `<self>/<name>`.
    pub(crate) fn child_text(&self, name: &str) -> String {
        if self.text.ends_with('/') {
            format!("{}{name}", self.text)
        } else {
            format!("{}/{name}", self.text)
        }
    }

    /// The local directory, for a local URL.
    pub(crate) fn local_dir(&self) -> Option<std::path::PathBuf> {
        match self.scheme {
            Scheme::Local => Some(std::path::PathBuf::from(format!("/{}", self.prefix))),
            Scheme::S3 { .. } => None,
        }
    }
}

/// Makes an object store client.
type StoreBuilder = Box<dyn FnOnce() -> Result<Arc<dyn ObjectStore>, String>>;

/// Builds (and caches) object store clients.
#[derive(Default)]
pub(crate) struct StoreRegistry {
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

/// A store plus the directory in it, with a key identifying it across calls.
#[derive(Clone, Debug)]
pub(crate) struct Located {
    pub store: Arc<dyn ObjectStore>,
    pub url: Url,
    /// Identifies the directory (store + path) in caches and commit locks.
    pub key: String,
}

impl StoreRegistry {
    /// The store for `url`, configured from `options` (endpoint, credentials, ...).
    pub(crate) fn locate(&self, url: Url, options: &Options) -> Result<Located, String> {
        let (store_key, build): (String, StoreBuilder) = match &url.scheme {
            Scheme::Local => (
                "file".to_string(),
                Box::new(|| Ok(Arc::new(LocalFileSystem::new()) as Arc<dyn ObjectStore>)),
            ),
            Scheme::S3 { bucket } => {
                let get = |k: &str| options.get(k).map(|s| s.trim().to_string());
                let endpoint = get("endpoint").filter(|s| !s.is_empty());
                let region = get("region")
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "us-east-1".to_string());
                let access_key = get("access_key_id").filter(|s| !s.is_empty());
                let secret = get("secret_access_key").filter(|s| !s.is_empty());
                let token = get("session_token").filter(|s| !s.is_empty());
                let allow_http = parse_bool(options, "allow_http")?;
                let key = format!(
                        "s3\u{1}{bucket}\u{1}{endpoint:?}\u{1}{region}\u{1}{access_key:?}\u{1}{secret:?}\u{1}{token:?}\u{1}{allow_http}"
                    );
                let bucket = bucket.clone();
                (
                    key,
                    Box::new(move || {
                        // Explicit credentials: ignore the AWS_* environment (mixing a
                        // configured key with an environment session token fails).
                        let base = if access_key.is_some() {
                            AmazonS3Builder::new()
                        } else {
                            AmazonS3Builder::from_env()
                        };
                        let mut b = base
                            .with_bucket_name(bucket)
                            .with_region(region)
                            .with_virtual_hosted_style_request(false)
                            .with_allow_http(allow_http)
                            .with_retry(RetryConfig {
                                max_retries: 3,
                                retry_timeout: Duration::from_secs(30),
                                ..Default::default()
                            });
                        if let Some(e) = endpoint {
                            b = b.with_endpoint(e);
                        }
                        if let Some(k) = access_key {
                            b = b.with_access_key_id(k);
                        }
                        if let Some(s) = secret {
                            b = b.with_secret_access_key(s);
                        }
                        if let Some(t) = token {
                            b = b.with_token(t);
                        }
                        let s3 = b
                            .build()
                            .map_err(|e| format!("s3_storage: bad S3 settings: {e}"))?;
                        Ok(Arc::new(s3) as Arc<dyn ObjectStore>)
                    }),
                )
            }
        };
        let store = {
            let mut stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
            match stores.get(&store_key) {
                Some(s) => s.clone(),
                None => {
                    let s = build()?;
                    stores.insert(store_key.clone(), s.clone());
                    s
                }
            }
        };
        let key = match &url.scheme {
            Scheme::Local => format!("file:///{}", url.prefix),
            Scheme::S3 { bucket } => format!(
                "s3://{bucket}/{}@{}",
                url.prefix,
                options.get("endpoint").map(String::as_str).unwrap_or("")
            ),
        };
        Ok(Located { store, url, key })
    }
}

/// `name` reduced to `[A-Za-z0-9_-]` (at most 64 characters), for directory names.
pub(crate) fn sanitize_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if out.is_empty() {
        out.push_str("table");
    }
    out
}

/// A random 64-bit number (std's randomly keyed SipHash over time, a counter and the pid).
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(nanos);
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_urls() {
        let u = Url::parse("s3://bucket/a/b/").expect("s3");
        assert_eq!(
            u.scheme,
            Scheme::S3 {
                bucket: "bucket".into()
            }
        );
        assert_eq!(u.prefix.as_ref(), "a/b");
        assert_eq!(u.child_text("t-1"), "s3://bucket/a/b/t-1");
        let u = Url::parse("s3://bucket").expect("bucket only");
        assert_eq!(u.prefix.as_ref(), "");
        let u = Url::parse("/tmp/x/").expect("local");
        assert_eq!(u.scheme, Scheme::Local);
        assert_eq!(u.prefix.as_ref(), "tmp/x");
        assert_eq!(
            u.local_dir().expect("dir"),
            std::path::PathBuf::from("/tmp/x")
        );
        let u = Url::parse("file:///tmp/y").expect("file url");
        assert_eq!(u.prefix.as_ref(), "tmp/y");
        assert!(Url::parse("relative/dir").is_err());
        let e = Url::parse("hdfs://nn/x").expect_err("hdfs");
        assert!(e.contains("HDFS is not supported"), "{e}");
        assert!(Url::parse("s3:///x").is_err());
    }

    #[test]
    fn config_parsing() {
        let c = parse_config(r#"{"path": "/tmp", "allow_http": true, "cache_size_mb": 16}"#)
            .expect("config");
        assert_eq!(c.get("allow_http").map(String::as_str), Some("true"));
        assert_eq!(c.get("cache_size_mb").map(String::as_str), Some("16"));
        assert!(parse_config("").expect("empty").is_empty());
        assert!(parse_config(r#"{"bogus": 1}"#).is_err());
        assert!(parse_config("[1]").is_err());
        let mut o = Options::new();
        o.insert("row_group_size".into(), "0".into());
        assert!(validate_table_options(&o).is_err());
        o.insert("row_group_size".into(), "10".into());
        assert!(validate_table_options(&o).is_ok());
        o.insert("nope".into(), "1".into());
        assert!(validate_table_options(&o).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(sanitize_name("my table.v1"), "my_table_v1");
        assert_eq!(sanitize_name(""), "table");
        assert_ne!(random_u64(), random_u64());
    }
}
