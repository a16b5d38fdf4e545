//! Standard output for every command: a pipe closed by its reader (`odm cost FILE --json | head
//! -c 600`) ends the output quietly, as Unix tools do, where `println!` would panic. The command
//! still finishes and exits with its own status (0 on success). Any other failed write (a full
//! disk) is kept for `main` to report.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Set once a write failed: later output is dropped.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// A failed write's error, unless the pipe was merely closed.
static FAILED: Mutex<Option<String>> = Mutex::new(None);

/// Write `text` to standard output and flush it, so a closed pipe is seen at once.
pub fn emit(text: &str) {
    if CLOSED.load(Ordering::SeqCst) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        CLOSED.store(true, Ordering::SeqCst);
        if e.kind() != ErrorKind::BrokenPipe {
            *FAILED.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
        }
    }
}

/// The error of a write to standard output that failed for another reason than a closed pipe.
pub fn failure() -> Option<String> {
    FAILED.lock().unwrap_or_else(|p| p.into_inner()).clone()
}
