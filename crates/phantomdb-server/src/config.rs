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
//! ```
//!
//! Every key is optional. Unknown keys are errors, so a typo does not silently do nothing.
//! The `[auth]` table is reserved for authentication rules.

use std::net::SocketAddr;
use std::path::Path;
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
    /// The `[auth]` table: authentication rules (kept for the authentication providers).
    #[serde(default)]
    pub auth: Option<toml::Table>,
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5432)),
            max_connections: 100,
            idle_timeout: Duration::ZERO,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| match e {
            ServerError::Config(m) => ServerError::Config(format!("{}: {m}", path.display())),
            other => other,
        })
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
