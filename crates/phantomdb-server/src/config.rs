//! `phantomdb.toml`: the server's configuration file.
//!
//! ```toml
//! # Process-wide memory limit for query execution (see `phantomdb --memory-limit`).
//! memory_limit = "4GB"
//!
//! [server]
//! listen = "127.0.0.1:5432"
//! max_connections = 100
//! idle_timeout = "10min"      # 0 = never
//! shutdown_grace = "30s"      # how long SIGTERM waits for running statements
//! tls_cert = "server.crt"     # PEM; with tls_key, clients may use TLS (sslmode=require)
//! tls_key = "server.key"
//!
//! [auth]
//! provider_timeout = "10s"    # how long a plugin provider may take to answer
//!
//! [[auth.rules]]              # first match wins; no match refuses the login
//! type = "hostssl"            # host | hostssl | hostnossl
//! database = "all"            # a name, a list of names, or "all" (the default)
//! user = "+ldap_users"        # names, +role (members of role), or "all" (the default)
//! address = "127.0.0.1/32"    # CIDR, or "all" (the default)
//! provider = "ldap"           # scram | reject | a plugin's provider
//! options = { url = "ldap://127.0.0.1:389", user_dn = "uid=%u,ou=people,dc=example,dc=org" }
//! ```
//!
//! Every key is optional. Unknown keys are errors, so a typo does not silently do nothing.
//! Without rules every login uses SCRAM-SHA-256 (`scram`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::ServerError;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The process-wide memory limit for query execution (e.g. `"4GB"`).
    pub memory_limit: Option<String>,
    /// The `[server]` table.
    #[serde(default)]
    pub server: ServerConfig,
    /// The `[auth]` table: authentication rules.
    #[serde(default)]
    pub auth: AuthConfig,
    /// The file the configuration was read from ([`Config::load`]); SIGHUP reads it again.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// The `[auth]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// How long a plugin provider may take to answer a login before it is refused.
    #[serde(with = "duration")]
    pub provider_timeout: Duration,
    /// The rules, in order (`[[auth.rules]]`); none means SCRAM for every login.
    pub rules: Vec<RuleConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            provider_timeout: Duration::from_secs(10),
            rules: Vec::new(),
        }
    }
}

/// One `[[auth.rules]]` entry, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// `host` (any TCP connection), `hostssl` (TLS only) or `hostnossl` (without TLS).
    #[serde(rename = "type")]
    pub connection: String,
    /// Database names, or `all`.
    #[serde(default = "Names::all")]
    pub database: Names,
    /// User names, `+role` for the members of a role, or `all`.
    #[serde(default = "Names::all")]
    pub user: Names,
    /// Client addresses: a CIDR range (`10.0.0.0/8`), an address, or `all`.
    #[serde(default = "all")]
    pub address: String,
    /// `scram`, `reject`, or a plugin's provider name.
    pub provider: String,
    /// Options passed to a plugin provider with every login.
    #[serde(default)]
    pub options: toml::Table,
    /// Lets a plugin provider receive passwords on connections without TLS (a warning is
    /// logged when the rules load).
    #[serde(default)]
    pub allow_cleartext_without_tls: bool,
}

/// One name or a list of names.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Names {
    /// One name (or `all`).
    One(String),
    /// Several names.
    Many(Vec<String>),
}

impl Names {
    fn all() -> Self {
        Self::One(all())
    }
}

fn all() -> String {
    "all".to_string()
}

/// The `[server]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Most client connections served at once; more are refused with SQLSTATE 53300.
    pub max_connections: usize,
    /// Closes a connection idle this long (`"0"`: never).
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    /// On SIGTERM, how long running statements may take to finish.
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
    /// The server's certificate chain (PEM); with `tls_key`, clients may use TLS.
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5432)),
            max_connections: 100,
            idle_timeout: Duration::ZERO,
            shutdown_grace: Duration::from_secs(30),
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?;
        let mut config = Self::parse(&text).map_err(|e| match e {
            ServerError::Config(m) => ServerError::Config(format!("{}: {m}", path.display())),
            other => other,
        })?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> Result<Self, ServerError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ServerError::Config(e.to_string()))?;
        if config.server.max_connections == 0 {
            return Err(ServerError::Config(
                "server.max_connections must be at least 1".into(),
            ));
        }
        if let Some(limit) = &config.memory_limit {
            phantomdb::parse_memory_size(limit)
                .map_err(|e| ServerError::Config(format!("memory_limit: {e}")))?;
        }
        if config.server.tls_cert.is_some() != config.server.tls_key.is_some() {
            return Err(ServerError::Config(
                "server.tls_cert and server.tls_key go together".into(),
            ));
        }
        if config.auth.provider_timeout.is_zero() {
            return Err(ServerError::Config(
                "auth.provider_timeout must be more than 0".into(),
            ));
        }
        // The rules are compiled and checked against the database's providers when a server
        // starts (`Server::new`) or reloads them, so the configuration stays a plain reading.
        Ok(config)
    }
}

/// Durations as PostgreSQL writes them (`"500ms"`, `"30s"`, `"10min"`, `"1h"`; a bare
/// string is milliseconds) or a TOML integer of seconds.
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Seconds(s) => Ok(Duration::from_secs(s)),
            Raw::Text(t) => phantomdb::parse_duration(&t).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_key_and_rejects_typos() {
        let c = Config::parse(
            "memory_limit = \"1GB\"\n[server]\nlisten = \"127.0.0.1:6000\"\nmax_connections = 3\nidle_timeout = \"2s\"\nshutdown_grace = 5\n",
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 6000);
        assert_eq!(c.server.max_connections, 3);
        assert_eq!(c.server.idle_timeout, Duration::from_secs(2));
        assert_eq!(c.server.shutdown_grace, Duration::from_secs(5));
        assert!(Config::parse("[server]\nmax_conections = 3\n").is_err());
        assert!(Config::parse("[server]\nidle_timeout = \"soon\"\n").is_err());
        assert!(Config::parse("memory_limit = \"lots\"\n").is_err());
    }
}
