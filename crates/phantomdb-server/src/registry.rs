//! [`Registry`]: the server's connections: how many there are (the connection limit), their
//! sessions by client address (idle timeouts, shutdown) and their cancel keys.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use pgwire::api::cancel::CancelHandler;
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::SecretKey;
use phantomdb::CancelHandle;

use crate::session::Session;

/// The server's connections.
#[derive(Default)]
pub(crate) struct Registry {
    max_connections: usize,
    connections: AtomicUsize,
    sessions: Mutex<HashMap<SocketAddr, Weak<Session>>>,
    cancel_keys: Mutex<HashMap<(i32, Bytes), CancelHandle>>,
    shutting_down: AtomicBool,
}

impl Registry {
    pub(crate) fn new(max_connections: usize) -> Self {
        Self {
            max_connections,
            ..Self::default()
        }
    }

    /// Records the session of the client at `addr`.
    pub(crate) fn attach(&self, addr: SocketAddr, session: &Arc<Session>) {
        self.sessions.lock().insert(addr, Arc::downgrade(session));
    }

    /// The session of the client at `addr`, once it has logged in.
    pub(crate) fn session(&self, addr: SocketAddr) -> Option<Arc<Session>> {
        self.sessions.lock().get(&addr).and_then(Weak::upgrade)
    }

    /// Forgets the client at `addr` (its connection ended).
    pub(crate) fn detach(&self, addr: SocketAddr) {
        self.sessions.lock().remove(&addr);
    }

    /// Registers a session's cancel key; unregistered when the result is dropped.
    pub(crate) fn register(
        self: &Arc<Self>,
        pid: i32,
        secret: SecretKey,
        handle: CancelHandle,
    ) -> CancelRegistration {
        let key = (pid, secret.to_bytes());
        self.cancel_keys.lock().insert(key.clone(), handle);
        CancelRegistration {
            registry: Arc::downgrade(self),
            key,
        }
    }

    /// Starts the shutdown: idle connections close, running statements finish first.
    pub(crate) fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Cancels every running statement (the shutdown grace period is over).
    pub(crate) fn cancel_all(&self) {
        for handle in self.cancel_keys.lock().values() {
            handle.cancel();
        }
    }

    /// How many connections are open.
    pub(crate) fn connection_count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// One connection counted against the limit, released when dropped.
pub(crate) struct ConnectionSlot(Arc<Registry>);

impl ConnectionSlot {
    /// A slot, or `None` at the connection limit.
    pub(crate) fn take(registry: &Arc<Registry>) -> Option<Self> {
        let taken = registry
            .connections
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < registry.max_connections).then_some(n + 1)
            })
            .is_ok();
        taken.then(|| Self(registry.clone()))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A registered cancel key, removed when dropped.
pub(crate) struct CancelRegistration {
    registry: Weak<Registry>,
    key: (i32, Bytes),
}

impl Drop for CancelRegistration {
    fn drop(&mut self) {
        if let Some(r) = self.registry.upgrade() {
            r.cancel_keys.lock().remove(&self.key);
        }
    }
}

/// Answers cancel requests: the statement running on the connection with that key fails with
/// SQLSTATE 57014 and rolls back. Unknown keys are ignored, as PostgreSQL does.
pub(crate) struct CancelRequests(pub(crate) Arc<Registry>);

#[async_trait]
impl CancelHandler for CancelRequests {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let key = (request.pid, request.secret_key.to_bytes());
        let handle = self.0.cancel_keys.lock().get(&key).cloned();
        match handle {
            Some(h) => {
                tracing::info!(pid = request.pid, "cancel request");
                h.cancel();
            }
            None => tracing::debug!(pid = request.pid, "cancel request with an unknown key"),
        }
    }
}
