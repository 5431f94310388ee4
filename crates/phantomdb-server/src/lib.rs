//! # phantomdb-server
//!
//! `phantomdb serve`: a PostgreSQL wire-protocol (3.0) server for one PhantomDB database, so
//! `psql` and PostgreSQL drivers can use it. Built on [`pgwire`] and PhantomDB's public API.
//!
//! * Logins follow `pg_hba.conf`-style rules (`[[auth.rules]]`): the first rule matching the
//!   connection type (TLS or not), database, user (names, `+role` members) and client address
//!   names the provider: SCRAM-SHA-256 against the roles stored in the database (`CREATE ROLE
//!   ... LOGIN PASSWORD '...'`), `reject`, or a plugin's provider. Each connection is a
//!   [`phantomdb::Connection`] running as its role, so privileges apply to everything it runs.
//!   SIGHUP reloads the rules.
//! * TLS (`[server] tls_cert`, `tls_key`) with rustls.
//! * Simple and extended query protocols: statements are prepared once on `Parse`,
//!   parameters arrive in text or binary format, and rows stream from the engine through
//!   portals that honour `Execute`'s row limit. `COPY ... FROM STDIN` / `TO STDOUT` in text
//!   and CSV formats.
//! * Errors carry their SQLSTATE. After an error inside a transaction block the block is
//!   aborted until `ROLLBACK`, as in PostgreSQL.
//! * Cancel requests cancel the running statement; `[server]` in `phantomdb.toml` sets the
//!   address, a connection limit and an idle timeout; shutdown (SIGTERM) lets running
//!   statements finish.
//!
//! ```no_run
//! # async fn run() -> Result<(), phantomdb_server::ServerError> {
//! let db = phantomdb::Database::open("app.db")?;
//! let server = phantomdb_server::Server::new(db, phantomdb_server::Config::default(), "app.db")?;
//! server.bind().await?.run(phantomdb_server::shutdown_signal()).await;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod auth;
mod config;
mod copy;
mod copy_handler;
mod error;
mod error_info;
mod extended;
mod handlers;
mod listener;
mod provider;
mod registry;
mod reload;
mod rules;
mod session;
mod signal;
mod simple;
mod statement;
mod tls;
mod types;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use phantomdb::Database;
use tokio::net::TcpListener;

pub use config::{AuthConfig, Config, Names, RuleConfig, ServerConfig};
pub use error::ServerError;
pub use signal::shutdown_signal;

use handlers::Handlers;

/// A server for one database, configured and checked, not yet listening.
pub struct Server {
    db: Database,
    config: Config,
    tls: Option<tls::Tls>,
    auth: AuthSettings,
}

impl Server {
    /// Checks the configuration and the database: it must have a role that can log in
    /// (`db_name` is how the error message names the database), the TLS files must load and
    /// every provider the rules name must exist. Applies `memory_limit`.
    pub fn new(db: Database, config: Config, db_name: &str) -> Result<Self, ServerError> {
        if !db.has_login_role()? {
            return Err(ServerError::NoLoginRole {
                db: db_name.to_string(),
            });
        }
        let tls = match (&config.server.tls_cert, &config.server.tls_key) {
            (Some(cert), Some(key)) => Some(tls::Tls::load(cert, key)?),
            _ => None,
        };
        let auth = AuthSettings::new(&config.auth, tls.is_some(), &db)?;
        auth.publish(&db);
        if let Some(limit) = &config.memory_limit {
            phantomdb::set_memory_limit(phantomdb::parse_memory_size(limit)?)?;
        }
        Ok(Self {
            db,
            config,
            tls,
            auth,
        })
    }

    /// Binds the configured address (`server.listen`; port 0 picks a free one).
    pub async fn bind(self) -> Result<BoundServer, ServerError> {
        let listener = TcpListener::bind(self.config.server.listen).await?;
        let settings = Arc::new(ArcSwap::from_pointee(self.auth));
        let cert_pem = self.tls.as_ref().map(|t| t.cert_pem.as_slice());
        let handlers = Handlers::new(
            self.db.clone(),
            self.config.server.max_connections,
            settings.clone(),
            cert_pem,
        );
        // The SIGHUP handler is in place before anyone can know the address.
        let reload_from = (self.config.source.clone()).map(|path| (path, signal::watch_hangups()));
        Ok(BoundServer {
            listener,
            handlers: Arc::new(handlers),
            config: self.config,
            tls: self.tls,
            settings,
            db: self.db,
            reload_from,
        })
    }
}

/// A server listening on its address.
pub struct BoundServer {
    listener: TcpListener,
    handlers: Arc<Handlers>,
    config: Config,
    tls: Option<tls::Tls>,
    settings: Arc<ArcSwap<AuthSettings>>,
    db: Database,
    /// The configuration file SIGHUP reloads, and the SIGHUPs counted before listening.
    reload_from: Option<(std::path::PathBuf, u64)>,
}

impl BoundServer {
    /// The address clients connect to.
    pub fn local_addr(&self) -> Result<SocketAddr, ServerError> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves clients until `shutdown` resolves; then stops accepting, lets running
    /// statements finish (up to `server.shutdown_grace`, then cancels them) and returns once
    /// every connection has closed. Committed data is on disk; open transactions roll back.
    /// When the configuration came from a file, SIGHUP reloads its authentication rules.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tracing::info!(addr = ?self.listener.local_addr().ok(), tls = self.tls.is_some(), "listening");
        let reloads = self.reload_from.map(|(path, seen)| {
            tokio::spawn(reload::watch(
                path,
                seen,
                self.settings.clone(),
                self.db.clone(),
                self.tls.is_some(),
            ))
        });
        let acceptor = self.tls.map(|t| t.acceptor);
        listener::accept_loop(
            self.listener,
            self.handlers,
            self.config.server,
            acceptor,
            shutdown,
        )
        .await;
        if let Some(task) = reloads {
            task.abort();
        }
    }
}

/// The authentication rules in force and how long a provider may take.
pub(crate) struct AuthSettings {
    pub(crate) rules: rules::Rules,
    pub(crate) provider_timeout: Duration,
}

impl AuthSettings {
    /// Reads the rules and checks them against the database's providers: each must exist,
    /// `scram` and `reject` take no options, a plugin provider must accept its rule's options.
    /// Warns about rules that let a password travel without TLS.
    pub(crate) fn new(auth: &AuthConfig, tls: bool, db: &Database) -> Result<Self, ServerError> {
        let rules = rules::Rules::from_config(auth, tls).map_err(ServerError::Config)?;
        for rule in rules.iter() {
            let at =
                |m: String| ServerError::Config(format!("auth.rules[{}]: {m}", rule.number - 1));
            let Some(info) = db.plugins().auth_provider(&rule.provider) else {
                return Err(at(format!(
                    "no authentication provider \"{}\" (scram, reject, or a loaded plugin's provider; phantomdb_auth_providers() lists them)",
                    rule.provider
                )));
            };
            let options = rule.options.as_object().cloned().unwrap_or_default();
            match info.provider {
                None if !options.is_empty() => {
                    return Err(at(format!("provider {} takes no options", rule.provider)));
                }
                None => {}
                Some(provider) => {
                    provider.check_options(&options).map_err(|e| {
                        at(format!(
                            "provider {} refuses the options: {e}",
                            rule.provider
                        ))
                    })?;
                    if rule.allow_cleartext_without_tls {
                        tracing::warn!(
                            rule = rule.number,
                            provider = rule.provider,
                            "allow_cleartext_without_tls: the provider may receive passwords over connections without TLS"
                        );
                    }
                }
            }
        }
        Ok(Self {
            rules,
            provider_timeout: auth.provider_timeout,
        })
    }

    /// Tells the database which rules name which provider (`phantomdb_auth_providers()`).
    pub(crate) fn publish(&self, db: &Database) {
        let uses = self
            .rules
            .iter()
            .map(|r| phantomdb::plugins::auth::AuthRuleUse {
                provider: r.provider.clone(),
                rule: format!("#{} {r}", r.number),
            })
            .collect();
        db.plugins().set_auth_rules(uses);
    }
}
