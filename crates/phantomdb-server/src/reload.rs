//! SIGHUP: the server reads its configuration file again and replaces its authentication
//! rules. Connections stay open (their logins are done); the next login uses the new rules.
//! A file that does not read, parse or check keeps the rules in force, and says why in the
//! log. Only `[auth]` is applied: the other settings need a restart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use phantomdb::Database;

use crate::config::Config;
use crate::error::ServerError;
use crate::provider::off_thread;
use crate::{signal, AuthSettings};

/// How often the watcher looks for a SIGHUP.
const POLL: Duration = Duration::from_millis(100);

/// Reloads the rules from `path` at every SIGHUP after the first `seen` ones (counted when
/// the handler was installed), until the task is dropped.
pub(crate) async fn watch(
    path: PathBuf,
    mut seen: u64,
    settings: Arc<ArcSwap<AuthSettings>>,
    db: Database,
    tls: bool,
) {
    loop {
        tokio::time::sleep(POLL).await;
        let now = signal::hangups();
        if now == seen {
            continue;
        }
        seen = now;
        // Providers check their options while the rules load: plugin code, so off the
        // I/O threads and under a time limit.
        let loaded = {
            let (path, db) = (path.clone(), db.clone());
            let limit = settings.load().provider_timeout;
            off_thread(limit, move || {
                Config::load(&path).and_then(|c| AuthSettings::new(&c.auth, tls, &db))
            })
            .await
            .unwrap_or_else(|e| Err(ServerError::Config(format!("checking the rules: {e}"))))
        };
        match loaded {
            Ok(new) => {
                let count = new.rules.iter().count();
                new.publish(&db);
                settings.store(Arc::new(new));
                tracing::info!(file = %path.display(), rules = count, "authentication rules reloaded");
            }
            Err(e) => tracing::error!(
                file = %path.display(),
                error = %e,
                "cannot reload the authentication rules; the rules in force stay"
            ),
        }
    }
}
