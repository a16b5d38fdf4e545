#!/usr/bin/env bash
# GPU check (issue 6) for a lent GPU machine; not part of CI, and not yet run on a real GPU.
#   1. builds `odm` with `--features cuda` (offline; or uses $ODM_BIN) and prints nvidia-smi;
#   2. trains tests/fixtures/gpu_check.ron (EDSR 2×16, ×2, 100 iterations) once on the CPU and
#      once on Cuda(0), and compares them: relative difference of the mean of the last 10 logged
#      L1 losses <= LOSS_TOL (2%), final holdout PSNR-Y within PSNR_TOL (0.05 dB); the per-step
#      maximum relative difference is printed;
#   3. times `odm bench --device cuda:0` (3×3 conv fwd+bwd, plain and gated EDSR-baseline W4A4 QAT
#      steps) against PyTorch + cuDNN on the same GPU (benches/pytorch_ref.py --device cuda).
# Exit codes: 0 pass, 1 a tolerance or GPU step failed, 3 no toolchain or the build failed.
# The summary goes to stdout and, when $OUT is set, to $OUT/gpu_check.txt.
# Usage, from anywhere:  bash benches/gpu_check.sh
# Env: ODM_BIN, REPS (5), BENCH_SIZE (full), LOSS_TOL (0.02), PSNR_TOL (0.05), PYTHON (python3),
# BUDGET (450: seconds for the whole script; each step's timeout is cut to what is left), and
# GPU_CHECK_DEVICE (cuda:0; `GPU_CHECK_DEVICE=cpu BENCH_SIZE=small` exercises the whole script on a machine without GPU).
set -uo pipefail
cd "$(dirname "$0")/.."
LOSS_TOL="${LOSS_TOL:-0.02}"
PSNR_TOL="${PSNR_TOL:-0.05}"
REPS="${REPS:-5}"
BENCH_SIZE="${BENCH_SIZE:-full}"
PYTHON="${PYTHON:-python3}"
DEVICE="${GPU_CHECK_DEVICE:-cuda:0}"
case "$DEVICE" in cuda*) PT_DEVICE=cuda ;; *) PT_DEVICE=cpu ;; esac
WORK="$(mktemp -d)"
SUMMARY="$WORK/gpu_check.txt"
T0=$(date +%s)
BUDGET="${BUDGET:-450}"
say() { echo "gpu_check: $*" | tee -a "$SUMMARY"; }
cap() { # cap SECONDS: SECONDS, or what is left of BUDGET when less (at least 1)
    local left=$((BUDGET - ($(date +%s) - T0)))
    [ "$left" -lt "$1" ] && { [ "$left" -gt 0 ] && echo "$left" || echo 1; } || echo "$1"
}
finish() {
    say "result: $2 (exit $1, $(($(date +%s) - T0)) s)"
    if [ -n "${OUT:-}" ]; then
        mkdir -p "$OUT" && cp "$SUMMARY" "$OUT/gpu_check.txt"
        cp "$WORK"/*.json "$WORK"/*.csv "$OUT"/ 2>/dev/null
    fi
    exit "$1"
}

# --- 1. toolchain, GPU, build --------------------------------------------------------------------
if command -v nvidia-smi >/dev/null; then
    nvidia-smi 2>&1 | tee -a "$SUMMARY"
    drv=$(nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | grep -o '[0-9.]*$')
else
    say "nvidia-smi not found (no NVIDIA driver on this machine?)"
    drv=""
fi
# cudarc's bindings follow the toolkit (nvcc), else the newest CUDA it knows; pin them to the
# driver's version instead, so every symbol cudarc asks libcuda for exists.
if [ -n "$drv" ] && [ -z "${CUDARC_CUDA_VERSION:-}" ]; then
    dmaj=${drv%%.*} dmin=${drv#*.}
    for v in 13.4 13.3 13.2 13.1 13.0 12.9 12.8 12.6 12.5 12.4 12.3 12.2 12.1 12.0 11.8; do
        maj=${v%%.*} min=${v#*.}
        if [ "$maj" -lt "$dmaj" ] || { [ "$maj" -eq "$dmaj" ] && [ "$min" -le "$dmin" ]; }; then
            export CUDARC_CUDA_VERSION="${maj}0${min}0"
            break
        fi
    done
fi
say "driver CUDA ${drv:-none}; CUDARC_CUDA_VERSION=${CUDARC_CUDA_VERSION:-unset}"
# CubeCL compiles its kernels with NVRTC at run time: without a toolkit, use the libnvrtc that
# PyTorch's pip wheels ship (nvidia/cuda_nvrtc/lib).
if ! ldconfig -p 2>/dev/null | grep -q 'libnvrtc\.so'; then
    nvrtc_dirs=$("$PYTHON" - <<'EOF' 2>/dev/null
import glob, os
roots = []
try:
    import nvidia
    roots += list(nvidia.__path__)
except Exception:
    pass
try:
    import torch
    roots.append(os.path.join(os.path.dirname(torch.__file__), "lib"))
except Exception:
    pass
found = {os.path.dirname(p) for r in roots for p in glob.glob(os.path.join(r, "**", "libnvrtc.so*"), recursive=True)}
print(":".join(sorted(found)))
EOF
    )
    [ -n "$nvrtc_dirs" ] && export LD_LIBRARY_PATH="$nvrtc_dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "libnvrtc not in ldconfig; from Python packages: ${nvrtc_dirs:-none found}"
fi

if [ -n "${ODM_BIN:-}" ]; then
    BIN="$ODM_BIN"
    say "using ODM_BIN=$BIN (no build)"
elif ! command -v cargo >/dev/null; then
    say "cargo not found: install a Rust toolchain (rustup, stable), or set ODM_BIN to an odm binary built with --features cuda"
    finish 3 "NO TOOLCHAIN"
else
    say "$(cargo --version)"
    t=$(date +%s)
    if ! cargo build --release --locked --offline --features cuda 2>&1 | tail -n 20; then
        say "cargo build --features cuda failed (offline: the crates in Cargo.lock must already be in ~/.cargo/registry, e.g. from \`cargo fetch --locked\`)"
        finish 3 "BUILD FAILED"
    fi
    say "cargo build --release --features cuda: $(($(date +%s) - t)) s"
    BIN=target/release/odm
fi

# --- 2. the same toy run on CPU and GPU ----------------------------------------------------------
toy() { # toy NAME DEVICE SECONDS: trains the toy spec on DEVICE; its run folder goes to $WORK/NAME.dir
    local t rc
    t=$(date +%s)
    timeout "$(cap "$3")" "$BIN" run tests/fixtures/gpu_check.ron --device "$2" --out "$WORK/$1" \
        --quiet >"$WORK/$1.dir" 2>"$WORK/$1.log"
    rc=$?
    if [ "$rc" -ne 0 ] || [ ! -s "$WORK/$1.dir" ]; then
        say "$1 toy run on $2 failed (exit $rc$([ "$rc" -eq 124 ] && echo ', timed out')):"
        tail -n 20 "$WORK/$1.log" | tee -a "$SUMMARY"
        finish 1 "$(echo "$1" | tr a-z A-Z) RUN FAILED"
    fi
    say "$1 toy run on $2: $(($(date +%s) - t)) s"
}
toy cpu cpu 120
toy gpu "$DEVICE" 180
cpu_dir=$(tail -n 1 "$WORK/cpu.dir")
gpu_dir=$(tail -n 1 "$WORK/gpu.dir")
cp "$gpu_dir/provenance.json" "$WORK/gpu_provenance.json"
cp "$cpu_dir/metrics.csv" "$WORK/cpu_metrics.csv"
cp "$gpu_dir/metrics.csv" "$WORK/gpu_metrics.csv"
"$PYTHON" - "$cpu_dir" "$gpu_dir" "$LOSS_TOL" "$PSNR_TOL" <<'EOF' 2>&1 | tee -a "$SUMMARY"
import csv, json, sys
cpu, gpu, loss_tol, psnr_tol = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
def losses(d):
    with open(d + "/metrics.csv") as f:
        return {int(r["step"]): float(r["value"]) for r in csv.DictReader(f)
                if r["split"] == "train" and r["metric"] == "l1"}
def psnr(d):
    with open(d + "/summary.json") as f:
        return json.load(f)["eval"][0]["psnr_y"]
lc, lg = losses(cpu), losses(gpu)
steps = sorted(set(lc) & set(lg))
rel = {s: abs(lg[s] - lc[s]) / max(abs(lc[s]), 1e-12) for s in steps}
worst = max(steps, key=rel.get)
print(f"device: {json.load(open(gpu + '/provenance.json'))['device']}")
print(f"loss curves: {len(steps)} steps; step 1 rel diff {rel[steps[0]]:.2e}; "
      f"per-step max rel diff {rel[worst]:.2e} (step {worst}: cpu {lc[worst]:.4f}, gpu {lg[worst]:.4f}); "
      f"mean per-step rel diff {sum(rel.values()) / len(rel):.2e}")
last = steps[-10:]
mc, mg = sum(lc[s] for s in last) / len(last), sum(lg[s] for s in last) / len(last)
d_loss = abs(mg - mc) / mc
pc, pg = psnr(cpu), psnr(gpu)
print(f"mean of the last 10 losses: cpu {mc:.4f}, gpu {mg:.4f}, rel diff {d_loss:.2%} (tolerance {loss_tol:.0%}): "
      + ("OK" if d_loss <= loss_tol else "FAIL"))
print(f"final holdout PSNR-Y: cpu {pc:.3f} dB, gpu {pg:.3f} dB, diff {pg - pc:+.3f} dB (tolerance {psnr_tol} dB): "
      + ("OK" if abs(pg - pc) <= psnr_tol else "FAIL"))
sys.exit(0 if d_loss <= loss_tol and abs(pg - pc) <= psnr_tol else 1)
EOF
compare=${PIPESTATUS[0]}

# --- 3. speed: odm on the GPU against PyTorch + cuDNN --------------------------------------------
t=$(date +%s)
if timeout "$(cap 150)" "$BIN" bench --device "$DEVICE" --size "$BENCH_SIZE" --reps "$REPS" --json \
    >"$WORK/odm_bench.json" 2>"$WORK/bench.log"; then
    say "odm bench --device $DEVICE --size $BENCH_SIZE: $(($(date +%s) - t)) s"
    if "$PYTHON" -c 'import torch' 2>/dev/null; then
        timeout "$(cap 90)" "$PYTHON" benches/pytorch_ref.py --device "$PT_DEVICE" --size "$BENCH_SIZE" \
            --reps "$REPS" --threads "$(nproc)" --odm-json "$WORK/odm_bench.json" 2>&1 | tee -a "$SUMMARY"
    else
        say "PyTorch not importable; odm alone:"
        tee -a "$SUMMARY" <"$WORK/odm_bench.json"
    fi
else
    say "odm bench --device $DEVICE failed:"
    tail -n 20 "$WORK/bench.log" | tee -a "$SUMMARY"
    compare=1
fi

if [ "$compare" -ne 0 ]; then
    finish 1 "FAIL"
fi
finish 0 "PASS"
