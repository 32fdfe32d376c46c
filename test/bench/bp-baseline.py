"""Backprop peer for the memory planner's validation: trains an MLP with PyTorch (CPU) and reports peak RSS.

Runs SGD, SGD with momentum or Adam on random data for a few steps, with or without activation checkpointing
(torch.utils.checkpoint over about sqrt(L) segments), and prints one JSON line:
{"maxRssKiB": ..., "parameters": ..., ...}. Run with the system interpreter that has python3-torch:

    /usr/bin/python3 test/bench/bp-baseline.py --sizes 784,1024,1024,10 --batch 64 --optimizer adam
"""
import argparse
import json
import math
import resource
import sys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", required=True, help="layer widths, input first and classes last, e.g. 784,1024,10")
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--optimizer", choices=["sgd", "momentum", "adam"], default="sgd")
    parser.add_argument("--checkpoint", action="store_true", help="recompute activations in about sqrt(L) segments")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if len(sizes) < 2 or any(s < 1 for s in sizes) or args.batch < 1 or args.steps < 1:
        parser.error("sizes need at least two positive widths; batch and steps must be positive")

    import torch
    from torch.utils.checkpoint import checkpoint

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    # The same architecture as the zoo MLP: Linear layers with ReLU between them, logits last.
    modules = []
    for i in range(len(sizes) - 1):
        modules.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            modules.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*modules)
    layers = len(sizes) - 1
    segments = max(1, math.ceil(math.sqrt(layers)))
    bounds = [round(i * len(modules) / segments) for i in range(segments + 1)]
    parts = [torch.nn.Sequential(*modules[bounds[i]:bounds[i + 1]]) for i in range(segments)]

    if args.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, foreach=False)
    elif args.optimizer == "momentum":
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, foreach=False)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)
    features = torch.rand(args.batch, sizes[0])
    labels = torch.randint(0, sizes[-1], (args.batch,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def forward(x):
        if not args.checkpoint:
            return model(x)
        for part in parts:
            x = checkpoint(part, x, use_reentrant=False)
        return x

    loss = None
    for _ in range(args.steps):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(forward(features), labels)
        loss.backward()
        optimizer.step()

    report = {
        "maxRssKiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "parameters": sum(p.numel() for p in model.parameters()),
        "sizes": sizes,
        "batch": args.batch,
        "optimizer": args.optimizer,
        "checkpoint": args.checkpoint,
        "segments": segments if args.checkpoint else 0,
        "steps": args.steps,
        "loss": float(loss.item()),
        "torch": torch.__version__,
    }
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
