#!/usr/bin/env python3
"""A numpy prototype of the simulated fleet's MeZO rounds, for trying estimators before building them.

Each round: `agents` agents each draw a batch of `batch` digits from the device data of `mezo simulate --seed S`
(export-fleet-data.mjs; pooled, so the agents' non-IID shares are not modelled) and evaluate `q` directions;
the round's update is -lr/n * sum g_k z_k over its n = agents * q directions, with a cosine decay over the run.
Estimators:
  central  g = (L(θ+εz) - L(θ-εz)) / 2ε                        two forward passes per direction
  forward  g_k = (L(θ+εz_k) - mean_j L(θ+εz_j)) / ε * q/(q-1)   one forward pass per direction
--scale and --l2sp try per-weight perturbation scales, masks and a pull towards the base weights (docs/learning.md).
Noise: gaussian or rademacher, drawn by numpy (not the project's Philox contract: the figures are for choosing,
the real command paths are measured with learning-sweep.mjs). Prints one JSON line per evaluation and a final one.

  npm run build
  node scripts/experiment/export-fleet-data.mjs --seeds 0 --out DATA
  python3 scripts/experiment/zo-probe.py --data DATA --estimator forward --q 16 --lr 1.1e-2
"""
import argparse
import json
import os
import sys
import time

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pretrain-default"))
from mzds import read_mzds  # noqa: E402


def load_committed(model_dir):
    with open(os.path.join(model_dir, "manifest.json")) as f:
        manifest = json.load(f)
    slab = np.fromfile(os.path.join(model_dir, "base.slab"), dtype="<f4")
    return [(t["name"], t["shape"], slab[t["offset"] : t["offset"] + t["length"]].copy()) for t in manifest["tensors"]]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default=os.path.join(HERE, "..", "..", "models", "default-digits"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--estimator", choices=["central", "forward"], default="central")
    ap.add_argument("--distribution", choices=["gaussian", "rademacher"], default="gaussian")
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--agents", type=int, default=10)
    ap.add_argument("--q", type=int, default=8)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=8e-3)
    ap.add_argument("--epsilon", type=float, default=1e-3)
    ap.add_argument("--evals", type=int, default=5)
    # Per-weight scale of z (then normalised to mean square 1): none | fanin (1/sqrt(fan-in) per layer) | rms (each
    # tensor's weight RMS) | smallmag:F (a Sparse-MeZO mask: each tensor's fraction F of smallest |weights|) |
    # layer:fc1=0.5,fc2=0.5 (per-layer factors; fc1=0 freezes a layer).
    ap.add_argument("--scale", default="none")
    # A proximal pull towards the base weights after each round: theta -= lr * l2sp * (theta - theta0).
    ap.add_argument("--l2sp", type=float, default=0.0)
    # Rademacher signs from random bytes (faster; other draws than the default's, the same distribution).
    ap.add_argument("--sign-bits", action="store_true")
    args = ap.parse_args()
    if args.estimator == "forward" and args.q < 2:
        ap.error("--estimator forward needs --q >= 2")

    tensors = load_committed(args.model)
    shapes = [(name, shape, slice(0, 0)) for name, shape, _ in tensors]
    offset = 0
    for i, (name, shape, _) in enumerate(shapes):
        size = int(np.prod(shape))
        shapes[i] = (name, shape, slice(offset, offset + size))
        offset += size
    theta = np.concatenate([v for _, _, v in tensors]).astype(np.float32)
    d = theta.size
    layers = sorted({name.split(".")[0] for name, _, _ in shapes})

    def params(flat):
        p = {name: flat[s].reshape(shape) for name, shape, s in shapes}
        return [(p[f"{l}.weight"], p[f"{l}.bias"]) for l in layers]

    def logits(flat, x):
        h = x
        ps = params(flat)
        for i, (w, b) in enumerate(ps):
            h = h @ w.T + b
            if i + 1 < len(ps):
                h = np.maximum(h, 0)
        return h

    def loss(flat, x, y):
        z = logits(flat, x)
        z = z - z.max(axis=1, keepdims=True)
        lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-lp[np.arange(len(y)), y].mean())

    def accuracy(flat, x, y):
        return float((logits(flat, x).argmax(axis=1) == y).mean())

    xd, yd, _ = read_mzds(os.path.join(args.data, f"fleet-seed-{args.seed}.mzds"))
    xs, ys, _ = read_mzds(os.path.join(args.data, "test-shifted.mzds"))
    xc, yc, _ = read_mzds(os.path.join(args.data, "test-clean.mzds"))
    rng = np.random.default_rng(args.seed + 100)

    def direction():
        if args.distribution == "gaussian":
            return rng.standard_normal(d).astype(np.float32) * svec
        if args.sign_bits:
            bits = np.unpackbits(np.frombuffer(rng.bytes((d + 7) // 8), np.uint8))[:d]
            return (bits.astype(np.float32) * 2 - 1) * svec
        return (rng.integers(0, 2, d) * 2 - 1).astype(np.float32) * svec

    svec = np.ones(d, np.float32)
    for name, shape, s in shapes:
        w = theta[s]
        rule = args.scale
        if rule == "fanin" and len(shape) == 2:
            svec[s] = 1 / np.sqrt(shape[1])
        elif rule == "fanin" and len(shape) == 1:
            svec[s] = 1 / np.sqrt(next(sh[1] for nm, sh, _ in shapes if nm == name.replace("bias", "weight")))
        elif rule == "rms":
            svec[s] = np.sqrt(np.mean(w.astype(np.float64) ** 2))
        elif rule.startswith("smallmag:"):
            frac = float(rule.split(":")[1])
            thr = np.quantile(np.abs(w), frac)
            svec[s] = (np.abs(w) <= thr).astype(np.float32)
        elif rule.startswith("layer:"):
            for kv in rule[6:].split(","):
                k, v = kv.split("=")
                if name.startswith(k):
                    svec[s] = float(v)
    svec /= np.sqrt(np.mean(svec.astype(np.float64) ** 2))
    theta0 = theta.copy()
    n = args.agents * args.q
    eps = args.epsilon
    started = time.perf_counter()
    config = {k: getattr(args, k) for k in ("seed", "estimator", "distribution", "rounds", "agents", "q", "batch", "lr", "epsilon", "scale", "l2sp")}
    for t in range(args.rounds):
        lr = args.lr * 0.5 * (1 + np.cos(np.pi * t / args.rounds))
        update = np.zeros(d, np.float32)
        for _ in range(args.agents):
            idx = rng.choice(len(yd), args.batch, replace=False)
            xb, yb = xd[idx], yd[idx]
            if args.estimator == "central":
                for _ in range(args.q):
                    z = direction()
                    g = (loss(theta + eps * z, xb, yb) - loss(theta - eps * z, xb, yb)) / (2 * eps)
                    update += g * z
            else:
                zs = [direction() for _ in range(args.q)]
                losses = np.array([loss(theta + eps * z, xb, yb) for z in zs])
                for l, z in zip(losses - losses.mean(), zs):
                    update += (l / eps) * (args.q / (args.q - 1)) * z
        theta -= (lr / n) * update
        if args.l2sp:
            theta -= lr * args.l2sp * (theta - theta0)
        if (t + 1) % max(1, args.rounds // args.evals) == 0 or t + 1 == args.rounds:
            line = dict(config, round=t + 1, shifted=accuracy(theta, xs, ys), clean=accuracy(theta, xc, yc),
                        seconds=round(time.perf_counter() - started, 1))
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
