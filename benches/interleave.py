#!/usr/bin/env python3
"""Old and new odm binaries timed alternately on one machine, on each kernel path it has, with
PyTorch's figures from the same sitting (issue 26's acceptance table). Standard library only;
PyTorch, when asked for, runs from its own throwaway venv through benches/pytorch_ref.py.

Each round runs `BIN bench --json --size full --threads T --reps R` for old, then new, on every
kernel path (ODM_KERNEL_PATH=auto, and =avx2 when the CPU has AVX-512); the table gives each
field's median over the rounds and new/old. Ratios are only meaningful within one sitting.

Usage:
  python3 benches/interleave.py --old OLD_BIN --new NEW_BIN [--threads 2] [--reps 3]
      [--rounds 2] [--only training|inference] [--torch-python /tmp/pt/bin/python]
"""
import argparse, json, os, statistics, subprocess, sys

FIELDS = [  # (label, section, key)
    ("conv3x3 fwd+bwd ms (autodiff)", "training", "conv_fwd_bwd_ms"),
    ("conv kernels alone ms", "training", "conv_kernels_ms"),
    ("plain QAT step ms", "training", "plain_step_ms"),
    ("gated QAT step ms", "training", "gated_step_ms"),
    ("FP step ms", "training", "fp_step_ms"),
    ("FP step % of sgemm peak", "training", "fp_step_efficiency"),
    ("plain step % of sgemm peak", "training", "plain_step_efficiency"),
    ("gated / plain", "training", "gated_over_plain"),
    ("FP inference ms", "inference", "inference_ms"),
    ("W4A4 inference ms", "inference", "inference_w4a4_ms"),
    ("W4A4 evaluation ms", "inference", "eval_w4a4_ms"),
]


def has_avx512():
    try:
        return " avx512f" in open("/proc/cpuinfo").read()
    except OSError:
        return False


def bench(binary, path, a):
    env = dict(os.environ, ODM_KERNEL_PATH=path)
    cmd = [binary, "bench", "--json", "--size", "full", "--threads", str(a.threads), "--reps", str(a.reps)]
    if a.only:
        cmd += ["--only", a.only]
    out = json.loads(subprocess.check_output(cmd, env=env))
    flat = dict(out)
    for sec in ("training", "inference"):  # fields may sit at the top level or in a section
        if isinstance(out.get(sec), dict):
            flat.update(out[sec])
    return flat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", choices=["training", "inference"])
    ap.add_argument("--torch-python", help="python of a venv with torch: runs benches/pytorch_ref.py")
    a = ap.parse_args()
    paths = ["auto"] + (["avx2"] if has_avx512() else [])
    runs = {(p, w): [] for p in paths for w in ("old", "new")}
    for r in range(a.rounds):
        for p in paths:
            for w, b in (("old", a.old), ("new", a.new)):
                print(f"round {r + 1}: {w} on {p}", file=sys.stderr)
                runs[(p, w)].append(bench(b, p, a))
    last_new = runs[(paths[0], "new")][-1]
    print(f"odm bench, {a.threads} threads, median of {a.rounds} rounds (each the median of {a.reps} reps); "
          f"{last_new.get('device', '')}; kernel paths: {', '.join(paths)}\n")
    head = "| | " + " | ".join(f"old ({p}) | new ({p}) | new/old" for p in paths) + " |"
    print(head)
    print("|---" * (1 + 3 * len(paths)) + "|")
    for label, _, key in FIELDS:
        cells = []
        for p in paths:
            vals = [[x.get(key) for x in runs[(p, w)]] for w in ("old", "new")]
            if any(v is None for vs in vals for v in vs):
                cells += ["–", "–", "–"]
                continue
            o, n = (statistics.median(v) for v in vals)
            pct = "%" in label
            cells += [f"{100 * o:.0f}" if pct else f"{o:.1f}", f"{100 * n:.0f}" if pct else f"{n:.1f}", f"{n / o:.2f}"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    if a.torch_python:
        tmp = "/tmp/odm-interleave-new.json"
        with open(tmp, "w") as f:
            json.dump(last_new, f)
        here = os.path.dirname(os.path.abspath(__file__))
        print("\nPyTorch in the same sitting (odm column: the new binary's last round):\n")
        subprocess.check_call([a.torch_python, os.path.join(here, "pytorch_ref.py"), "--threads", str(a.threads),
                               "--size", "full", "--reps", str(a.reps), "--odm-json", tmp])


if __name__ == "__main__":
    main()
