//! Pre-registration: when each version of the expectations file was committed (its git
//! history) and when runs started (`provenance.json`), so a claim written after the runs it
//! judges had started can be marked post hoc.
//!
//! git runs as `git -C <folder of the file>`, so the repository is the one holding the file.
//! A commit's time is its committer date (`%ct`): rewriting history (rebase, amend) can only make
//! it later, never make a claim look older than it is.

use std::path::Path;
use std::process::Command;

/// One committed version of the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    /// Full commit id.
    pub commit: String,
    /// Committer time, seconds since the Unix epoch.
    pub time: i64,
    /// The file's text in that commit.
    pub text: String,
}

/// The file's committed versions, oldest first, or why there is no history to read.
#[derive(Clone, Debug, PartialEq)]
pub enum History {
    /// Every commit that holds the file (empty: the file is not committed).
    Versions(Vec<Version>),
    /// No history to read: git missing, not a repository, a shallow clone.
    Unavailable(String),
}

fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| format!("git not found ({e})"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(err
            .lines()
            .next()
            .unwrap_or("git failed")
            .trim()
            .to_string())
    }
}

/// The git history of `file` (following renames): the commits that hold it, oldest first.
pub fn history(file: &Path) -> History {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
        return History::Unavailable("the file name is not UTF-8".into());
    };
    match git(&dir, &["rev-parse", "--is-inside-work-tree"]) {
        Ok(s) if s.trim() == "true" => {}
        Ok(_) => return History::Unavailable("not in a git work tree".into()),
        Err(e) if e.starts_with("git not found") => return History::Unavailable(e),
        Err(_) => return History::Unavailable("not in a git repository".into()),
    }
    if git(&dir, &["rev-parse", "--is-shallow-repository"]).is_ok_and(|s| s.trim() == "true") {
        return History::Unavailable(
            "shallow clone, its history is cut (git fetch --unshallow)".into(),
        );
    }
    // `--name-only` gives the file's path (from the repository root) in each commit, which
    // differs before a rename.
    let log = match git(
        &dir,
        &[
            "log",
            "--follow",
            "--format=@@%H %ct",
            "--name-only",
            "--",
            name,
        ],
    ) {
        Ok(l) => l,
        // A repository without commits yet: nothing is committed.
        Err(e) if e.contains("does not have any commits") => return History::Versions(Vec::new()),
        Err(e) => return History::Unavailable(format!("git log failed: {e}")),
    };
    let mut heads: Vec<(String, i64, Option<String>)> = Vec::new();
    for line in log.lines() {
        if let Some(h) = line.strip_prefix("@@") {
            let mut it = h.split(' ');
            let (Some(c), Some(t)) = (it.next(), it.next().and_then(|t| t.parse::<i64>().ok()))
            else {
                return History::Unavailable(format!("unexpected git log line {line:?}"));
            };
            heads.push((c.to_string(), t, None));
        } else if !line.trim().is_empty() {
            if let Some(last) = heads.last_mut() {
                last.2.get_or_insert_with(|| line.trim().to_string());
            }
        }
    }
    let mut out = Vec::new();
    for (commit, time, path) in heads.into_iter().rev() {
        // A commit that deleted the file has no text: skip it.
        let Some(path) = path else { continue };
        if let Ok(text) = git(&dir, &["show", &format!("{commit}:{path}")]) {
            out.push(Version { commit, time, text });
        }
    }
    History::Versions(out)
}

/// Seconds since the Unix epoch of an RFC 3339 time (`2026-11-29T00:45:04Z`, fractional
/// seconds and `±HH:MM` offsets accepted); `None` when it does not parse.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| num_at(s, r);
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        let k = r.bytes().take_while(u8::is_ascii_digit).count();
        if k == 0 {
            return None;
        }
        rest = &r[k..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let ob = rest.as_bytes();
            if ob.len() != 6 || ob[3] != b':' || !matches!(ob[0], b'+' | b'-') {
                return None;
            }
            let (oh, om) = (num_at(rest, 1..3)?, num_at(rest, 4..6)?);
            let o = oh * 3600 + om * 60;
            if ob[0] == b'-' {
                -o
            } else {
                o
            }
        }
    };
    // Days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se - offset)
}

fn num_at(s: &str, r: std::ops::Range<usize>) -> Option<i64> {
    let t = s.get(r)?;
    if t.bytes().all(|c| c.is_ascii_digit()) {
        t.parse().ok()
    } else {
        None
    }
}

/// RFC 3339 (UTC, seconds) of a Unix time.
pub fn format_utc(t: i64) -> String {
    let secs = std::time::UNIX_EPOCH
        .checked_add(std::time::Duration::from_secs(t.max(0) as u64))
        .unwrap_or(std::time::UNIX_EPOCH);
    humantime::format_rfc3339_seconds(secs).to_string()
}

/// When a run folder's run started (`started` in its `provenance.json`); `None` when the file or
/// the field is missing or does not parse.
pub fn run_started(dir: &Path) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct P {
        started: String,
    }
    let t = std::fs::read_to_string(dir.join("provenance.json")).ok()?;
    let p: P = serde_json::from_str(&t).ok()?;
    parse_rfc3339(&p.started)
}

/// Where a pre-registered entry (a claim, a selection rule) stands against its runs: its first
/// commit to the expectations file against the first of its runs' start.
#[derive(Clone, Debug, PartialEq)]
pub enum Registration {
    /// No runs to judge yet.
    NoRuns,
    /// First committed (`time`) no later than its first run started (`first_run`).
    Pre {
        commit: String,
        time: i64,
        first_run: i64,
    },
    /// First committed after its first run started.
    PostHoc {
        commit: String,
        time: i64,
        first_run: i64,
    },
    /// In the file but in no commit of it: written after its runs, as far as anyone can tell.
    NotCommitted,
    /// A run's start time is unknown (no readable `provenance.json`): the folder.
    StartUnknown(String),
    /// No git history to read (why).
    NoHistory(String),
}

impl Registration {
    /// Anything but a claim committed before its runs (or without runs) counts as post hoc.
    pub fn post_hoc(&self) -> bool {
        !matches!(self, Registration::NoRuns | Registration::Pre { .. })
    }

    /// The report's word: the same whether a post hoc claim is committed yet or not, so the
    /// report regenerates byte for byte once it is.
    pub fn word(&self) -> &'static str {
        match self {
            Registration::NoRuns => "–",
            Registration::Pre { .. } => "pre-registered",
            _ => "post hoc",
        }
    }

    /// `odm verify`'s longer account.
    pub fn detail(&self) -> String {
        let short = |c: &str| c.chars().take(10).collect::<String>();
        match self {
            Registration::NoRuns => "–".into(),
            Registration::Pre {
                commit,
                time,
                first_run,
            } => format!(
                "pre-registered: {} {} ≤ first run {}",
                short(commit),
                format_utc(*time),
                format_utc(*first_run)
            ),
            Registration::PostHoc {
                commit,
                time,
                first_run,
            } => format!(
                "post hoc: {} {} > first run {}",
                short(commit),
                format_utc(*time),
                format_utc(*first_run)
            ),
            Registration::NotCommitted => "post hoc: not committed".into(),
            Registration::StartUnknown(d) => {
                format!("post hoc: start of {d} unknown (no provenance.json)")
            }
            Registration::NoHistory(why) => format!("post hoc: no git history ({why})"),
        }
    }
}

/// The registration of an entry first committed at `first` (commit, committer time; `None`
/// when no committed version holds it) whose runs are the folders `used`.
pub fn register(first: Option<&(String, i64)>, used: &[&Path], hist: &History) -> Registration {
    if used.is_empty() {
        return Registration::NoRuns;
    }
    let mut first_run = i64::MAX;
    for d in used {
        match run_started(d) {
            Some(t) => first_run = first_run.min(t),
            None => {
                let name = d.file_name().map_or_else(
                    || d.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                );
                return Registration::StartUnknown(name);
            }
        }
    }
    match (hist, first) {
        (History::Unavailable(why), _) => Registration::NoHistory(why.clone()),
        (History::Versions(_), None) => Registration::NotCommitted,
        (History::Versions(_), Some((commit, time))) if *time <= first_run => Registration::Pre {
            commit: commit.clone(),
            time: *time,
            first_run,
        },
        (History::Versions(_), Some((commit, time))) => Registration::PostHoc {
            commit: commit.clone(),
            time: *time,
            first_run,
        },
    }
}
