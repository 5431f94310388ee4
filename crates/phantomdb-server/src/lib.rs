//! # phantomdb-server
//!
//! `phantomdb serve`: a PostgreSQL wire-protocol (3.0) server for one PhantomDB database, so
//! `psql` and PostgreSQL drivers can use it. Built on [`pgwire`] and PhantomDB's public API.
//!
//! * Logins are SCRAM-SHA-256 against the roles stored in the database (`CREATE ROLE ...
//!   LOGIN PASSWORD '...'`); each connection is a [`phantomdb::Connection`] running as its
//!   role, so privileges apply to everything it runs.
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
mod registry;
mod session;
mod signal;
mod simple;
mod statement;
mod types;

use std::net::SocketAddr;
use std::sync::Arc;

use phantomdb::Database;
use tokio::net::TcpListener;

pub use config::{Config, ServerConfig};
pub use error::ServerError;
pub use signal::shutdown_signal;

use handlers::Handlers;

/// A server for one database, configured and checked, not yet listening.
pub struct Server {
    db: Database,
    config: Config,
}

impl Server {
    /// Checks the configuration and the database: it must have a role that can log in
    /// (`db_name` is how the error message names the database). Applies `memory_limit`.
    pub fn new(db: Database, config: Config, db_name: &str) -> Result<Self, ServerError> {
        if !db.has_login_role()? {
            return Err(ServerError::NoLoginRole {
                db: db_name.to_string(),
            });
        }
        if let Some(limit) = &config.memory_limit {
            phantomdb::set_memory_limit(phantomdb::parse_memory_size(limit)?)?;
        }
        Ok(Self { db, config })
    }

    /// Binds the configured address (`server.listen`; port 0 picks a free one).
    pub async fn bind(self) -> Result<BoundServer, ServerError> {
        let listener = TcpListener::bind(self.config.server.listen).await?;
        Ok(BoundServer {
            listener,
            handlers: Arc::new(Handlers::new(self.db, self.config.server.max_connections)),
            config: self.config,
        })
    }
}

/// A server listening on its address.
pub struct BoundServer {
    listener: TcpListener,
    handlers: Arc<Handlers>,
    config: Config,
}

impl BoundServer {
    /// The address clients connect to.
    pub fn local_addr(&self) -> Result<SocketAddr, ServerError> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves clients until `shutdown` resolves; then stops accepting, lets running
    /// statements finish (up to `server.shutdown_grace`, then cancels them) and returns once
    /// every connection has closed. Committed data is on disk; open transactions roll back.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tracing::info!(addr = ?self.listener.local_addr().ok(), "listening");
        listener::accept_loop(self.listener, self.handlers, self.config.server, shutdown).await;
    }
}
