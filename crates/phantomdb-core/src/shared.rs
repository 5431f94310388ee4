//! State shared by every connection of one database, and the runtime the blocking API uses.
//!
//! Kept apart from [`crate::database`] (the public entry point) and [`crate::session`] (one
//! connection) so that both depend on it and neither on the other's internals.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use datafusion::execution::session_state::SessionStateBuilder;

use crate::engines::redb::Store;
use crate::plugins::PluginManager;

/// State shared by all connections of one database.
#[derive(Debug)]
pub(crate) struct DatabaseShared {
    pub(crate) store: Arc<Store>,
    pub(crate) path: Option<PathBuf>,
    pub(crate) plugins: Arc<PluginManager>,
}

impl DatabaseShared {
    pub(crate) fn new(store: Arc<Store>, path: Option<PathBuf>) -> Arc<Self> {
        let base = SessionStateBuilder::new().with_default_features().build();
        Arc::new(Self {
            store,
            path,
            plugins: Arc::new(PluginManager::new(&base)),
        })
    }

    /// The database's name as `current_database()` reports it: the file's stem, or `memory`.
    pub(crate) fn name(&self) -> String {
        self.path
            .as_deref()
            .and_then(|p| p.file_stem())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "memory".to_string())
    }
}

/// The runtime the blocking API runs queries on. Never dropped, so it can be used from any
/// thread, including while another PhantomDB call is in progress.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("phantomdb")
            .enable_all()
            .build()
            .expect("cannot start the tokio runtime")
    })
}
