#!/usr/bin/env python3
"""Named outputs of an ONNX model on one 8-bit RGB image, as raw little-endian files: the ONNX
Runtime side of the flip audit (src/export/audit.rs, tests/onnx_audit.rs).

  onnx_probe.py MODEL LR.rgb H W OUT_DIR NAME...

LR.rgb holds H x W x 3 bytes (row-major RGB); OUT_DIR receives 0.bin, 1.bin, ... (the outputs
NAME..., in order, C-contiguous) and index.json ([{name, file, dtype, shape}]). ODM_ORT_OPT as
in onnx_parity.py.
"""
import json
import os
import sys

import numpy as np
import onnxruntime as ort


def main():
    model, lr, h, w, out, *names = sys.argv[1:]
    x = np.fromfile(lr, dtype=np.uint8).reshape(int(h), int(w), 3).transpose(2, 0, 1)[None]
    opts = ort.SessionOptions()
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                            os.environ.get("ODM_ORT_OPT", "ORT_ENABLE_ALL"))
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    ys = sess.run(names, {"lr": np.ascontiguousarray(x)})
    index = []
    for i, (n, y) in enumerate(zip(names, ys)):
        y = np.ascontiguousarray(y)
        y.astype(y.dtype.newbyteorder("<")).tofile(os.path.join(out, f"{i}.bin"))
        index.append({"name": n, "file": f"{i}.bin", "dtype": str(y.dtype), "shape": list(y.shape)})
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f)


if __name__ == "__main__":
    main()
