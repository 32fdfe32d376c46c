#!/usr/bin/env python3
"""Step 2 of rebuilding the default model: pretrains the 784-128-64-10 MLP with plain backprop on the clean
pretraining digits only, and writes its weights as raw little-endian float32 files plus shapes.json.

Recipe: AdamW (lr 1e-3 with cosine decay to 0, weight decay 1e-4), mini-batches of 64, 80 epochs, each image
translated by a random whole pixel in [-1, 1] both ways (translation is not part of the device distortion),
numpy seed 1 for the initialisation, the epoch order and the translations. The test sets are only evaluated,
never trained on.

Usage: python3 scripts/pretrain-default/train.py [--work build/pretrain-default]
"""
import argparse
import json
import os
import sys
import time

# One BLAS thread: results then depend on the numpy build and CPU only, not on the core count.
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

sys.dont_write_bytecode = True  # keep the repository free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mlp import Adam, accuracy, backward, forward, init_params, softmax_xent  # noqa: E402
from mzds import read_mzds  # noqa: E402

SIZES = [784, 128, 64, 10]
SIDE = 28


def translate(batch, rng, max_shift):
    """Moves each image by whole pixels (dy, dx) drawn uniformly from [-max_shift, max_shift]; zeros fill in."""
    n = len(batch)
    if max_shift == 0:
        return batch
    dy = rng.integers(-max_shift, max_shift + 1, n)
    dx = rng.integers(-max_shift, max_shift + 1, n)
    m = max_shift
    padded = np.zeros((n, SIDE + 2 * m, SIDE + 2 * m), dtype=batch.dtype)
    padded[:, m : m + SIDE, m : m + SIDE] = batch.reshape(n, SIDE, SIDE)
    out = np.empty((n, SIDE, SIDE), dtype=batch.dtype)
    for sy in range(-m, m + 1):
        for sx in range(-m, m + 1):
            sel = (dy == sy) & (dx == sx)
            if sel.any():
                # Output pixel (r, c) reads input (r - sy, c - sx).
                out[sel] = padded[sel, m - sy : m - sy + SIDE, m - sx : m - sx + SIDE]
    return out.reshape(n, SIDE * SIDE)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="build/pretrain-default", help="folder with the exported .mzds files")
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-shift", type=int, default=1, help="translation augmentation in whole pixels (0: none)")
    args = ap.parse_args()

    x, y, classes = read_mzds(os.path.join(args.work, "pretrain.mzds"))
    assert classes == SIZES[-1] and x.shape[1] == SIZES[0], "pretraining data does not fit the model"
    tests = {}
    for name in ("test-clean", "test-shifted"):
        path = os.path.join(args.work, f"{name}.mzds")
        if os.path.exists(path):
            tests[name] = read_mzds(path)[:2]

    rng = np.random.default_rng(args.seed)
    params = init_params(SIZES, rng)
    opt = Adam(params, lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = -(-len(y) // args.batch)
    total_steps = args.epochs * steps_per_epoch
    started = time.perf_counter()
    for epoch in range(args.epochs):
        order = rng.permutation(len(y))
        losses = []
        for s in range(0, len(y), args.batch):
            idx = order[s : s + args.batch]
            logits, acts = forward(params, translate(x[idx], rng, args.max_shift))
            loss, grad = softmax_xent(logits, y[idx])
            lr = args.lr * 0.5 * (1 + np.cos(np.pi * opt.t / total_steps))
            opt.step(params, backward(params, acts, grad), lr=lr)
            losses.append(loss)
        if epoch % 10 == 9 or epoch + 1 == args.epochs:
            report = "  ".join(f"{k} {accuracy(params, *v):.4f}" for k, v in tests.items())
            print(f"epoch {epoch + 1:3d}  loss {np.mean(losses):.4f}  train {accuracy(params, x, y):.4f}  {report}")
    seconds = time.perf_counter() - started

    out = os.path.join(args.work, "weights")
    os.makedirs(out, exist_ok=True)
    shapes = {}
    for name, value in params.items():
        value.astype("<f4").tofile(os.path.join(out, f"{name}.f32"))
        shapes[name] = list(value.shape)
    summary = {
        "sizes": SIZES,
        "tensors": shapes,
        "parameters": int(sum(v.size for v in params.values())),
        "recipe": {
            "optimizer": "AdamW, cosine decay to 0",
            "lr": args.lr,
            "weightDecay": args.weight_decay,
            "batch": args.batch,
            "epochs": args.epochs,
            "seed": args.seed,
            "augmentation": f"random translation by whole pixels in [-{args.max_shift}, {args.max_shift}]",
            "examples": int(len(y)),
        },
        "trainSeconds": round(seconds, 2),
        "numpy": np.__version__,
        "accuracy": {"pretrain": accuracy(params, x, y), **{k: accuracy(params, *v) for k, v in tests.items()}},
    }
    with open(os.path.join(out, "shapes.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    print(f"trained {summary['parameters']} parameters in {seconds:.1f} s; weights in {out}")


if __name__ == "__main__":
    main()
