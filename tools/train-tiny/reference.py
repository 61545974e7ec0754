"""Independent NumPy forward pass of a quantized BitNet b1.58 GGUF, as our engine computes it.

It shares no code with model.py (the training model): it reads the I2_S file and follows
../../../shared/spec/bitnet-format.md §1 and §3:
  * activations: per token, amax = max(|x|, 1e-5) (double), s = float32(127/amax),
    q = clamp(round_half_even(float32(x·s)), −128, 127);
  * ternary matmul: acc = Σ (code−1)·q exactly (float64 BLAS on small integers is exact),
    y = float32(acc) / s · w_scale in float32, in that order;
  * RMSNorm: sum of squares in double, scale = float32(1/sqrt(mean + eps)), x·scale·w;
  * RoPE NEOX (element i pairs with i + d/2), angles θ_i = pos·base^(−2i/d) built
    iteratively in float32 as ggml does;
  * attention: K and V (and Q, whose dot with f16 keys is an f16 product) rounded to f16 by
    default (--f32-attn turns that off), softmax in float32 over q·k/√d + causal mask;
  * final hidden state rounded to f16 (as our engine does; off with --f32-attn), tied F16
    embedding head accumulated in double.
All positions are computed in one batch, so, like bitnet.cpp with ≥2 tokens per call, the
attention probabilities are not rounded to f16 (the engine rounds them when it decodes one
token per call).

Commands:
  logits      --ids "4088 1148 ..." -o out.f32        float32 LE [n_tokens][n_vocab]
  generate    --prompt TEXT -n 64                      greedy (argmax) continuation
  perplexity  [-f held-out.txt] [-c 256]               llama.cpp's method (see docs/tiny-model.md)
  testdata    -o tests/data/tiny                       fixed cases for the engine's tests
"""
import argparse
import hashlib
import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bpe  # noqa: E402  (tokenizer only: text <-> ids)
import gguf_io as G  # noqa: E402

ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
DEFAULT_MODEL = os.path.join(ROOT, "models", "bitnet-kjv-tiny.gguf")
DEFAULT_TOKENIZER = os.path.join(ROOT, "models", "bitnet-kjv-tiny-hf", "tokenizer.json")


class Model:
    def __init__(self, path, f16_attn=True):
        kvs, tensors, _ = G.read(path)
        kv = G.kv_dict(kvs)
        arch = kv["general.architecture"]
        if arch != "bitnet-b1.58":
            raise ValueError("architecture %s" % arch)
        a = arch + "."
        self.n_layer = kv[a + "block_count"]
        self.n_embd = kv[a + "embedding_length"]
        self.n_head = kv[a + "attention.head_count"]
        self.n_kv = kv.get(a + "attention.head_count_kv", self.n_head)
        self.hd = self.n_embd // self.n_head
        self.eps = kv[a + "attention.layer_norm_rms_epsilon"]
        self.base = kv.get(a + "rope.freq_base", 10000.0)
        self.bos = kv["tokenizer.ggml.bos_token_id"]
        self.f16_attn = f16_attn
        tt, shape, buf = tensors["token_embd.weight"]
        assert tt == G.F16
        self.embd = np.frombuffer(buf, dtype=np.float16).reshape(shape[1], shape[0]).astype(np.float32)
        self.n_vocab = shape[1]

        def norm(n):
            tt, shape, buf = tensors[n]
            assert tt == G.F32
            return np.frombuffer(buf, dtype=np.float32).copy()

        def ternary(n):
            tt, shape, buf = tensors[n]
            assert tt == G.I2_S
            vals, scale = G.i2s_unpack(buf, shape[0] * shape[1])
            # [out, in] as float64 for exact integer dot products
            return vals.reshape(shape[1], shape[0]).astype(np.float64), np.float32(scale)

        self.layers = []
        for i in range(self.n_layer):
            b = "blk.%d." % i
            self.layers.append({k: (norm(b + k + ".weight") if "norm" in k else ternary(b + k + ".weight"))
                                for k in ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_sub_norm",
                                          "attn_output", "ffn_norm", "ffn_gate", "ffn_up",
                                          "ffn_sub_norm", "ffn_down"]})
        self.out_norm = norm("output_norm.weight")

    # --- pieces ---------------------------------------------------------------
    def rmsnorm(self, x, w):
        ss = (x.astype(np.float64) ** 2).sum(axis=-1, keepdims=True)
        mean = ss / x.shape[-1]
        scale = (1.0 / np.sqrt(mean.astype(np.float32) + np.float32(self.eps))).astype(np.float32)
        return (x * scale).astype(np.float32) * w

    @staticmethod
    def bitlinear(x, wt):
        codes, wscale = wt
        amax = np.maximum(np.abs(x.astype(np.float64)).max(axis=-1, keepdims=True), 1e-5)
        s = (127.0 / amax).astype(np.float32)
        q = np.clip(np.rint((x * s).astype(np.float32)), -128, 127)
        acc = q.astype(np.float64) @ codes.T  # exact: |acc| <= 128·K
        return ((acc.astype(np.float32) / s).astype(np.float32) * wscale).astype(np.float32)

    def rope_tables(self, n):
        d = self.hd
        theta_scale = np.float32(self.base) ** np.float32(-2.0 / d)
        cos = np.empty((n, d // 2), dtype=np.float32)
        sin = np.empty((n, d // 2), dtype=np.float32)
        for p in range(n):
            theta = np.float32(p)
            for i in range(d // 2):
                cos[p, i] = np.cos(theta)
                sin[p, i] = np.sin(theta)
                theta = np.float32(theta * theta_scale)
        return cos, sin

    @staticmethod
    def rope(x, cos, sin):
        """x: [T, H, d]; NEOX rotation of the halves."""
        h = x.shape[-1] // 2
        x0, x1 = x[..., :h], x[..., h:]
        c, s = cos[:, None, :], sin[:, None, :]
        return np.concatenate([x0 * c - x1 * s, x0 * s + x1 * c], axis=-1).astype(np.float32)

    # --- forward --------------------------------------------------------------
    def forward(self, ids):
        ids = np.asarray(ids)
        T = len(ids)
        hd, H, KV = self.hd, self.n_head, self.n_kv
        cos, sin = self.rope_tables(T)
        mask = np.triu(np.full((T, T), -np.inf, dtype=np.float32), 1)
        x = self.embd[ids].copy()
        for L in self.layers:
            a = self.rmsnorm(x, L["attn_norm"])
            q = self.rope(self.bitlinear(a, L["attn_q"]).reshape(T, H, hd), cos, sin)
            k = self.rope(self.bitlinear(a, L["attn_k"]).reshape(T, KV, hd), cos, sin)
            v = self.bitlinear(a, L["attn_v"]).reshape(T, KV, hd)
            if self.f16_attn:
                q = q.astype(np.float16).astype(np.float32)
                k = k.astype(np.float16).astype(np.float32)
                v = v.astype(np.float16).astype(np.float32)
            o = np.empty((T, H, hd), dtype=np.float32)
            for h in range(H):
                g = h // (H // KV)  # query head h reads KV head h / (H / KV)
                sc = (q[:, h, :] @ k[:, g, :].T).astype(np.float32) * np.float32(1.0 / math.sqrt(hd)) + mask
                sc = np.exp(sc - sc.max(axis=-1, keepdims=True))
                p = (sc / sc.sum(axis=-1, keepdims=True)).astype(np.float32)
                o[:, h, :] = p @ v[:, g, :]
            o = self.rmsnorm(o.reshape(T, H * hd), L["attn_sub_norm"])
            x = x + self.bitlinear(o, L["attn_output"])
            f = self.rmsnorm(x, L["ffn_norm"])
            g = np.maximum(self.bitlinear(f, L["ffn_gate"]), 0)
            u = self.bitlinear(f, L["ffn_up"])
            y = self.rmsnorm((g * g * u).astype(np.float32), L["ffn_sub_norm"])
            x = x + self.bitlinear(y, L["ffn_down"])
        x = self.rmsnorm(x, self.out_norm)
        if self.f16_attn:
            # our engine rounds the final hidden state to f16 before the F16 head (bitnet.cpp
            # does so only for one token per call)
            x = x.astype(np.float16).astype(np.float32)
        return (x.astype(np.float64) @ self.embd.T.astype(np.float64)).astype(np.float32)

    def greedy(self, ids, n):
        ids = list(ids)
        out = []
        for _ in range(n):
            nxt = int(np.argmax(self.forward(ids)[-1]))
            out.append(nxt)
            ids.append(nxt)
        return out


def log_softmax(z):
    z = z.astype(np.float64)
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def perplexity(model, ids, ctx):
    """llama.cpp's perplexity: the text is tokenized with BOS in front, cut into non-overlapping
    chunks of ctx tokens, each chunk's first token replaced by BOS, and the predictions of tokens
    ctx/2+1 .. ctx-1 of each chunk (the second half) are scored."""
    ids = [model.bos] + list(ids)
    n_chunks = len(ids) // ctx
    nll, count = 0.0, 0
    for c in range(n_chunks):
        chunk = list(ids[c * ctx:(c + 1) * ctx])
        chunk[0] = model.bos
        lp = log_softmax(model.forward(chunk))
        first = ctx // 2
        for j in range(first, ctx - 1):
            nll -= lp[j, chunk[j + 1]]
            count += 1
    return math.exp(nll / count), nll / count, n_chunks, count


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for blk in iter(lambda: f.read(1 << 20), b""):
            h.update(blk)
    return h.hexdigest()


TEST_TEXTS = {
    "genesis": "In the beginning God created the heaven and the earth.\n"
               "And the earth was without form, and void; and darkness was upon the face of the deep.",
    "psalm23": "Psalms 23\nThe LORD is my shepherd; I shall not want.\n"
               "He maketh me to lie down in green pastures: he leadeth me beside the still waters.",
    # held-out text (Revelation, never trained on)
    "revelation": "And I saw a new heaven and a new earth: for the first heaven and the first earth "
                  "were passed away; and there was no more sea.",
}
GREEDY_PROMPT = "The LORD is my shepherd"


def make_testdata(model, tok, model_path, out):
    os.makedirs(out, exist_ok=True)
    cases = []
    for name, text in TEST_TEXTS.items():
        ids = [model.bos] + tok.encode(text)
        logits = model.forward(ids)
        fn = "logits_%s.f32" % name
        logits.astype("<f4").tofile(os.path.join(out, fn))
        cases.append({"name": name, "text": text, "tokens": ids, "n_tokens": len(ids),
                      "logits": fn, "argmax": [int(i) for i in logits.argmax(axis=-1)]})
    prompt = [model.bos] + tok.encode(GREEDY_PROMPT)
    gen = model.greedy(prompt, 64)
    case = {
        "model": os.path.relpath(model_path, ROOT),
        "model_sha256": sha256(model_path),
        "n_vocab": model.n_vocab,
        "bos_id": model.bos,
        "logits_layout": "float32 little-endian [n_tokens][n_vocab], every position of one batch",
        "reference": "tools/train-tiny/reference.py (NumPy; I2_S weights, per-token int8 activations "
                     "rounded half to even, Q/K/V and final hidden state rounded to f16, all tokens in one batch)",
        "cases": cases,
        "greedy": {"prompt_text": GREEDY_PROMPT, "prompt": prompt, "n": 64, "ids": gen,
                   "text": tok.decode(gen),
                   "settings": "argmax; each step re-evaluates the whole sequence in one batch"},
    }
    with open(os.path.join(out, "case.json"), "w") as f:
        json.dump(case, f, indent=1)
        f.write("\n")
    return case


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["logits", "generate", "perplexity", "testdata"])
    ap.add_argument("-m", "--model", default=DEFAULT_MODEL)
    ap.add_argument("--tokenizer", default=DEFAULT_TOKENIZER)
    ap.add_argument("--f32-attn", action="store_true", help="keep Q/K/V and the final hidden state in float32")
    ap.add_argument("--ids", help="token ids separated by spaces (logits)")
    ap.add_argument("--prompt", default=GREEDY_PROMPT)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("-f", "--file", help="text for perplexity (default: the held-out KJV part)")
    ap.add_argument("-c", "--ctx", type=int, default=256)
    ap.add_argument("-o", "--out")
    args = ap.parse_args()

    model = Model(args.model, f16_attn=not args.f32_attn)
    tok = bpe.Tokenizer.from_hf_json(args.tokenizer)
    if args.command == "logits":
        ids = [int(t) for t in args.ids.split()]
        lg = model.forward(ids)
        lg.astype("<f4").tofile(args.out)
        print("wrote %s: %d x %d" % (args.out, *lg.shape))
    elif args.command == "generate":
        prompt = [model.bos] + tok.encode(args.prompt)
        gen = model.greedy(prompt, args.n)
        print(" ".join(map(str, gen)))
        print(args.prompt + tok.decode(gen))
    elif args.command == "perplexity":
        if args.file:
            text = open(args.file, encoding="utf-8").read()
        else:
            import corpus
            text = corpus.build()[1]
        ids = tok.encode(text)
        ppl, nll, chunks, count = perplexity(model, ids, args.ctx)
        print("perplexity %.4f (mean NLL %.4f) over %d chunks of %d tokens, %d scored tokens"
              % (ppl, nll, chunks, args.ctx, count))
    else:
        case = make_testdata(model, tok, args.model, args.out)
        print(json.dumps(case["greedy"], indent=1))


if __name__ == "__main__":
    main()
