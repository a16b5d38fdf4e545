#!/usr/bin/env python3
"""PyTorch reference for `odm bench` (not run in CI; PyTorch is never a project dependency).

Times, with the same shapes and thread count, in one run:
  * a 3x3 conv (64->64) forward + backward on 16x64x48x48,
  * a plain QAT step: EDSR-baseline x4 (16 blocks, 64 features), W4A4 fake quant of the AdaBM form
    (odm's `Odm` preset) on the 32 block convs: learned asymmetric activation bounds and a learned
    symmetric weight bound, both differentiated through the step size; L1 loss, Adam,
  * an FP step (the same network without fake quantization), FP and W4A4 inference of one
    320x180 LR input under torch.no_grad() (x4 output 1280x720), and the peak resident memory
    (ru_maxrss) after the plain step,
  * a gated QAT step: the same plus the per-channel variance of the quantizer inputs, with
    g = g_rec + lambda * [sign(g_var) == sign(g_rec)] * g_var (two autograd.grad calls),
then runs `odm bench --json` (or reads its output from --odm-json) and prints both and the ratios.

With --device cuda, PyTorch runs on the GPU with cuDNN autotuning (cudnn.benchmark) and every
timing is bracketed by torch.cuda.synchronize(); odm is run with `--device cuda:0` (a build with
`--features cuda`). benches/gpu_check.sh uses it that way.

Usage (throwaway venv):  python3 -m venv /tmp/pt && /tmp/pt/bin/pip install torch numpy
  /tmp/pt/bin/python benches/pytorch_ref.py [--threads 2] [--size full|small] [--reps 3]
      [--device cpu|cuda] [--odm-json FILE]
"""
import argparse, json, resource, subprocess, time, statistics
import torch
import torch.nn as nn
import torch.nn.functional as F


def sync():
    """Wait for queued GPU work, so that a timing covers it (a no-op on CPU)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def median_ms(fn, reps, warmup=1):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        sync(); t = time.perf_counter(); fn(); sync(); ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


class FakeQuant(torch.autograd.Function):
    """round with a straight-through estimator."""
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, g):
        return g


def fq(x, lo, hi, bits):
    """The AdaBM quantizer: 2^b levels over [lo, hi], gradients through clip and step size."""
    n = 2 ** bits - 1
    xc = torch.clamp(x, min=lo, max=hi)
    return FakeQuant.apply((xc - lo) / (hi - lo) * n) / n * (hi - lo) + lo


class QConv(nn.Conv2d):
    def __init__(self, c, bits):
        super().__init__(c, c, 3, padding=1)
        self.lo = nn.Parameter(torch.tensor(-8.0))
        self.hi = nn.Parameter(torch.tensor(8.0))
        self.uw = nn.Parameter(self.weight.detach().max().clone())
        self.bits = bits
        self.captured = None

    def forward(self, x):
        self.captured = x
        if self.bits is None:  # full precision
            return F.conv2d(x, self.weight, self.bias, padding=1)
        xq = fq(x, self.lo, self.hi, self.bits)
        wq = fq(self.weight, -self.uw, self.uw, self.bits)
        return F.conv2d(xq, wq, self.bias, padding=1)


class Edsr(nn.Module):
    def __init__(self, blocks, feats, scale, bits):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1) * 255)
        self.head = nn.Conv2d(3, feats, 3, padding=1)
        self.blocks = nn.ModuleList([nn.ModuleList([QConv(feats, bits), QConv(feats, bits)]) for _ in range(blocks)])
        self.body_end = nn.Conv2d(feats, feats, 3, padding=1)
        ups = []
        for _ in range(scale.bit_length() - 1):
            ups += [nn.Conv2d(feats, 4 * feats, 3, padding=1), nn.PixelShuffle(2)]
        self.up = nn.Sequential(*ups)
        self.tail = nn.Conv2d(feats, 3, 3, padding=1)

    def body(self, x):
        x = self.head(x - self.mean)
        h = x
        for c1, c2 in self.blocks:
            h = h + c2(F.relu(c1(h)))
        return x, h

    def forward(self, x):
        x0, h = self.body(x)
        return self.tail(self.up(self.body_end(h) + x0)) + self.mean

    def qconvs(self):
        return [c for b in self.blocks for c in b]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", default="full")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--odm", default="target/release/odm")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--odm-json", default=None, help="odm bench --json output to use instead of running odm")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    if a.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("pytorch_ref.py: --device cuda but torch.cuda.is_available() is False")
        torch.backends.cudnn.benchmark = True
    blocks, feats, batch, lr_side, conv_shape = (16, 64, 16, 48, (16, 64, 48, 48)) if a.size == "full" else (4, 16, 4, 16, (4, 16, 16, 16))

    n, c, h, w = conv_shape
    x0 = torch.randn(n, c, h, w, device=dev)
    w0 = torch.randn(c, c, 3, 3, device=dev) * 0.05

    def conv_step():
        x = x0.clone().requires_grad_(); wt = w0.clone().requires_grad_()
        F.conv2d(x, wt, padding=1).sum().backward()

    conv_ms = median_ms(conv_step, a.reps)

    model = Edsr(blocks, feats, 4, 4).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    lr_img = torch.rand(batch, 3, lr_side, lr_side, device=dev) * 255
    hr_img = torch.rand(batch, 3, lr_side * 4, lr_side * 4, device=dev) * 255
    params = list(model.parameters())

    def plain():
        opt.zero_grad()
        F.l1_loss(model(lr_img), hr_img).backward()
        opt.step()

    def gated():
        opt.zero_grad()
        rec = F.l1_loss(model(lr_img), hr_img)
        g_rec = torch.autograd.grad(rec, params, allow_unused=True, retain_graph=True)
        var = torch.stack([q.captured.var(dim=(2, 3), unbiased=False).mean() for q in model.qconvs()]).mean()
        g_var = torch.autograd.grad(var, params, allow_unused=True)
        for p, gr, gv in zip(params, g_rec, g_var):
            gr = torch.zeros_like(p) if gr is None else gr
            if gv is not None:
                gr = gr + 1e-4 * (gr * gv > 0) * gv
            p.grad = gr
        opt.step()

    plain_ms = median_ms(plain, a.reps)
    rss_plain = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    gated_ms = median_ms(gated, a.reps)
    fp_model = Edsr(blocks, feats, 4, None).to(dev)
    fp_opt = torch.optim.Adam(fp_model.parameters(), lr=1e-4)

    def fp_step():
        fp_opt.zero_grad()
        F.l1_loss(fp_model(lr_img), hr_img).backward()
        fp_opt.step()

    fp_ms = median_ms(fp_step, a.reps)
    iw, ih = (320, 180) if a.size == "full" else (64, 48)
    inf_x = torch.rand(1, 3, ih, iw, device=dev) * 255

    def infer(m):
        with torch.no_grad():
            m(inf_x)

    inf_ms = median_ms(lambda: infer(fp_model), a.reps)
    inf_q_ms = median_ms(lambda: infer(model), a.reps)
    if a.odm_json:
        with open(a.odm_json) as f:
            ours = json.load(f)
    else:
        odm_dev = "cuda:0" if a.device == "cuda" else "cpu"
        ours = json.loads(subprocess.check_output([a.odm, "bench", "--json", "--size", a.size, "--reps", str(a.reps),
                                                   "--threads", str(a.threads), "--device", odm_dev]))
    conv_flops = 3 * 2 * n * h * w * c * c * 9
    where = torch.cuda.get_device_name(0) + ", cuDNN " + str(torch.backends.cudnn.version()) if a.device == "cuda" else f"{a.threads} threads"
    print(f"torch {torch.__version__} on {a.device} ({where}), size {a.size}, median of {a.reps}")
    print(f"odm on {ours.get('device', 'cpu')}")
    print(f"{'':28}{'PyTorch':>12}{'odm':>12}{'odm/PyTorch':>14}")
    rows = [("conv3x3 fwd+bwd ms", conv_ms, ours["conv_fwd_bwd_ms"]),
            ("plain QAT step ms", plain_ms, ours["plain_step_ms"]),
            ("gated QAT step ms", gated_ms, ours["gated_step_ms"]),
            ("FP step ms", fp_ms, ours["fp_step_ms"]),
            (f"FP inference {iw}x{ih} ms", inf_ms, ours["inference_ms"]),
            (f"W4A4 inference {iw}x{ih} ms", inf_q_ms, ours["inference_w4a4_ms"]),
            ("peak memory after plain MiB", rss_plain, ours["peak_rss_plain_mib"])]
    for name, t, o in rows:
        print(f"{name:28}{t:12.1f}{o:12.1f}{o / t:14.2f}")
    print(f"{'gated / plain':28}{gated_ms / plain_ms:12.2f}{ours['gated_over_plain']:12.2f}")
    print(f"conv GFLOP/s: PyTorch {conv_flops / conv_ms / 1e6:.1f}, odm {ours['conv_gflops']:.1f}; "
          f"odm sgemm peak {ours['sgemm_gflops']:.1f} GFLOP/s -> odm conv at {100 * ours['conv_vs_sgemm_peak']:.0f}% of peak")


if __name__ == "__main__":
    main()
