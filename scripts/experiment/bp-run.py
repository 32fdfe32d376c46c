"""Backprop training of an MLP 784-W-W-10 on the exported digits for a fixed training wall-clock.

Logs test accuracy (the shifted test set) against training time (evaluation excluded) and steps, as JSON.
One thread. Run with the interpreter that has python3-torch:

    /usr/bin/python3 scripts/experiment/bp-run.py --data DIR --width W --seconds S --optimizer adam --out log.json
"""
import argparse
import json
import os
import resource
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="experiment-out/data")
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--optimizer", choices=["sgd", "momentum", "adam"], default="adam")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--eval-every", type=float, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--train-on", default="train", help="which exported set to train on (train, pretrain)")
    parser.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: no limit)")
    parser.add_argument("--init", help="start from weights saved by --save")
    parser.add_argument("--save", help="save the trained weights here (one raw float32 file per zoo tensor name)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    load = lambda name: (
        torch.from_numpy(np.fromfile(os.path.join(args.data, f"{name}.f32"), dtype="<f4").reshape(-1, 784).copy()),
        torch.from_numpy(np.fromfile(os.path.join(args.data, f"{name}.labels.i32"), dtype="<i4").astype(np.int64)),
    )
    train_x, train_y = load(args.train_on)
    test_x, test_y = load("test")
    w = args.width
    model = torch.nn.Sequential(torch.nn.Linear(784, w), torch.nn.ReLU(), torch.nn.Linear(w, w), torch.nn.ReLU(), torch.nn.Linear(w, 10))
    # Zoo tensor names of the Linear layers: Gemm weights are [out, in], as PyTorch stores them.
    names = {f"{2 * i}.{kind}": f"fc{i}.{kind}" for i in range(3) for kind in ("weight", "bias")}
    if args.init:
        with torch.no_grad():
            for key, tensor in model.state_dict().items():
                data = np.fromfile(os.path.join(args.init, f"{names[key]}.f32"), dtype="<f4")
                tensor.copy_(torch.from_numpy(data.reshape(tuple(tensor.shape))))
    params = model.parameters()
    if args.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=args.lr, foreach=False)
    elif args.optimizer == "momentum":
        optimizer = torch.optim.SGD(params, lr=args.lr, momentum=0.9, foreach=False)
    else:
        optimizer = torch.optim.Adam(params, lr=args.lr, foreach=False)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(args.seed)

    def evaluate():
        # At the training batch size, so evaluation does not raise the process's peak memory.
        correct, total_loss = 0, 0.0
        with torch.no_grad():
            for start in range(0, test_x.shape[0], args.batch):
                logits = model(test_x[start:start + args.batch])
                labels = test_y[start:start + args.batch]
                correct += int((logits.argmax(1) == labels).sum())
                total_loss += float(loss_fn(logits, labels)) * labels.shape[0]
        return {"accuracy": correct / test_x.shape[0], "loss": total_loss / test_x.shape[0]}

    log = [{"seconds": 0.0, "steps": 0, **evaluate()}]
    trained, steps, next_eval = 0.0, 0, args.eval_every
    while trained < args.seconds and (args.max_steps == 0 or steps < args.max_steps):
        started = time.perf_counter()
        rows = torch.randint(0, train_x.shape[0], (args.batch,), generator=generator)
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(train_x[rows]), train_y[rows]).backward()
        optimizer.step()
        steps += 1
        trained += time.perf_counter() - started
        if trained >= next_eval or trained >= args.seconds or steps == args.max_steps:
            log.append({"seconds": trained, "steps": steps, **evaluate()})
            next_eval += args.eval_every
    if args.save:
        os.makedirs(args.save, exist_ok=True)
        for key, tensor in model.state_dict().items():
            tensor.detach().numpy().astype("<f4").tofile(os.path.join(args.save, f"{names[key]}.f32"))
    report = {
        "method": f"backprop-{args.optimizer}",
        "width": w,
        "parameters": sum(p.numel() for p in model.parameters()),
        "lr": args.lr,
        "batch": args.batch,
        "seconds": args.seconds,
        "steps": steps,
        "maxRssKiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "log": log,
    }
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"{report['method']} width {w}: {steps} steps in {trained:.1f} s, accuracy {100 * log[-1]['accuracy']:.1f} %")


if __name__ == "__main__":
    main()
