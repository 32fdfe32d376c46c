#!/usr/bin/env python3
"""Backprop baseline with a learning curve, for the learning plots of docs/learning.md.

Fine-tunes the committed default model (models/default-digits/base.slab, as its manifest lays it out) with numpy
Adam(W) on the same device data as `mezo simulate --seed S` (the union of its agents' distorted shares, written by
export-fleet-data.mjs; with --source train-pool, the pooled devices of `mezo train --seed S`), one run per seed,
and appends one JSON line per evaluation:

  {"name", "seed", "step", "examples", "seconds", "shifted", "clean", "optimizer", "lr", "batch", "weightDecay"}

seconds is training time only (the evaluations are not counted), on one BLAS thread. Seed S picks the data of
seed S and the batch order. Needs python3 with numpy (no PyTorch: scripts/experiment/bp-run.py is the PyTorch
sweep of issue 12).

  npm run build
  node scripts/experiment/export-fleet-data.mjs --seeds 0,1,2 --out DATA
  python3 scripts/experiment/bp-curve.py --data DATA --seeds 0,1,2 --out backprop.jsonl
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
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pretrain-default"))
from mlp import Adam, accuracy, backward, forward, softmax_xent  # noqa: E402
from mzds import read_mzds  # noqa: E402


def load_committed(model_dir):
    """The base model's tensors, by zoo name, from its slab and manifest."""
    with open(os.path.join(model_dir, "manifest.json")) as f:
        manifest = json.load(f)
    slab = np.fromfile(os.path.join(model_dir, "base.slab"), dtype="<f4")
    if slab.size != manifest["slabLength"]:
        raise SystemExit(f"{model_dir}: base.slab holds {slab.size} floats, its manifest says {manifest['slabLength']}")
    return {
        t["name"]: slab[t["offset"] : t["offset"] + t["length"]].reshape(t["shape"]).astype(np.float32)
        for t in manifest["tensors"]
    }


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder written by export-fleet-data.mjs")
    ap.add_argument("--source", choices=["fleet", "train-pool"], default="fleet",
                    help="fleet: mezo simulate's agents (default); train-pool: mezo train's pooled devices")
    ap.add_argument("--model", default="models/default-digits")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=positive_int, default=3000)
    ap.add_argument("--batch", type=positive_int, default=64)
    ap.add_argument("--lr", type=positive_float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.0, help="decoupled, on weight matrices (AdamW)")
    ap.add_argument("--eval-every", type=positive_int, default=25)
    ap.add_argument("--name", default=None, help="run name in the JSON lines (default: backprop Adam lr …)")
    ap.add_argument("--out", required=True, help="JSON lines file to append to")
    args = ap.parse_args()
    if args.weight_decay < 0:
        ap.error("--weight-decay must be >= 0")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        ap.error(f"--seeds must be comma-separated integers, got {args.seeds}")
    name = args.name or f"backprop Adam lr {args.lr:g}" + (f" wd {args.weight_decay:g}" if args.weight_decay else "")

    base = load_committed(args.model)
    xs, ys, _ = read_mzds(os.path.join(args.data, "test-shifted.mzds"))
    xc, yc, _ = read_mzds(os.path.join(args.data, "test-clean.mzds"))
    for seed in seeds:
        xd, yd, _ = read_mzds(os.path.join(args.data, f"{args.source}-seed-{seed}.mzds"))
        if len(yd) < args.batch:
            raise SystemExit(f"--batch {args.batch} is larger than the {len(yd)} training digits of seed {seed}")
        params = {k: v.copy() for k, v in base.items()}
        opt = Adam(params, lr=args.lr, weight_decay=args.weight_decay)
        rng = np.random.default_rng(seed)
        per_epoch = len(yd) // args.batch  # full batches only, so every step sees the same number of examples
        trained = 0.0
        order = None

        def record(step):
            line = {
                "name": name, "seed": seed, "step": step, "examples": step * args.batch, "seconds": trained,
                "shifted": accuracy(params, xs, ys), "clean": accuracy(params, xc, yc),
                "optimizer": "adamw" if args.weight_decay else "adam", "lr": args.lr, "batch": args.batch,
                "weightDecay": args.weight_decay, "source": args.source,
            }
            with open(args.out, "a") as f:
                f.write(json.dumps(line) + "\n")
            return line

        record(0)
        for step in range(args.steps):
            started = time.perf_counter()
            k = step % per_epoch
            if k == 0:
                order = rng.permutation(len(yd))
            idx = order[k * args.batch : (k + 1) * args.batch]
            logits, acts = forward(params, xd[idx])
            _, grad = softmax_xent(logits, yd[idx])
            opt.step(params, backward(params, acts, grad))
            trained += time.perf_counter() - started
            if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
                line = record(step + 1)
        print(f"{name} seed {seed}: shifted {line['shifted'] * 100:.2f}%  clean {line['clean'] * 100:.2f}%  "
              f"after {args.steps} steps, {trained:.1f} s of training")


if __name__ == "__main__":
    main()
