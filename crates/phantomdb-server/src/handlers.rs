//! [`Handlers`]: the protocol handlers one server shares between its connections.

use std::sync::Arc;

use arc_swap::ArcSwap;
use pgwire::api::PgWireServerHandlers;
use phantomdb::Database;

use crate::auth::Startup;
use crate::copy_handler::CopyInHandler;
use crate::extended::ExtendedHandler;
use crate::registry::{CancelRequests, Registry};
use crate::simple::SimpleHandler;
use crate::AuthSettings;

/// The handlers of every protocol phase.
pub(crate) struct Handlers {
    pub(crate) registry: Arc<Registry>,
    startup: Arc<Startup>,
    simple: Arc<SimpleHandler>,
    extended: Arc<ExtendedHandler>,
    copy: Arc<CopyInHandler>,
    cancel: Arc<CancelRequests>,
}

impl Handlers {
    pub(crate) fn new(
        db: Database,
        max_connections: usize,
        settings: Arc<ArcSwap<AuthSettings>>,
        cert_pem: Option<&[u8]>,
    ) -> Self {
        let registry = Arc::new(Registry::new(max_connections));
        Self {
            startup: Arc::new(Startup::new(db, registry.clone(), settings, cert_pem)),
            simple: Arc::new(SimpleHandler),
            extended: Arc::new(ExtendedHandler::default()),
            copy: Arc::new(CopyInHandler),
            cancel: Arc::new(CancelRequests(registry.clone())),
            registry,
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        self.simple.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        self.extended.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        self.startup.clone()
    }

    fn copy_handler(&self) -> Arc<impl pgwire::api::copy::CopyHandler> {
        self.copy.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.cancel.clone()
    }
}
