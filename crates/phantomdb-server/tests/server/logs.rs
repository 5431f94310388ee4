//! The server's log lines, captured in memory for every test of the binary (a minimal
//! `tracing` subscriber), so tests can wait for what the server says it did.

use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Installs the capturing subscriber (once per process).
pub fn capture() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let _ = tracing::subscriber::set_global_default(Capture);
    });
}

/// Waits (up to a minute) for a log line containing every one of `needles`; returns it.
pub fn wait_for(needles: &[&str]) -> String {
    let start = Instant::now();
    loop {
        if let Some(line) = find(needles) {
            return line;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no log line with {needles:?}; the log:\n{}",
            LINES.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The first log line so far containing every one of `needles`.
pub fn find(needles: &[&str]) -> Option<String> {
    let lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
    lines
        .iter()
        .find(|l| needles.iter().all(|n| l.contains(n)))
        .cloned()
}

struct Capture;

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::INFO
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line(format!(
            "{} {}:",
            event.metadata().level(),
            event.metadata().target()
        ));
        event.record(&mut line);
        LINES.lock().unwrap_or_else(|e| e.into_inner()).push(line.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
