//! The query processor: `on_statement` refuses statements matching the deny-list;
//! `on_query_end` appends the statement's record to the log file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Mutex, RwLock};

use phantomdb_plugin_sdk::query::{FailureMode, Hooks, QueryEnd, QueryProcessor, Session};

use crate::config::Config;
use crate::record;

/// The processor, shared by every session.
#[derive(Default)]
pub struct AuditLog {
    deny: RwLock<Vec<regex::Regex>>,
    /// The log file, opened for appending; writes are serialized so lines never interleave.
    file: Mutex<Option<File>>,
}

impl AuditLog {
    /// Applies a configuration: opens (creates) the log file for appending.
    pub fn configure(&self, config: Config) -> Result<(), String> {
        let file = match &config.path {
            Some(path) => Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("audit_log: cannot open {path}: {e}"))?,
            ),
            None => None,
        };
        *self.file.lock().unwrap_or_else(|e| e.into_inner()) = file;
        *self.deny.write().unwrap_or_else(|e| e.into_inner()) = config.deny;
        Ok(())
    }
}

impl QueryProcessor for AuditLog {
    fn name(&self) -> &str {
        "audit_log"
    }

    fn description(&self) -> &str {
        "one JSON line per statement in a file; refuses statements matching a deny-list"
    }

    fn hooks(&self) -> Hooks {
        Hooks {
            on_statement: true,
            on_query_end: true,
            ..Hooks::default()
        }
    }

    fn failure_mode(&self) -> FailureMode {
        FailureMode::Fail
    }

    fn on_statement(&self, sql: &str, _session: &Session) -> Result<(), String> {
        let deny = self.deny.read().unwrap_or_else(|e| e.into_inner());
        match deny.iter().find(|p| p.is_match(sql)) {
            Some(p) => Err(format!(
                "the statement matches the deny rule \"{}\"",
                p.as_str()
            )),
            None => Ok(()),
        }
    }

    fn on_query_end(&self, end: &QueryEnd) -> Result<(), String> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let Some(file) = file.as_mut() else {
            return Ok(());
        };
        let mut line = record::line(end);
        line.push('\n');
        // One write per line: with O_APPEND each line lands whole at the end of the file.
        file.write_all(line.as_bytes())
            .map_err(|e| format!("audit_log: writing the log failed: {e}"))
    }
}
