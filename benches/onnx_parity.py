#!/usr/bin/env python3
"""Parity of an exported ONNX model with `odm eval` (issues 16 and 30, README "Export and
deployment").

For a run folder: `odm export RUN --onnx` (unless --onnx names a file already written), then
`odm eval --checkpoint RUN --data DIR... --save-sr OUT --save-lr --json`, then ONNX Runtime on
every saved LR input. Per set, ONNX Runtime's outputs are scored under odm's evaluation protocol
(src/eval/metrics.rs: 8-bit RGB -> unrounded BT.601 Y, shave `scale` px, PSNR with peak 255,
SSIM with an 11x11 Gaussian window of sigma 1.5, 'valid'; the set's score is the mean over its
images), reimplemented here in NumPy and checked first on odm's own SR images: those must
reproduce `odm eval --json`'s scores within 1e-6 (else exit 2, the protocol here is wrong).
Passes (exit 0, else 1) when every set's Y-PSNR and SSIM of ONNX Runtime's outputs lie within
0.01 dB and 0.001 of `odm eval`'s. Per image, the fraction of identical values and the largest
difference are reported, not required (float rounding flips a few quantizer codes; see the flip
audit, tests/onnx_audit.rs). With --bench, also the median wall time of ONNX Runtime (CPU,
sequential, all threads) on one W x H input.

Needs onnxruntime and numpy, and Pillow to read PNGs fast (a throwaway venv, never a project
dependency; without Pillow a slow decoder of 8-bit PNGs below is used):
  python3 -m venv /tmp/ort && /tmp/ort/bin/pip install onnxruntime numpy pillow
  /tmp/ort/bin/python benches/onnx_parity.py --odm target/release/odm --run results/RUN \\
      --data $ODM_DATA/benchmark/{Set5,Set14,B100,Urban100}
ODM_ORT_OPT=ORT_DISABLE_ALL runs ONNX Runtime without its graph optimisations (to rule them out).
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


def read_image(path):
    """An image file -> H x W x 3 uint8 array, as odm decodes it (gray replicated to RGB)."""
    try:
        from PIL import Image
    except ImportError:
        return read_png(path)
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


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


PSNR_TOL = 0.01
SSIM_TOL = 0.001
PROTOCOL_TOL = 1e-6
HR_SUBDIRS = ["HR", "GTmod12", "GT", "DIV2K_train_HR_sub", "DIV2K_train_HR", "DIV2K_valid_HR"]
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


def luma(img):
    """Unrounded BT.601 Y (MATLAB rgb2ycbcr on [0, 1] input, on the 0..255 scale), float64."""
    r, g, b = (img[:, :, i].astype(np.float64) for i in range(3))
    return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def gaussian_valid(x, g):
    """Separable 'valid' filtering of a 2-D plane by the 1-D window g (rows, then columns)."""
    k = len(g)
    h = sum(g[i] * x[:, i:x.shape[1] - k + 1 + i] for i in range(k))
    return sum(g[i] * h[i:h.shape[0] - k + 1 + i, :] for i in range(k))


def score_y(sr, hr, scale):
    """(Y-PSNR, SSIM) of 8-bit RGB `sr` against `hr`: Wang et al. 2004 with MATLAB's parameters."""
    a, b = luma(sr), luma(hr)
    a, b = a[scale:-scale, scale:-scale], b[scale:-scale, scale:-scale]
    mse = np.mean((a - b) ** 2)
    psnr = float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
    x = np.arange(11) - 5.0
    g = np.exp(-x * x / (2 * 1.5 ** 2))
    g /= g.sum()
    mu_a, mu_b = gaussian_valid(a, g), gaussian_valid(b, g)
    saa = gaussian_valid(a * a, g) - mu_a ** 2
    sbb = gaussian_valid(b * b, g) - mu_b ** 2
    sab = gaussian_valid(a * b, g) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    m = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2))
    return float(psnr), float(m.mean())


def hr_images(folder):
    """{file stem: path} of a data folder's HR images (its HR layout folder if any; LR folders
    skipped), as odm lists them (src/data/images.rs)."""
    root = next((os.path.join(folder, s) for s in HR_SUBDIRS if os.path.isdir(os.path.join(folder, s))), folder)
    found = {}
    for d, subdirs, files in os.walk(root, followlinks=True):
        subdirs[:] = [s for s in subdirs if not (s.startswith("LR") or "_LR" in s or s.startswith("."))]
        for f in files:
            if f.lower().endswith(EXTENSIONS):
                found[os.path.splitext(f)[0]] = os.path.join(d, f)
    return found


def compare_set(sess, out, name, folder, scale):
    """Per image: ONNX Runtime on the saved LR, compared with odm's SR and scored against HR."""
    hr_of = hr_images(folder)
    images = []
    for f in sorted(os.listdir(os.path.join(out, name, "lr"))):
        stem = os.path.splitext(f)[0]
        lr = read_image(os.path.join(out, name, "lr", f))
        ref = read_image(os.path.join(out, name, f))
        x = np.ascontiguousarray(lr.transpose(2, 0, 1)[None])
        y = sess.run(["sr"], {"lr": x})[0][0].transpose(1, 2, 0)
        assert y.shape == ref.shape, f"{name}/{f}: {y.shape} vs {ref.shape}"
        hr = read_image(hr_of[stem])
        hr = hr[:hr.shape[0] - hr.shape[0] % scale, :hr.shape[1] - hr.shape[1] % scale]
        d = np.abs(y.astype(np.int32) - ref.astype(np.int32))
        odm_p, odm_s = score_y(ref, hr, scale)
        ort_p, ort_s = score_y(y, hr, scale)
        images.append({"set": name, "image": stem, "values": int(d.size),
                       "identical_fraction": float((d == 0).mean()), "max_diff": int(d.max()),
                       "odm_psnr": odm_p, "ort_psnr": ort_p, "odm_ssim": odm_s, "ort_ssim": ort_s})
    return images


def set_summary(score, images):
    """One set: odm eval's scores, this script's scores of odm's and ONNX Runtime's outputs."""
    mean = lambda k: float(np.mean([i[k] for i in images]))
    s = {"set": score["set"], "scale": score["scale"], "images": len(images),
         "eval_psnr": score["psnr_y"], "eval_ssim": score["ssim_y"],
         "odm_psnr": mean("odm_psnr"), "odm_ssim": mean("odm_ssim"),
         "ort_psnr": mean("ort_psnr"), "ort_ssim": mean("ort_ssim"),
         "identical_fraction": float(sum(i["identical_fraction"] * i["values"] for i in images)
                                     / sum(i["values"] for i in images)),
         "max_diff": max(i["max_diff"] for i in images)}
    s["protocol_ok"] = (abs(s["odm_psnr"] - s["eval_psnr"]) <= PROTOCOL_TOL
                        and abs(s["odm_ssim"] - s["eval_ssim"]) <= PROTOCOL_TOL)
    s["d_psnr"] = s["ort_psnr"] - s["eval_psnr"]
    s["d_ssim"] = s["ort_ssim"] - s["eval_ssim"]
    s["pass"] = abs(s["d_psnr"]) <= PSNR_TOL and abs(s["d_ssim"]) <= SSIM_TOL
    return s


def bench(sess, size):
    """Median of 5 ONNX Runtime runs on one random W x H input, after a warm-up, in ms."""
    w, h = (int(v) for v in size.lower().split("x"))
    x = np.random.default_rng(0).integers(0, 256, (1, 3, h, w), dtype=np.uint8)
    sess.run(["sr"], {"lr": x})
    ts = []
    for _ in range(5):
        t0 = time.perf_counter()
        sess.run(["sr"], {"lr": x})
        ts.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(ts))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--odm", required=True, help="the odm binary")
    ap.add_argument("--run", required=True, help="a finished run folder with its checkpoint")
    ap.add_argument("--data", nargs="+", required=True, help="image folders (HR) to compare on")
    ap.add_argument("--onnx", help="an exported model (default: export the run to a temporary file)")
    ap.add_argument("--bench", metavar="WxH", help="also time ONNX Runtime on one input of this size")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="odm-onnx-") as tmp:
        code = parity(a, tmp)
    sys.exit(code)


def parity(a, tmp):
    """Everything in `main` but the arguments, with the exported model and images in `tmp`;
    returns the exit code."""
    model = a.onnx or os.path.join(tmp, "model.onnx")
    if not a.onnx:
        subprocess.run([a.odm, "export", a.run, "--onnx", model], check=True, stdout=subprocess.DEVNULL)
    out = os.path.join(tmp, "sr")
    ev = subprocess.run([a.odm, "eval", "--checkpoint", a.run, "--data", *a.data, "--save-sr", out,
                         "--save-lr", "--json"], check=True, stdout=subprocess.PIPE, text=True)
    scores = [json.loads(l) for l in ev.stdout.splitlines() if l.strip()]
    assert len(scores) == len(a.data), ev.stdout
    opts = ort.SessionOptions()
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, os.environ.get("ODM_ORT_OPT", "ORT_ENABLE_ALL"))
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    images, sets = [], []
    for folder, score in zip(a.data, scores):
        im = compare_set(sess, out, score["set"], folder, score["scale"])
        images += im
        sets.append(set_summary(score, im))
    res = {"model": a.onnx or "(exported to a temporary file)", "sets": sets, "images": images,
           "protocol_ok": all(s["protocol_ok"] for s in sets),
           "pass": all(s["pass"] for s in sets)}
    if a.bench:
        res["ort_ms"], res["ort_input"] = bench(sess, a.bench), a.bench
    if a.json:
        print(json.dumps(res))
    else:
        for i in images:
            print(f"{i['set']}/{i['image']}: {100 * i['identical_fraction']:.4f} % identical, "
                  f"max {i['max_diff']}; Y-PSNR odm {i['odm_psnr']:.4f} ORT {i['ort_psnr']:.4f} dB")
        for s in sets:
            print(f"{s['set']} x{s['scale']}: Y-PSNR {s['eval_psnr']:.4f} (odm eval) vs {s['ort_psnr']:.4f} "
                  f"(ONNX Runtime) dB, SSIM {s['eval_ssim']:.5f} vs {s['ort_ssim']:.5f}; "
                  f"{100 * s['identical_fraction']:.4f} % identical, max {s['max_diff']}: "
                  f"{'PASS' if s['pass'] else 'FAIL'}"
                  + ("" if s["protocol_ok"] else " (protocol check FAILED: this script's scores of "
                     "odm's own SR differ from odm eval's)"))
        if "ort_ms" in res:
            print(f"ONNX Runtime: {res['ort_ms']:.1f} ms at {res['ort_input']}")
        print("PASS" if res["pass"] and res["protocol_ok"] else "FAIL")
    return 2 if not res["protocol_ok"] else 0 if res["pass"] else 1


if __name__ == "__main__":
    main()
