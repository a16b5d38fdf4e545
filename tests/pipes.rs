//! Issue 30, part 3: output to a closed pipe (`odm cost FILE --json | head -c 600`) ends
//! quietly, as Unix tools do: the command exits with the status it has with a reader (0 when it
//! succeeds) and says nothing of the pipe, where `println!` used to panic with a backtrace.

mod common;

use std::io::Read;
use std::process::{Command, Output, Stdio};

/// Text on standard error that a broken pipe used to produce.
const PANIC_TEXT: [&str; 4] = ["panicked", "Broken pipe", "failed printing", "backtrace"];

fn quiet(what: &str, o: &Output) {
    let err = String::from_utf8_lossy(&o.stderr);
    for t in PANIC_TEXT {
        assert!(!err.contains(t), "{what}: {t:?} on stderr: {err}");
    }
}

/// `odm args` with standard output a pipe whose reader closed before `odm` started, so every
/// write fails (EPIPE), deterministically.
fn closed_stdout(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(common::odm_bin())
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn commands_writing_to_a_closed_pipe_end_quietly_with_their_own_status() {
    let tmp = common::tempdir();
    let f = common::write(tmp.path(), "toy.ron", &common::toy_spec("toy", 1, 2, ""));
    let f = f.to_str().unwrap();
    let reports = tmp.path().join("reports");
    let study = "experiments/edsr_baseline_x4_study.ron";
    let cases: Vec<Vec<&str>> = vec![
        vec!["check", f],
        vec!["check", f, "--set", "gating.rule=Sign"],
        vec!["run", f, "--list"],
        vec!["cost", study, "--json"],
        vec!["cost", f],
        vec!["table", f, "--out", tmp.path().to_str().unwrap()],
        vec!["verify"],
        vec!["report", "--out", reports.to_str().unwrap()],
        vec!["bicubic", "--data", "assets/cc0/holdout", "--scale", "2"],
        vec!["--help"],
    ];
    for args in &cases {
        let open = Command::new(common::odm_bin()).args(args).output().unwrap();
        assert!(!open.stdout.is_empty(), "{args:?} prints something");
        let closed = closed_stdout(args);
        quiet(&format!("{args:?}"), &closed);
        assert_eq!(
            closed.status.code(),
            open.status.code(),
            "{args:?}: the same exit status as with a reader: {}",
            String::from_utf8_lossy(&closed.stderr)
        );
    }
}

/// `odm cost FILE --json | head -c 600`, the case: the reader takes 600 bytes of the
/// 240 kB and leaves; odm exits 0 without a word.
#[test]
fn a_reader_leaving_early_ends_the_output_quietly() {
    let mut child = Command::new(common::odm_bin())
        .args(["cost", "experiments/edsr_baseline_x4_study.ron", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = vec![0u8; 600];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    // The reader is gone (dropped above); the rest of the output meets a closed pipe.
    let o = child.wait_with_output().unwrap();
    assert!(
        head.starts_with(b"{\"run\":"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    quiet("cost --json | head -c 600", &o);
    assert_eq!(o.status.code(), Some(0));
}
