//! `odm`: the command-line entry point. Bad input exits 2 with one line naming the file, field or
//! path and the fix; other failures exit 1.

use clap::{Parser, Subcommand};
use odm::commands;
use std::path::PathBuf;
use std::process::ExitCode;

/// `print!` through [`commands::stdout::emit`]: a closed pipe ends the output quietly.
macro_rules! out {
    ($($t:tt)*) => { commands::stdout::emit(&format!($($t)*)) };
}

/// `println!` through [`commands::stdout::emit`].
macro_rules! outln {
    ($($t:tt)*) => { commands::stdout::emit(&format!("{}\n", format_args!($($t)*))) };
}

#[derive(Parser)]
#[command(
    name = "odm",
    version,
    about = "Quantization-aware training harness for super-resolution (ODM)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct SweepArgs {
    #[command(subcommand)]
    status: Option<SweepCmd>,
    /// The experiment file (RON).
    #[arg(required = true)]
    file: Option<PathBuf>,
    /// Write an sbatch job array over the unfinished points (see --submit).
    #[arg(long, conflicts_with = "local", required_unless_present = "local")]
    slurm: bool,
    /// Run the unfinished points here, as --jobs concurrent processes.
    #[arg(long)]
    local: bool,
    /// Local processes at once (the threads are split between them).
    #[arg(long, default_value_t = 2, requires = "local")]
    jobs: usize,
    /// Submit with sbatch (stages first, the array after them) and print the job ids.
    #[arg(long, requires = "slurm")]
    submit: bool,
    #[arg(long, requires = "slurm")]
    partition: Option<String>,
    /// Wall-time limit per task, HH:MM:SS.
    #[arg(long, requires = "slurm")]
    time: Option<String>,
    /// CPUs per task; each task runs with that many threads (default 1).
    #[arg(long, requires = "slurm")]
    cpus_per_task: Option<usize>,
    #[arg(long, requires = "slurm")]
    gpus_per_task: Option<usize>,
    /// At most K array tasks at once.
    #[arg(long, value_name = "K", requires = "slurm")]
    max_parallel: Option<usize>,
    /// Results root the tasks write to (the sweep folder goes under <out>/sweeps/).
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Total threads of a local sweep (default: all cores).
    #[arg(long, value_parser = parse_threads)]
    threads: Option<usize>,
    /// Override a spec field (as `odm run --set`); passed on to every task.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    overrides: Vec<String>,
    /// Only these grid points (indices as `odm run --list` prints them).
    #[arg(long, value_name = "I,J,K-L")]
    point: Option<String>,
}

#[derive(Subcommand)]
enum SweepCmd {
    /// Per point of a sweep folder: finished, running, pending, failed (with its log's tail).
    Status {
        /// The sweep folder (`<results>/sweeps/<name>-<hash>`).
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum Cmd {
    /// Run an experiment (every point of its grid).
    Run {
        /// The experiment file (RON).
        file: PathBuf,
        /// Results root.
        #[arg(long, default_value = "results")]
        out: PathBuf,
        /// Worker threads (default: all cores). Results are bit-identical for a given count.
        #[arg(long, value_parser = parse_threads)]
        threads: Option<usize>,
        /// Hide the progress bar.
        #[arg(long)]
        quiet: bool,
        /// Continue the newest unfinished run of this spec from its last checkpoint.
        #[arg(long)]
        resume: bool,
        /// Stop after the first checkpoint at or past iteration N, as an interruption would.
        #[arg(long, value_name = "N")]
        stop_after: Option<usize>,
        /// Override a spec field before the grid expands: FIELD=RON_VALUE (repeatable), e.g.
        /// --set schedule.iterations=2
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        overrides: Vec<String>,
        /// Override the spec's device: cpu, cuda or cuda:N (CUDA needs `--features cuda`).
        #[arg(long, value_name = "cpu|cuda:N")]
        device: Option<String>,
        /// Run only these grid points (indices as `--list` prints them): e.g. 3, or 0,2,5-7.
        #[arg(long, value_name = "I,J,K-L")]
        point: Option<String>,
        /// Print the expanded grid points (index, run name, spec hash, finished or not) and run
        /// nothing.
        #[arg(long)]
        list: bool,
        /// With --resume: continue although the data's fingerprint changed since the run
        /// started (recorded in provenance.json).
        #[arg(long, requires = "resume")]
        allow_data_change: bool,
    },
    /// Hand a grid's unfinished points to Slurm as a job array (--slurm) or to N local processes
    /// (--local); `odm sweep status DIR` reports on a sweep folder.
    Sweep(SweepArgs),
    /// Timings: conv forward+backward, plain and gated QAT steps, against an sgemm peak.
    Bench {
        /// Problem size: `full` (EDSR-baseline, batch 16, 48×48) or `small` (a smoke run).
        #[arg(long, default_value = "full")]
        size: String,
        /// Timed repetitions (median reported) after one warm-up.
        #[arg(long, default_value_t = 3)]
        reps: usize,
        #[arg(long, value_parser = parse_threads)]
        threads: Option<usize>,
        #[arg(long)]
        json: bool,
        /// cpu, cuda or cuda:N (CUDA needs `--features cuda`).
        #[arg(long, default_value = "cpu", value_name = "cpu|cuda:N")]
        device: String,
        /// Only the training pieces or only the inference lines.
        #[arg(long, value_name = "training|inference")]
        only: Option<String>,
    },
    /// The paper's tables and figures from every finished run under --results, into --out.
    Report {
        #[arg(long, default_value = "results")]
        results: PathBuf,
        #[arg(long, default_value = "reports")]
        out: PathBuf,
        /// Published numbers for the reproduction table.
        #[arg(long, default_value = "reports/expected.ron")]
        expected: PathBuf,
    },
    /// Compare finished runs with the published numbers; exits 1 when a required check fails.
    Verify {
        #[arg(long, default_value = "results")]
        results: PathBuf,
        #[arg(long, default_value = "reports/expected.ron")]
        expected: PathBuf,
    },
    /// Publish a finished FP run as weights-only safetensors for zoo/ (plus a .json card), or
    /// write a run as an ONNX graph in QDQ form (`--onnx`).
    Export {
        /// The run folder.
        run_dir: PathBuf,
        /// The weights file to write, e.g. zoo/edsr_baseline_x4.safetensors.
        #[arg(long, required_unless_present = "onnx", conflicts_with = "onnx")]
        out: Option<PathBuf>,
        /// The ONNX file to write (8-bit RGB in, 8-bit RGB out; see README, "Export and
        /// deployment").
        #[arg(long)]
        onnx: Option<PathBuf>,
    },
    /// Write a run's activation statistics (activations.json) and cost (cost.json).
    Inspect {
        /// The run folder.
        run_dir: PathBuf,
        /// Images to inspect (default: the spec's first evaluation set).
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long, value_parser = parse_threads)]
        threads: Option<usize>,
    },
    /// Mean ± std over seeds of a spec's finished runs (e.g. an ablation grid).
    Table {
        file: PathBuf,
        #[arg(long, default_value = "results")]
        out: PathBuf,
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        overrides: Vec<String>,
    },
    /// Per-layer MACs, BitOPs and storage of a spec's model(s).
    Cost {
        file: PathBuf,
        /// LR input size WxH (default 320x180: a 720p output at ×4).
        #[arg(long, default_value = "320x180")]
        size: String,
        #[arg(long)]
        json: bool,
    },
    /// Validate a spec and print the effective config without running anything.
    Check {
        file: PathBuf,
        /// Override a spec field as `odm run --set` does, to validate it: FIELD=RON_VALUE.
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        overrides: Vec<String>,
    },
    /// Evaluate a trained run on benchmark folders.
    Eval {
        /// A run folder (results/<name>-<hash>).
        #[arg(long)]
        checkpoint: PathBuf,
        /// Benchmark folders.
        #[arg(long, num_args = 1.., required = true)]
        data: Vec<PathBuf>,
        /// Print one JSON object per folder.
        #[arg(long)]
        json: bool,
        #[arg(long, value_parser = parse_threads)]
        threads: Option<usize>,
        /// cpu, cuda or cuda:N (CUDA needs `--features cuda`).
        #[arg(long, default_value = "cpu", value_name = "cpu|cuda:N")]
        device: String,
        /// Also write every SR image (8-bit PNG, as scored) to DIR/<set>/<image>.png; DIR must
        /// not exist yet.
        #[arg(long, value_name = "DIR")]
        save_sr: Option<PathBuf>,
        /// With --save-sr, also write each LR input (the MATLAB-bicubic downscale the model
        /// sees) to DIR/<set>/lr/<image>.png, e.g. to run an exported ONNX model on it.
        #[arg(long, requires = "save_sr")]
        save_lr: bool,
        /// Super-resolve in tiles of N×N LR pixels (plus the receptive radius as overlap); the
        /// output is bit-identical to the untiled one.
        #[arg(long, value_name = "N")]
        tile: Option<usize>,
    },
    /// Evaluate a run with real integer arithmetic for its quantized convs (EDSR; see README,
    /// "Export and deployment").
    Infer {
        /// A run folder (results/<name>-<hash>).
        run_dir: PathBuf,
        /// Benchmark folders.
        #[arg(long, num_args = 1.., required = true)]
        data: Vec<PathBuf>,
        /// Print one JSON object per folder.
        #[arg(long)]
        json: bool,
        #[arg(long, value_parser = parse_threads)]
        threads: Option<usize>,
        /// Also write every SR image (8-bit PNG, as scored) to DIR/<set>/<image>.png; DIR must
        /// not exist yet.
        #[arg(long, value_name = "DIR")]
        save_sr: Option<PathBuf>,
        /// With --save-sr, also write each LR input to DIR/<set>/lr/<image>.png.
        #[arg(long, requires = "save_sr")]
        save_lr: bool,
    },
    /// Re-run a ledger run from its recorded spec (same thread count, initial weights checked
    /// by hash) into a temporary folder and compare its metrics with the recorded ones, row by
    /// row; exits 1 when they differ.
    Reproduce {
        /// A run folder (results/<name>-<hash>).
        run_dir: PathBuf,
        /// Compare up to this iteration (default: the whole run).
        #[arg(long, value_name = "STEP")]
        until: Option<usize>,
    },
    /// The bicubic baseline of a folder.
    Bicubic {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        scale: usize,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// The most worker threads `--threads` accepts.
const MAX_THREADS: usize = 1024;

/// `--threads N`: 1 to [`MAX_THREADS`].
fn parse_threads(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?}: use a thread count from 1 to {MAX_THREADS} (default: all cores)"
        )),
    }
}

/// `--size WxH`: each side 1 to `spec::limits::MAX_SIDE` LR pixels (so the cost counts are
/// exact, `quant::cost`).
fn parse_size(s: &str) -> anyhow::Result<(usize, usize)> {
    let max = odm::spec::limits::MAX_SIDE;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let (w, h) = s
        .split_once('x')
        .filter(|(w, h)| digits(w) && digits(h))
        .ok_or_else(|| odm::user(format!("--size {s:?}: expected WxH, e.g. 320x180")))?;
    let side = |t: &str| t.parse::<usize>().ok().filter(|v| (1..=max).contains(v));
    match (side(w), side(h)) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err(odm::user(format!(
            "--size {s}: each side must be 1 to {max} LR pixels; use a smaller size, e.g. 320x180"
        ))),
    }
}

/// A `--device` value, or an input error naming the allowed forms.
fn parse_device(s: &str) -> anyhow::Result<odm::spec::Device> {
    odm::backend::parse_device(s).ok_or_else(|| {
        odm::user(format!(
            "--device {s:?}: use cpu, cuda or cuda:N (e.g. cuda:0)"
        ))
    })
}

/// `--device` of `odm run` as a `--set device=...` override (applied last, so it wins).
fn device_override(s: &str) -> anyhow::Result<String> {
    Ok(match parse_device(s)? {
        odm::spec::Device::Cpu => r#"device="Cpu""#.to_string(),
        odm::spec::Device::Cuda(n) => format!(r#"device={{"Cuda":{n}}}"#),
    })
}

/// One set's score: a JSON object or a sentence, on one line.
fn print_score(s: &odm::eval::SetScore, json: bool) {
    if json {
        outln!("{}", serde_json::to_string(s).expect("json"));
    } else {
        outln!("{}", commands::describe(s));
    }
}

/// `odm run`: every run of a file (or `--list` its points).
fn cmd_run(c: Cmd) -> anyhow::Result<()> {
    let Cmd::Run {
        file,
        out,
        threads,
        quiet,
        resume,
        stop_after,
        mut overrides,
        device,
        point,
        list,
        allow_data_change,
    } = c
    else {
        unreachable!("called with Cmd::Run")
    };
    if let Some(d) = device {
        overrides.push(device_override(&d)?);
    }
    let points = point.as_deref().map(commands::parse_points).transpose()?;
    let opts = commands::RunOpts {
        out,
        threads,
        progress: !quiet,
        resume,
        stop_after,
        overrides,
        points,
        allow_data_change,
        until: None,
    };
    if list {
        out!("{}", commands::list(&file, &opts)?);
        return Ok(());
    }
    for d in commands::run(&file, &opts)? {
        outln!("{}", d.display());
    }
    Ok(())
}

/// `odm sweep`.
fn cmd_sweep(a: SweepArgs) -> anyhow::Result<()> {
    use commands::sweep::{SlurmOpts, SweepOpts, Target};
    if let Some(SweepCmd::Status { dir }) = a.status {
        out!("{}", commands::sweep::status(&dir)?);
        return Ok(());
    }
    let file = a.file.expect("clap requires FILE");
    let target = if a.local {
        Target::Local { jobs: a.jobs }
    } else {
        Target::Slurm {
            opts: SlurmOpts {
                partition: a.partition,
                time: a.time,
                cpus_per_task: a.cpus_per_task,
                gpus_per_task: a.gpus_per_task,
                max_parallel: a.max_parallel,
            },
            submit: a.submit,
        }
    };
    let run = commands::RunOpts {
        out: a.out,
        threads: a.threads,
        progress: false,
        resume: true,
        stop_after: None,
        overrides: a.overrides,
        points: a.point.as_deref().map(commands::parse_points).transpose()?,
        allow_data_change: false,
        until: None,
    };
    let (_, lines) = commands::sweep::sweep(&file, &SweepOpts { run, target })?;
    for l in lines {
        outln!("{l}");
    }
    Ok(())
}

/// `odm bench`.
fn cmd_bench(c: Cmd) -> anyhow::Result<()> {
    let Cmd::Bench {
        size,
        reps,
        threads,
        json,
        device,
        only,
    } = c
    else {
        unreachable!("called with Cmd::Bench")
    };
    let parts = match only.as_deref() {
        None => odm::bench::Parts::All,
        Some("training") => odm::bench::Parts::Training,
        Some("inference") => odm::bench::Parts::Inference,
        Some(o) => {
            return Err(odm::user(format!(
                "--only {o:?}: use training or inference"
            )))
        }
    };
    let size = match size.as_str() {
        "full" => odm::bench::Size::Full,
        "small" => odm::bench::Size::Small,
        other => return Err(odm::user(format!("--size {other:?}: use full or small"))),
    };
    let device = parse_device(&device)?;
    let t = odm::backend::set_threads(threads);
    let r = odm::bench::run(size, reps, t, parts, device)?;
    if json {
        outln!("{}", serde_json::to_string(&r).expect("json"));
    } else {
        out!("{}", r.describe());
    }
    Ok(())
}

/// `odm export`: zoo weights (`--out`) or ONNX (`--onnx`).
fn cmd_export(c: Cmd) -> anyhow::Result<()> {
    let Cmd::Export { run_dir, out, onnx } = c else {
        unreachable!("called with Cmd::Export")
    };
    match (out, onnx) {
        (None, Some(f)) => commands::export::onnx(&run_dir, &f)
            .map(|(bytes, q)| outln!("wrote {} ({bytes} bytes, {q} quantized convs)", f.display())),
        (out, _) => {
            commands::export::export(&run_dir, &out.expect("clap requires --out or --onnx"))
                .map(|(w, card)| outln!("wrote {} and {}", w.display(), card.display()))
        }
    }
}

/// `odm infer`: scores under the integer path, and what it ran.
fn cmd_infer(c: Cmd) -> anyhow::Result<()> {
    let Cmd::Infer {
        run_dir,
        data,
        json,
        threads,
        save_sr,
        save_lr,
    } = c
    else {
        unreachable!("called with Cmd::Infer")
    };
    let save = save_sr.as_deref().map(|d| (d, save_lr));
    let (scores, st) = commands::infer::infer(&run_dir, &data, threads, save)?;
    scores.iter().for_each(|s| print_score(s, json));
    if !json {
        outln!(
            "integer convs: {} ({:?}), float convs: {}",
            st.int_convs,
            st.path,
            st.float_convs
        );
    }
    Ok(())
}

/// `odm inspect`.
fn cmd_inspect(c: Cmd) -> anyhow::Result<()> {
    let Cmd::Inspect {
        run_dir,
        data,
        threads,
    } = c
    else {
        unreachable!("called with Cmd::Inspect")
    };
    odm::backend::set_threads(threads);
    let (s, written) = commands::inspect(&run_dir, data.as_deref())?;
    for l in &s.layers {
        let clip = l
            .bounds
            .map_or(String::new(), |(a, b)| format!(", clip [{a:.2}, {b:.2}]"));
        outln!(
            "{}: M_σ {:.3}, M_μ {:.3}, range [{:.2}, {:.2}]{clip}",
            l.layer,
            l.m_sigma,
            l.m_mu,
            l.hist_lo,
            l.hist_hi
        );
    }
    if data.is_some() {
        outln!("wrote {}", written.display());
    } else {
        outln!("wrote {} and cost.json", written.display());
    }
    Ok(())
}

/// With `ODM_REPORT_PEAK_RSS=1`, `odm` prints `peak_rss_bytes N` to standard error as it exits:
/// its peak resident memory (VmHWM of `/proc/self/status`; Linux only, no line elsewhere), so a
/// test or a script can check the memory a command needed (`tests/fault_tile_memory.rs`).
fn report_peak_rss() {
    if std::env::var_os("ODM_REPORT_PEAK_RSS").is_some_and(|v| v == "1") {
        if let Some(b) = odm::bench::peak_rss_bytes() {
            eprintln!("peak_rss_bytes {b}");
        }
    }
}

fn main() -> ExitCode {
    odm::backend::keep_freed_memory();
    let cmd = Cli::parse().cmd;
    let result = odm::kernels::path::check_env().and_then(|()| dispatch(cmd));
    report_peak_rss();
    match result {
        Ok(()) => match commands::stdout::failure() {
            None => ExitCode::SUCCESS,
            Some(e) => {
                eprintln!("error: writing standard output: {e}");
                ExitCode::from(1)
            }
        },
        Err(e) => {
            if let Some(i) = e.downcast_ref::<commands::Interrupted>() {
                eprintln!("odm: {i}");
                ExitCode::from(130)
            } else if let Some(u) = e.downcast_ref::<odm::UserError>() {
                eprintln!("error: {u}");
                ExitCode::from(2)
            } else {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}

/// Run one subcommand.
fn dispatch(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        c @ Cmd::Run { .. } => cmd_run(c),
        Cmd::Cost { file, size, json } => parse_size(&size).and_then(|(w, h)| {
            commands::cost(&file, w, h).map(|reports| {
                for (name, r) in reports {
                    if json {
                        // Serialized directly, not through `serde_json::Value`, which holds no
                        // integer past u64 (counts at large sizes are u128, `quant::cost`).
                        #[derive(serde::Serialize)]
                        struct Line<'a> {
                            run: &'a str,
                            cost: &'a odm::quant::cost::CostReport,
                        }
                        let line = Line {
                            run: &name,
                            cost: &r,
                        };
                        outln!(
                            "{}",
                            serde_json::to_string(&line).expect("a cost report serializes")
                        );
                    } else {
                        outln!("# {name}\n{}", r.table());
                    }
                }
            })
        }),
        Cmd::Table {
            file,
            out,
            overrides,
        } => commands::table(&file, &out, &overrides).map(|t| out!("{t}")),
        c @ Cmd::Bench { .. } => cmd_bench(c),
        Cmd::Sweep(a) => cmd_sweep(a),
        Cmd::Report {
            results,
            out,
            expected,
        } => odm::report::report(&results, &out, Some(&expected)).map(|files| {
            for f in files {
                outln!("{}", out.join(f).display());
            }
        }),
        Cmd::Verify { results, expected } => match odm::report::verify::verify(&results, &expected)
        {
            Ok((text, ok)) => {
                out!("{text}");
                if !ok {
                    // A failed check is a result, not an error: the report says which.
                    let _ = std::io::Write::flush(&mut std::io::stdout());
                    std::process::exit(1);
                }
                Ok(())
            }
            Err(e) => Err(e),
        },
        c @ Cmd::Export { .. } => cmd_export(c),
        c @ Cmd::Inspect { .. } => cmd_inspect(c),
        Cmd::Check { file, overrides } => commands::check(&file, &overrides).map(|s| out!("{s}")),
        Cmd::Eval {
            checkpoint,
            data,
            json,
            threads,
            device,
            save_sr,
            save_lr,
            tile,
        } => parse_device(&device)
            .and_then(|device| {
                commands::eval(
                    &checkpoint,
                    &data,
                    threads,
                    device,
                    save_sr.as_deref().map(|d| (d, save_lr)),
                    tile,
                )
            })
            .map(|scores| scores.iter().for_each(|s| print_score(s, json))),
        c @ Cmd::Infer { .. } => cmd_infer(c),
        Cmd::Reproduce { run_dir, until } => {
            let r = commands::reproduce::reproduce(&run_dir, until)?;
            out!("{}", r.describe());
            if r.first_difference.is_some() {
                // A difference is a result, not an error: the lines above say which row.
                let _ = std::io::Write::flush(&mut std::io::stdout());
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Bicubic { data, scale, json } => {
            commands::bicubic_cmd(&data, scale).map(|s| print_score(&s, json))
        }
    }
}
