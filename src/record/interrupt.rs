//! Interruptions: SIGTERM and SIGINT (Ctrl-C, a Slurm preemption, `kill`) set a flag that the
//! training loop reads between steps and between the images of an evaluation, so a run stops on
//! a checkpoint within one step or one image instead of mid-write; and the fault and signal
//! points the fault-campaign tests use to stop the process where a crash or a signal would.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

fn flag() -> &'static Arc<AtomicBool> {
    static F: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    F.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// Catch SIGTERM and SIGINT from now on: each sets the flag [`requested`] reads. A second
/// signal of either kind while the first is being handled ends the process at once (exit code
/// 130), as an impatient user expects.
pub fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            // The second signal ends the process (registered first, so it sees the flag unset
            // on the first signal and set on the second).
            let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, flag().clone());
            let _ = signal_hook::flag::register(sig, flag().clone());
        }
    });
}

/// True once SIGTERM or SIGINT has arrived (after [`install`]).
pub fn requested() -> bool {
    flag().load(Ordering::SeqCst)
}

/// A fault point: when the environment variable `ODM_FAULT_AT` names `point`, the process ends
/// here at once with exit code 137, as `kill -9` would (no destructors, no cleanup). Used by the
/// fault-campaign tests (`tests/faults.rs`) to crash between two writes.
pub fn fault_point(point: &str) {
    if std::env::var("ODM_FAULT_AT").is_ok_and(|v| v == point) {
        eprintln!("odm: ODM_FAULT_AT={point}: stopping here as a crash would");
        std::process::exit(137);
    }
}

/// A signal point: when the environment variable `ODM_SIGNAL_AT` names `point`, the process
/// sends itself SIGTERM here, once, through the handler [`install`] set up, as `kill -TERM`
/// arriving at this moment would. Used by the fault-campaign tests (`tests/faults.rs`) to
/// interrupt a run at an exact place (an evaluation, say) instead of at a racy time.
pub fn signal_point(point: &str) {
    if !requested() && std::env::var("ODM_SIGNAL_AT").is_ok_and(|v| v == point) {
        let _ = signal_hook::low_level::raise(signal_hook::consts::SIGTERM);
    }
}
