#!/usr/bin/env python3
"""Optional check that the distortion is recoverable by fine-tuning: starts from the committed base model
(models/default-digits/base.slab, laid out as its manifest.json says) and fine-tunes on the distorted device
pool exported by export-data.mjs (10 agents, seed 1, pooled), reporting shifted- and clean-test accuracy.

  backprop  AdamW lr 3e-4, batch 64, 10 epochs: an upper bound for what fine-tuning can win back
  spsa      zeroth-order SPSA in the MeZO form (two forward passes per step at theta +/- eps*z, z ~ N(0, I),
            theta -= lr * (L+ - L-) / (2 eps) * z), eps 1e-3, lr 1e-4, batch 64, 4,000 steps

The SPSA loop uses numpy's generator, not the project's noise engine, and pools all agents' data: it shows the
shift is within reach of a backprop-free optimiser, not what a federated job will reach.

Usage: python3 scripts/pretrain-default/check-recovery.py [--work build/pretrain-default] [--model models/default-digits]
"""
import argparse
import json
import os
import sys
import time

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

sys.dont_write_bytecode = True  # keep the repository free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mlp import Adam, accuracy, backward, forward, softmax_xent  # noqa: E402
from mzds import read_mzds  # noqa: E402


def load_committed(model_dir):
    with open(os.path.join(model_dir, "manifest.json")) as f:
        manifest = json.load(f)
    slab = np.fromfile(os.path.join(model_dir, "base.slab"), dtype="<f4")
    assert slab.size == manifest["slabLength"], "base.slab does not match its manifest"
    return {
        t["name"]: slab[t["offset"] : t["offset"] + t["length"]].reshape(t["shape"]).astype(np.float32)
        for t in manifest["tensors"]
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="build/pretrain-default")
    ap.add_argument("--model", default="models/default-digits")
    ap.add_argument("--spsa-steps", type=int, default=4000)
    args = ap.parse_args()

    base = load_committed(args.model)
    xc, yc, _ = read_mzds(os.path.join(args.work, "test-clean.mzds"))
    xs, ys, _ = read_mzds(os.path.join(args.work, "test-shifted.mzds"))
    xd, yd, _ = read_mzds(os.path.join(args.work, "devices.mzds"))

    def report(label, params, seconds):
        print(f"{label:28s} shifted {accuracy(params, xs, ys):.4f}  clean {accuracy(params, xc, yc):.4f}  ({seconds:.1f} s)")

    report("base (no fine-tuning)", base, 0)

    # Backprop fine-tuning on the pooled distorted device data.
    started = time.perf_counter()
    params = {k: v.copy() for k, v in base.items()}
    opt = Adam(params, lr=3e-4)
    rng = np.random.default_rng(0)
    for _ in range(10):
        order = rng.permutation(len(yd))
        for s in range(0, len(yd), 64):
            idx = order[s : s + 64]
            logits, acts = forward(params, xd[idx])
            _, grad = softmax_xent(logits, yd[idx])
            opt.step(params, backward(params, acts, grad))
    report("backprop, 10 epochs", params, time.perf_counter() - started)

    # Zeroth-order SPSA, MeZO style, on one flat parameter vector.
    keys = list(base)
    shapes = [base[k].shape for k in keys]
    sizes = [base[k].size for k in keys]

    def unflat(theta):
        out, offset = {}, 0
        for k, shape, n in zip(keys, shapes, sizes):
            out[k] = theta[offset : offset + n].reshape(shape)
            offset += n
        return out

    def loss(theta, xb, yb):
        logits, _ = forward(unflat(theta), xb)
        return softmax_xent(logits, yb)[0]

    theta = np.concatenate([base[k].ravel() for k in keys]).astype(np.float32)
    rng = np.random.default_rng(0)
    eps, lr = 1e-3, 1e-4
    started = time.perf_counter()
    for step in range(1, args.spsa_steps + 1):
        idx = rng.integers(0, len(yd), 64)
        z = rng.standard_normal(theta.size).astype(np.float32)
        projected = (loss(theta + eps * z, xd[idx], yd[idx]) - loss(theta - eps * z, xd[idx], yd[idx])) / (2 * eps)
        theta -= np.float32(lr * projected) * z
        if step % (args.spsa_steps // 4) == 0:
            report(f"spsa, {step} steps", unflat(theta), time.perf_counter() - started)


if __name__ == "__main__":
    main()
