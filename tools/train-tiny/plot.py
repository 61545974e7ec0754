"""Loss curve of a training run: docs/tiny-model-loss.png from work/metrics.jsonl.

    /usr/bin/python3 tools/train-tiny/plot.py [--work DIR] [--out PNG]
"""
import argparse
import json
import math
import os

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "docs", "tiny-model-loss.png"))
    args = ap.parse_args()
    recs = [json.loads(l) for l in open(os.path.join(args.work, "metrics.jsonl"))]
    steps = [r["step"] for r in recs]
    loss = [r["loss"] for r in recs]
    # moving average over 20 steps to show the trend under batch noise
    k = 20
    smooth = [sum(loss[max(0, i - k + 1):i + 1]) / (i + 1 - max(0, i - k + 1)) for i in range(len(loss))]
    ev = [r for r in recs if "heldout_loss" in r]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    ax.plot(steps, loss, color="#9ecae1", linewidth=0.8, label="train batch loss")
    ax.plot(steps, smooth, color="#08519c", linewidth=1.5, label="train (20-step mean)")
    ax.plot([r["step"] for r in ev], [r["train_eval_loss"] for r in ev], "o-", color="#31a354",
            label="train, 32 fixed windows")
    ax.plot([r["step"] for r in ev], [r["heldout_loss"] for r in ev], "s-", color="#de2d26",
            label="held-out (last 5%), 32 windows")
    ax.set_xlabel("step (16 × 256 tokens)")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.set_ylim(max(0.0, min(loss + [r["heldout_loss"] for r in ev]) - 0.3), min(9.0, max(loss) + 0.2))
    if ev:
        last = ev[-1]
        ax.set_title("bitnet-kjv-tiny: QAT BitNet b1.58 on the KJV — final held-out %.3f (ppl %.1f)"
                     % (last["heldout_loss"], math.exp(last["heldout_loss"])), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out)
    print("wrote", os.path.normpath(args.out))


if __name__ == "__main__":
    main()
