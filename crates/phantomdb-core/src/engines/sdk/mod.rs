//! The adapter over the plugin SDK's `StorageEngine`: how the core drives `memory` and every
//! plugin engine.
//!
//! The SDK's engines know nothing of the core's transactions: the adapter opens one engine
//! transaction per engine and database transaction ([`EngineTxns`]), commits it with redb's,
//! checks primary keys for engines that do not enforce them, and turns scans into one
//! blocking partition.

mod table;
mod txns;

use std::sync::Arc;

use phantomdb_plugin_sdk::storage::{Capabilities, Options, StorageEngine};

pub(crate) use txns::{EngineTxns, SharedEngineTxns};

use super::{StatementTxns, TableAccess, TableEngine};
use crate::catalog::TableDef;
use crate::error::{Error, Result};
use crate::table::table_info;

/// An SDK engine as a [`TableEngine`].
pub(crate) struct SdkEngine {
    engine: Arc<dyn StorageEngine>,
    name: String,
}

impl SdkEngine {
    pub(crate) fn new(engine: Arc<dyn StorageEngine>) -> Self {
        let name = engine.name().to_ascii_lowercase();
        Self { engine, name }
    }
}

impl TableEngine for SdkEngine {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        self.engine.description()
    }

    fn capabilities(&self) -> Capabilities {
        self.engine.capabilities()
    }

    fn create_table(&self, def: &TableDef, txns: &StatementTxns) -> Result<Options> {
        // Not transactional in the engine: undone if the transaction rolls back.
        let options = self.engine.create_table(&table_info(def)).map_err(|e| {
            Error::Storage(format!(
                "storage engine {} cannot create table {}: {e}",
                self.name, def.name
            ))
        })?;
        let mut created = table_info(def);
        created.options = options.clone();
        txns.engines.lock().created(self.engine.clone(), created);
        Ok(options)
    }

    fn drop_table(&self, def: &TableDef, txns: &StatementTxns) -> Result<()> {
        txns.engines
            .lock()
            .dropped(self.engine.clone(), table_info(def));
        Ok(())
    }

    fn open(&self, def: Arc<TableDef>, txns: &StatementTxns) -> Result<Arc<dyn TableAccess>> {
        Ok(Arc::new(table::SdkTable::new(
            def,
            self.engine.clone(),
            txns.engines.clone(),
        )))
    }
}
