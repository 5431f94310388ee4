//! A progress line on standard error for statements that run longer than [`DELAY`], as DuckDB
//! shows one: elapsed time and the rows received so far. Only at a terminal; scripts and
//! pipes never see it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a statement runs before its progress is shown.
pub const DELAY: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Shared {
    rows: AtomicU64,
    stop: AtomicBool,
}

/// The progress of one statement; [`Progress::clear`] (or dropping it) removes the line.
pub struct Progress {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts watching a statement; `show` is false when standard error is not a terminal
    /// (then this only counts).
    pub fn start(show: bool) -> Self {
        let shared = Arc::new(Shared::default());
        let thread = show.then(|| {
            let shared = shared.clone();
            std::thread::spawn(move || draw(&shared))
        });
        Self { shared, thread }
    }

    /// Counts rows received.
    pub fn add_rows(&self, rows: usize) {
        self.shared.rows.fetch_add(rows as u64, Ordering::Relaxed);
    }

    /// Removes the progress line (before output is printed); it does not come back.
    pub fn clear(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn draw(shared: &Shared) {
    let start = Instant::now();
    while start.elapsed() < DELAY {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
    if shared.stop.load(Ordering::SeqCst) {
        return;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} running for {elapsed} {msg}") {
        bar.set_style(style);
    }
    while !shared.stop.load(Ordering::SeqCst) {
        let rows = shared.rows.load(Ordering::Relaxed);
        if rows > 0 {
            bar.set_message(format!("({rows} rows so far; Ctrl-C cancels)"));
        } else {
            bar.set_message("(Ctrl-C cancels)");
        }
        bar.tick();
        std::thread::park_timeout(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}
