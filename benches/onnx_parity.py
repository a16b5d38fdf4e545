#!/usr/bin/env python3
"""Parity of an exported ONNX model with `odm eval` (issue 16, README "Export and deployment").

For a run folder: `odm export RUN --onnx` (unless --onnx names a file already written), then
`odm eval --checkpoint RUN --data DIR... --save-sr OUT --save-lr`, then ONNX Runtime on every saved
LR input; the 8-bit outputs are compared pixel by pixel with odm's SR images. Passes when at
least 99.9 % of the values are identical and none is more than 1 level apart (exit 0), else
exit 1. With --bench, also the median wall time of ONNX Runtime (CPU, sequential, all threads)
on one W x H input.

Needs onnxruntime and numpy (a throwaway venv, never a project dependency):
  python3 -m venv /tmp/ort && /tmp/ort/bin/pip install onnxruntime numpy
  /tmp/ort/bin/python benches/onnx_parity.py --odm target/release/odm --run results/RUN \\
      --data assets/cc0/holdout $ODM_DATA/benchmark/Set5
ODM_ORT_OPT=ORT_DISABLE_ALL runs ONNX Runtime without its graph optimisations (to rule them out).
PNGs are read with a small decoder of odm's own 8-bit RGB PNGs (zlib and the five PNG filters).
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np
import onnxruntime as ort


def read_png(path):
    """8-bit RGB (or RGBA, gray) non-interlaced PNG -> H x W x 3 uint8 array."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0, f"{path}: unsupported PNG"
            ch = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(h, 1 + w * ch)
    out = np.zeros((h, w * ch), dtype=np.int32)
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        prev = out[y - 1] if y else np.zeros(w * ch, dtype=np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 255
        else:
            cur = np.zeros(w * ch, dtype=np.int32)
            for i in range(w * ch):
                a = cur[i - ch] if i >= ch else 0
                b = prev[i]
                c = prev[i - ch] if i >= ch else 0
                if f == 1:
                    p = a
                elif f == 3:
                    p = (a + b) // 2
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (line[i] + p) & 255
        out[y] = cur
    img = out.reshape(h, w, ch).astype(np.uint8)
    if ch == 1:
        img = np.repeat(img, 3, axis=2)
    return img[:, :, :3]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--odm", required=True, help="the odm binary")
    ap.add_argument("--run", required=True, help="a finished run folder with its checkpoint")
    ap.add_argument("--data", nargs="+", required=True, help="image folders (HR) to compare on")
    ap.add_argument("--onnx", help="an exported model (default: export the run to a temporary file)")
    ap.add_argument("--bench", metavar="WxH", help="also time ONNX Runtime on one input of this size")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="odm-onnx-")
    model = a.onnx or os.path.join(tmp, "model.onnx")
    if not a.onnx:
        subprocess.run([a.odm, "export", a.run, "--onnx", model], check=True, stdout=subprocess.DEVNULL)
    out = os.path.join(tmp, "sr")
    subprocess.run([a.odm, "eval", "--checkpoint", a.run, "--data", *a.data, "--save-sr", out,
                    "--save-lr"], check=True, stdout=subprocess.DEVNULL)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, os.environ.get("ODM_ORT_OPT", "ORT_ENABLE_ALL"))
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    total = same = 0
    worst = 0
    images = []
    for s in sorted(os.listdir(out)):
        for f in sorted(os.listdir(os.path.join(out, s, "lr"))):
            lr = read_png(os.path.join(out, s, "lr", f))
            ref = read_png(os.path.join(out, s, f)).astype(np.int32)
            x = np.ascontiguousarray(lr.transpose(2, 0, 1)[None])
            y = sess.run(["sr"], {"lr": x})[0][0].transpose(1, 2, 0).astype(np.int32)
            assert y.shape == ref.shape, f"{s}/{f}: {y.shape} vs {ref.shape}"
            d = np.abs(y - ref)
            total += d.size
            same += int((d == 0).sum())
            worst = max(worst, int(d.max()))
            images.append({"set": s, "image": f, "differing": int((d != 0).sum()),
                           "values": int(d.size), "max_diff": int(d.max())})
    res = {"model": model, "values": total, "identical_fraction": same / total,
           "max_diff": worst, "images": images}
    res["pass"] = res["identical_fraction"] >= 0.999 and worst <= 1
    if a.bench:
        w, h = (int(v) for v in a.bench.lower().split("x"))
        x = np.random.default_rng(0).integers(0, 256, (1, 3, h, w), dtype=np.uint8)
        sess.run(["sr"], {"lr": x})
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            sess.run(["sr"], {"lr": x})
            ts.append((time.perf_counter() - t0) * 1e3)
        res["ort_ms"] = float(np.median(ts))
        res["ort_input"] = f"{w}x{h}"
    if a.json:
        print(json.dumps(res))
    else:
        for i in images:
            print(f"{i['set']}/{i['image']}: {i['differing']} of {i['values']} values differ, max {i['max_diff']}")
        print(f"identical {100 * res['identical_fraction']:.4f} %, max difference {worst}: "
              f"{'PASS' if res['pass'] else 'FAIL'}")
        if "ort_ms" in res:
            print(f"ONNX Runtime: {res['ort_ms']:.1f} ms at {res['ort_input']}")
    sys.exit(0 if res["pass"] else 1)


if __name__ == "__main__":
    main()
