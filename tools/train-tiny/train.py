"""Train the tiny KJV BitNet b1.58 model on the CPU.

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 tools/train-tiny/train.py [--steps N] [--out DIR]

Writes into DIR (default tools/train-tiny/work/): tokenizer.json, tokens.pt, ckpt.pt
(resumable, saved every 100 steps), final.pt, train.log and metrics.jsonl.  Everything is
seeded: the batch for step i is drawn from a generator seeded with (seed, i), so a resumed
run sees the same data.  Needs Debian's python3-torch, python3-numpy, python3-regex and
bible-kjv; libopenblas0 makes torch's matmuls ~50x faster than the reference BLAS.
"""
import os

# Busy-waiting OpenMP threads crawl when other processes share the 2 cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import math
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bpe  # noqa: E402
import corpus  # noqa: E402
import model  # noqa: E402

SEED = 1234


def prepare(out, n_vocab, log):
    tok_path = os.path.join(out, "tokenizer.json")
    data_path = os.path.join(out, "tokens.pt")
    if os.path.exists(tok_path) and os.path.exists(data_path):
        return bpe.Tokenizer.from_hf_json(tok_path), torch.load(data_path)
    train_text, heldout_text, info = corpus.build()
    log("corpus: %s" % json.dumps(info))
    tok, words = bpe.train(train_text, n_vocab, log=log)
    tok.check(words)
    log("tokenizer: %d tokens (%d merges), consistent with standard BPE" %
        (tok.n_vocab, len(tok.merges)))
    data = {
        "train": torch.tensor(tok.encode(train_text), dtype=torch.int16),
        "heldout": torch.tensor(tok.encode(heldout_text), dtype=torch.int16),
        "info": info,
    }
    with open(tok_path, "w", encoding="utf-8") as f:
        json.dump(tok.to_hf_json(), f, ensure_ascii=False, indent=1)
    torch.save(data, data_path)
    return tok, data


def batch(tokens, step, bsz, ctx, bos):
    """BOS + ctx-1 tokens from random offsets; targets are the next tokens."""
    g = torch.Generator().manual_seed(SEED * 1000003 + step)
    offs = torch.randint(0, len(tokens) - ctx, (bsz,), generator=g)
    y = torch.stack([tokens[o:o + ctx] for o in offs.tolist()]).long()
    x = torch.cat([torch.full((bsz, 1), bos, dtype=torch.long), y[:, :-1]], dim=1)
    return x, y


def fixed_windows(tokens, n, ctx, bos):
    """n evenly spaced non-overlapping windows (same format as batch())."""
    stride = (len(tokens) - ctx) // max(n - 1, 1)
    y = torch.stack([tokens[i * stride:i * stride + ctx] for i in range(n)]).long()
    x = torch.cat([torch.full((n, 1), bos, dtype=torch.long), y[:, :-1]], dim=1)
    return x, y


@torch.no_grad()
def eval_loss(m, xy, bsz=8):
    x, y = xy
    tot = 0.0
    for i in range(0, len(x), bsz):
        logits = m(x[i:i + bsz])
        tot += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[i:i + bsz].reshape(-1),
                               reduction="sum").item()
    return tot / y.numel()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "work"))
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=768)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    logf = open(os.path.join(args.out, "train.log"), "a", buffering=1)

    def log(msg):
        line = "[%s] %s" % (time.strftime("%H:%M:%S"), msg)
        print(line, flush=True)
        logf.write(line + "\n")

    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    log("args: %s" % json.dumps(vars(args)))
    tok, data = prepare(args.out, args.vocab, log)
    train_tokens, held_tokens = data["train"], data["heldout"]
    log("tokens: train %d, held-out %d" % (len(train_tokens), len(held_tokens)))

    cfg = model.Config(vocab_size=tok.n_vocab, hidden=args.hidden, layers=args.layers,
                       heads=args.heads, kv_heads=args.kv_heads, ffn=args.ffn,
                       context=args.context)
    m = model.BitNet(cfg)
    log("model: %s, %d parameters" % (json.dumps(cfg.to_dict()),
                                      sum(p.numel() for p in m.parameters())))
    decay = [p for n, p in m.named_parameters() if n.endswith("proj.weight")]
    no_decay = [p for n, p in m.named_parameters() if not n.endswith("proj.weight")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        t = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))

    ckpt_path = os.path.join(args.out, "ckpt.pt")
    start = 0
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path)
        m.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        start = ck["step"]
        log("resumed at step %d" % start)

    bos = tok.bos_id
    held_eval = fixed_windows(held_tokens, 32, cfg.context, bos)
    train_eval = fixed_windows(train_tokens, 32, cfg.context, bos)
    metrics = open(os.path.join(args.out, "metrics.jsonl"), "a", buffering=1)
    t0 = time.time()
    for step in range(start, args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        x, y = batch(train_tokens, step, args.batch, cfg.context, bos)
        logits = m(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0).item()
        opt.step()
        rec = {"step": step + 1, "loss": loss.item(), "lr": lr_at(step), "grad_norm": gn}
        done = step + 1
        if done % 100 == 0 or done == args.steps:
            rec["heldout_loss"] = eval_loss(m, held_eval)
            rec["train_eval_loss"] = eval_loss(m, train_eval)
        el = time.time() - t0
        log("step %d/%d loss %.4f lr %.2e gnorm %.2f %.1fs/step%s" % (
            done, args.steps, rec["loss"], rec["lr"], gn, el / (done - start),
            "" if "heldout_loss" not in rec else " | eval train %.4f held-out %.4f (ppl %.2f)" % (
                rec["train_eval_loss"], rec["heldout_loss"], math.exp(rec["heldout_loss"]))))
        metrics.write(json.dumps(rec) + "\n")
        if done % 100 == 0 or done == args.steps:
            torch.save({"model": m.state_dict(), "opt": opt.state_dict(), "step": done},
                       ckpt_path + ".tmp")
            os.replace(ckpt_path + ".tmp", ckpt_path)
    torch.save({"model": m.state_dict(), "config": cfg.to_dict(), "steps": args.steps,
                "args": vars(args)}, os.path.join(args.out, "final.pt"))
    log("done in %.0fs" % (time.time() - t0))


if __name__ == "__main__":
    main()
