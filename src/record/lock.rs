//! One writer per run folder: `odm.lock` holds the writer's pid, host and start time. It is
//! created with `O_EXCL`, so of two processes that start together exactly one gets it; a lock
//! whose process is gone (same host, dead pid) is taken over; a live one is a one-line error
//! naming its holder.

use crate::error::user;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The lock file's name inside a run folder.
pub const LOCK: &str = "odm.lock";

/// Who holds a run folder.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub since: String,
}

/// A held lock; dropping it removes the file.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// This machine's host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`, else "unknown").
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Whether process `pid` exists on this host (`/proc/<pid>` on Linux; assumed alive elsewhere,
/// so a lock is never stolen on a guess).
fn alive(pid: u32) -> bool {
    if Path::new("/proc/self").is_dir() {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

impl RunLock {
    /// Take the lock of `dir`, taking over a stale one (its pid dead on this host). A live holder
    /// is a user error naming it and the way out.
    pub fn acquire(dir: &Path) -> anyhow::Result<RunLock> {
        let path = dir.join(LOCK);
        let me = Holder {
            pid: std::process::id(),
            host: host_name(),
            since: super::provenance::now(),
        };
        // Two tries: the second after removing a stale lock.
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    f.write_all(serde_json::to_string(&me)?.as_bytes())?;
                    f.sync_all()?;
                    return Ok(RunLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let held = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|t| serde_json::from_str::<Holder>(&t).ok());
                    match held {
                        Some(h) if h.host == me.host && !alive(h.pid) => {
                            eprintln!(
                                "odm: {}: taking over the stale lock of pid {} (no longer running)",
                                dir.display(),
                                h.pid
                            );
                            let _ = std::fs::remove_file(&path);
                        }
                        Some(h) => return Err(held_by(dir, &path, &h)),
                        // Being written this instant, or damaged: never stolen on a guess.
                        None => {
                            return Err(user(format!(
                                "{}: locked by another odm ({} unreadable); if no odm is writing this folder, delete that file",
                                dir.display(),
                                path.display()
                            )))
                        }
                    }
                }
                Err(e) => {
                    return Err(
                        anyhow::Error::new(e).context(format!("cannot create {}", path.display()))
                    )
                }
            }
        }
        Err(user(format!(
            "{}: another odm took the lock at the same moment; try again",
            dir.display()
        )))
    }
}

fn held_by(dir: &Path, path: &Path, h: &Holder) -> anyhow::Error {
    user(format!(
        "{}: being written by odm pid {} on {} since {}; wait for it to finish (if that process is gone, delete {})",
        dir.display(),
        h.pid,
        h.host,
        h.since,
        path.display()
    ))
}

/// The holder of `dir`'s lock when it is held by a live process (on this host) or by a process
/// on another host; `None` when unlocked or stale.
pub fn live_holder(dir: &Path) -> Option<Holder> {
    let t = std::fs::read_to_string(dir.join(LOCK)).ok()?;
    let h: Holder = serde_json::from_str(&t).ok()?;
    (h.host != host_name() || alive(h.pid)).then_some(h)
}
