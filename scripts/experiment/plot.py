"""Plots the experiment's logs: test accuracy against training wall-clock and against steps.

    /usr/bin/python3 scripts/experiment/plot.py <results-dir>

Reads every run-*.json in the directory (written by mezo-run.mjs and bp-run.py) and writes
accuracy-vs-time.png and accuracy-vs-steps.png next to them.
"""
import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def label(run: dict) -> str:
    method = "MeZO" if run["method"] == "mezo" else run["method"].replace("backprop-", "backprop ").replace("adam", "Adam")
    return f"{method}, MLP 784-{run['width']}-{run['width']}-10 ({run['parameters'] / 1e6:.1f} M params)"


def main() -> None:
    directory = sys.argv[1] if len(sys.argv) > 1 else "scripts/experiment/results"
    runs = [json.load(open(path)) for path in sorted(glob.glob(os.path.join(directory, "run-*.json")))]
    if not runs:
        sys.exit(f"no run-*.json in {directory}")
    for axis, xlabel, filename, log_x in (
        ("seconds", "training wall-clock (s, evaluation excluded)", "accuracy-vs-time.png", False),
        ("steps", "optimizer steps", "accuracy-vs-steps.png", True),
    ):
        fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
        for run in runs:
            points = [(entry[axis], 100 * entry["accuracy"]) for entry in run["log"] if not (log_x and entry[axis] == 0)]
            style = "-" if run["method"] == "mezo" else "--"
            ax.plot([p[0] for p in points], [p[1] for p in points], style, marker="o", markersize=2.5, label=label(run))
        if log_x:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy on the shifted test digits (%)")
        ax.set_title("Fine-tuning within the same memory budget")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        fig.savefig(os.path.join(directory, filename))
        plt.close(fig)
        print(f"wrote {os.path.join(directory, filename)}")


if __name__ == "__main__":
    main()
