"""Independent NumPy forward pass of a quantized ternary GGUF, as our engine computes it.

It shares no code with model.py (the training model) or the C engine: it reads the GGUF file and
follows ../../../shared/spec/bitnet-format.md (§1 graph, §3 I2_S, §5 TQ1_0/TQ2_0, §8 other
architectures):
  * architectures: bitnet-b1.58 / bitnet-25 (2B-4T graph: sub-norms, relu²(gate)·up, NEOX RoPE,
    tied head); bitnet (1bitLLM: same norm placement, silu(gate)·up unless
    bitnet.hidden_act = relu2, optional per-tensor blk.N.<name>.scale multiplied after each
    projection); llama (no sub-norms, silu(gate)·up, RoPE on adjacent pairs, output.weight when
    present).  GQA: query head h reads KV head h / (heads / kv_heads).
  * I2_S matmul: activations per token, amax = max(|x|, 1e-5) (double), s = float32(127/amax),
    q = clamp(round_half_even(float32(x·s)), −128, 127); acc = Σ (code−1)·q exactly (float64
    BLAS on small integers is exact), y = float32(acc) / s · w_scale in float32, in that order;
  * TQ1_0/TQ2_0 matmul: activations per 256-element block as ggml's Q8_K (the value of largest
    magnitude m, iscale = float32(−127/m), q = min(127, round_half_even(float32(iscale·x))),
    d = float32(1/iscale)); per block y += float32(Σ q·t) · float32(d_act · d_weight);
  * F32/F16 weights (heads, float models): float32 products, the input rounded to f16 for F16;
  * RMSNorm: sum of squares in double, scale = float32(1/sqrt(mean + eps)), x·scale·w;
  * RoPE over the first n_rot dims, angles θ_i = pos·base^(−2i/n_rot) built iteratively in
    float32 as ggml does; NEOX pairs (i, i + n_rot/2), llama pairs (2i, 2i + 1);
  * attention: K and V (and Q, whose dot with f16 keys is an f16 product) rounded to f16 by
    default (--f32-attn turns that off), softmax in float32 over q·k/√d + causal mask;
  * final hidden state rounded to f16 before an F16 head (as our engine does; off with
    --f32-attn), accumulated in double.
All positions are computed in one batch, so, like bitnet.cpp with ≥2 tokens per call, the
attention probabilities are not rounded to f16 (the engine rounds them when it decodes one
token per call).

Commands:
  logits      [-m MODEL] --ids "4088 1148 ..." -o out.f32   float32 LE [n_tokens][n_vocab]
  compare     [-m MODEL] --ours A.f32 --ref B.f32         max |Δ| at positions 0-1, min cosine,
                                                          argmax agreement, top-2 logit gaps
  generate    --prompt TEXT -n 64                          greedy (argmax) continuation
  perplexity  [-f held-out.txt] [-c 256]                   llama.cpp's method (see docs/tiny-model.md)
  testdata    -o tests/data/tiny                           fixed cases for the engine's tests
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
import gguf_io as G  # noqa: E402

ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
DEFAULT_MODEL = os.path.join(ROOT, "models", "bitnet-kjv-tiny.gguf")
DEFAULT_TOKENIZER = os.path.join(ROOT, "models", "bitnet-kjv-tiny-hf", "tokenizer.json")

ARCHS = ("bitnet-b1.58", "bitnet-25", "bitnet", "llama")
LINEAR = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]


class Linear:
    """One weight matrix [out, in] and how the engine multiplies by it."""

    def __init__(self, name, tt, shape, buf):
        self.name, self.type = name, tt
        k, n = shape[0], shape[1]
        self.k = k
        if tt == G.I2_S:
            vals, scale = G.i2s_unpack(buf, k * n)
            self.w = vals.reshape(n, k).astype(np.float64)  # exact integer dot products
            self.scale = np.float32(scale)
        elif tt in (G.TQ1_0, G.TQ2_0):
            vals, d = (G.tq1_unpack if tt == G.TQ1_0 else G.tq2_unpack)(buf, k * n)
            self.w = vals.reshape(n, k // 256, 256).astype(np.float64)
            self.d = d.reshape(n, k // 256)
        elif tt in (G.F32, G.F16):
            self.w = G.dequantize(tt, buf, k * n).reshape(n, k)
        else:
            raise ValueError("%s: weight type %s is not handled by the reference"
                             % (name, G.TYPE_NAMES.get(tt, tt)))

    def __call__(self, x, round_f16=True):
        if self.type == G.I2_S:
            amax = np.maximum(np.abs(x.astype(np.float64)).max(axis=-1, keepdims=True), 1e-5)
            s = (127.0 / amax).astype(np.float32)
            q = np.clip(np.rint((x * s).astype(np.float32)), -128, 127)
            acc = q.astype(np.float64) @ self.w.T  # exact: |acc| <= 128·K
            return ((acc.astype(np.float32) / s).astype(np.float32) * self.scale).astype(np.float32)
        if self.type in (G.TQ1_0, G.TQ2_0):
            q, dx = q8k(x)  # [T, nb, 256], [T, nb]
            y = np.zeros((x.shape[0], self.w.shape[0]), dtype=np.float32)
            for b in range(self.w.shape[1]):
                acc = (q[:, b, :] @ self.w[:, b, :].T).astype(np.float32)  # exact integers
                y += acc * (dx[:, b:b + 1] * self.d[None, :, b]).astype(np.float32)
            return y
        if self.type == G.F16 and round_f16:
            x = x.astype(np.float16).astype(np.float32)
        return (x.astype(np.float64) @ self.w.T.astype(np.float64)).astype(np.float32)


def q8k(x):
    """ggml's Q8_K activations: per 256-element block, the element of largest magnitude m (the
    first one on ties), iscale = −127/m, q = min(127, nearest(iscale·x)), d = 1/iscale."""
    T, K = x.shape
    xb = x.reshape(T, K // 256, 256).astype(np.float32)
    idx = np.abs(xb).argmax(axis=-1)[..., None]
    m = np.take_along_axis(xb, idx, axis=-1)
    zero = m == 0
    iscale = np.where(zero, np.float32(0), np.float32(-127.0) / np.where(zero, np.float32(1), m)).astype(np.float32)
    q = np.minimum(127, np.rint((iscale * xb).astype(np.float32)))
    d = np.where(zero, np.float32(0), np.float32(1.0) / np.where(zero, np.float32(1), iscale)).astype(np.float32)
    return q.astype(np.float64), d[..., 0]


class Model:
    def __init__(self, path, f16_attn=True):
        kvs, tensors, _ = G.read(path)
        kv = G.kv_dict(kvs)
        arch = kv["general.architecture"]
        if arch not in ARCHS:
            raise ValueError("architecture %s (the reference knows %s)" % (arch, ", ".join(ARCHS)))
        self.arch = arch
        a = arch + "."
        self.n_layer = kv[a + "block_count"]
        self.n_embd = kv[a + "embedding_length"]
        self.n_head = kv[a + "attention.head_count"]
        self.n_kv = kv.get(a + "attention.head_count_kv", self.n_head)
        self.hd = self.n_embd // self.n_head
        self.n_rot = kv.get(a + "rope.dimension_count", self.hd)
        self.eps = kv.get(a + "attention.layer_norm_rms_epsilon", 1e-5)
        self.base = kv.get(a + "rope.freq_base", 10000.0)
        self.bos = kv.get("tokenizer.ggml.bos_token_id")
        self.f16_attn = f16_attn
        self.neox = arch != "llama"          # spec §1 / §8: NEOX for the BitNet archs, NORM for llama
        self.sub_norms = arch != "llama"
        self.relu2 = arch in ("bitnet-b1.58", "bitnet-25") or kv.get(a + "hidden_act") == "relu2"

        tt, shape, buf = tensors["token_embd.weight"]
        self.embd = G.dequantize(tt, buf, shape[0] * shape[1]).reshape(shape[1], shape[0])
        self.n_vocab = shape[1]
        if "output.weight" in tensors:
            self.head = Linear("output.weight", *tensors["output.weight"])
        else:  # tied
            self.head = Linear("token_embd.weight", *tensors["token_embd.weight"])

        def norm(n):
            tt, shape, buf = tensors[n]
            return G.dequantize(tt, buf, shape[0])

        self.layers = []
        for i in range(self.n_layer):
            b = "blk.%d." % i
            L = {k: norm(b + k + ".weight") for k in ["attn_norm", "ffn_norm"]}
            if self.sub_norms:
                L["attn_sub_norm"] = norm(b + "attn_sub_norm.weight")
                L["ffn_sub_norm"] = norm(b + "ffn_sub_norm.weight")
            for k in LINEAR:
                L[k] = Linear(b + k + ".weight", *tensors[b + k + ".weight"])
                # 1bitLLM files from older converters: a scalar multiplied after the projection
                sc = b + k + ".scale"
                L[k + ".scale"] = (np.float32(G.dequantize(tensors[sc][0], tensors[sc][2], 1)[0])
                                   if arch == "bitnet" and sc in tensors else None)
            self.layers.append(L)
        self.out_norm = norm("output_norm.weight")

    # --- pieces ---------------------------------------------------------------
    def rmsnorm(self, x, w):
        ss = (x.astype(np.float64) ** 2).sum(axis=-1, keepdims=True)
        mean = ss / x.shape[-1]
        scale = (1.0 / np.sqrt(mean.astype(np.float32) + np.float32(self.eps))).astype(np.float32)
        return (x * scale).astype(np.float32) * w

    @staticmethod
    def proj(L, k, x):
        y = L[k](x)
        s = L[k + ".scale"]
        return y if s is None else (y * s).astype(np.float32)

    def rope_tables(self, n):
        d = self.n_rot
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

    def rope(self, x, cos, sin):
        """x: [T, H, hd]; rotates the first n_rot dims of each head."""
        r = self.n_rot
        c, s = cos[:, None, :], sin[:, None, :]
        out = x.copy()
        if self.neox:  # rotate halves: i pairs with i + n_rot/2
            x0, x1 = x[..., :r // 2], x[..., r // 2:r]
            out[..., :r // 2] = x0 * c - x1 * s
            out[..., r // 2:r] = x0 * s + x1 * c
        else:  # adjacent pairs (2i, 2i + 1)
            x0, x1 = x[..., 0:r:2], x[..., 1:r:2]
            out[..., 0:r:2] = x0 * c - x1 * s
            out[..., 1:r:2] = x0 * s + x1 * c
        return out.astype(np.float32)

    def act(self, g, u):
        if self.relu2:
            g = np.maximum(g, 0)
            return (g * g * u).astype(np.float32)
        return (g / (np.float32(1) + np.exp(-g)) * u).astype(np.float32)  # SiLU in float32

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
            q = self.rope(self.proj(L, "attn_q", a).reshape(T, H, hd), cos, sin)
            k = self.rope(self.proj(L, "attn_k", a).reshape(T, KV, hd), cos, sin)
            v = self.proj(L, "attn_v", a).reshape(T, KV, hd)
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
            o = o.reshape(T, H * hd)
            if self.sub_norms:
                o = self.rmsnorm(o, L["attn_sub_norm"])
            x = x + self.proj(L, "attn_output", o)
            f = self.rmsnorm(x, L["ffn_norm"])
            y = self.act(self.proj(L, "ffn_gate", f), self.proj(L, "ffn_up", f))
            if self.sub_norms:
                y = self.rmsnorm(y, L["ffn_sub_norm"])
            x = x + self.proj(L, "ffn_down", y)
        x = self.rmsnorm(x, self.out_norm)
        # An F16 head's input is rounded to f16 (our engine does so for every batch; bitnet.cpp
        # only for one token per call); --f32-attn keeps it in float32.
        return self.head(x, round_f16=self.f16_attn)

    def greedy(self, ids, n):
        ids = list(ids)
        out = []
        for _ in range(n):
            nxt = int(np.argmax(self.forward(ids)[-1]))
            out.append(nxt)
            ids.append(nxt)
        return out


def compare(ours, ref, n_vocab):
    """Figures of the cross-check: max |Δ| at positions 0-1, the first position off by more than
    1e-5, per-position cosine, argmax agreement, and the reference's logit spread and top-1 minus
    top-2 gap (is argmax meaningful?)."""
    a = np.fromfile(ours, dtype="<f4").astype(np.float64)
    b = np.fromfile(ref, dtype="<f4").astype(np.float64)
    if a.size != b.size or a.size % n_vocab:
        raise ValueError("logit files of %d and %d values for a vocabulary of %d" % (a.size, b.size, n_vocab))
    a, b = a.reshape(-1, n_vocab), b.reshape(-1, n_vocab)
    cos = (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))
    top2 = np.sort(b, axis=1)[:, -2:]
    gap = top2[:, 1] - top2[:, 0]
    off = np.nonzero(np.abs(a - b).max(1) > 1e-5)[0]  # float noise is ~1e-7; beyond: an int8 rounding flipped
    return {"n": a.shape[0], "max_diff_01": float(np.abs(a[:2] - b[:2]).max()),
            "first_off": int(off[0]) if off.size else a.shape[0],
            "max_diff": float(np.abs(a - b).max()), "min_cos": float(cos.min()),
            "argmax_agree": int((a.argmax(1) == b.argmax(1)).sum()),
            "logit_std": float(b.std()), "median_gap": float(np.median(gap)), "min_gap": float(gap.min())}


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
    ap.add_argument("command", choices=["logits", "compare", "generate", "perplexity", "testdata"])
    ap.add_argument("-m", "--model", default=DEFAULT_MODEL)
    ap.add_argument("--tokenizer", default=DEFAULT_TOKENIZER)
    ap.add_argument("--f32-attn", action="store_true", help="keep Q/K/V and the final hidden state in float32")
    ap.add_argument("--ids", help="token ids separated by spaces (logits)")
    ap.add_argument("--prompt", default=GREEDY_PROMPT)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("-f", "--file", help="text for perplexity (default: the held-out KJV part)")
    ap.add_argument("-c", "--ctx", type=int, default=256)
    ap.add_argument("-o", "--out")
    ap.add_argument("--ours", help="compare: our engine's logits")
    ap.add_argument("--ref", help="compare: this reference's logits")
    args = ap.parse_args()

    if args.command == "compare":
        kvs, tensors, _ = G.read(args.model)
        r = compare(args.ours, args.ref, tensors["token_embd.weight"][1][1])
        print(" ".join("%s=%s" % (k, ("%.8f" % v if k == "min_cos" else "%.3g" % v) if isinstance(v, float) else v)
                       for k, v in r.items()))
        return
    model = Model(args.model, f16_attn=not args.f32_attn)
    tok = None
    if args.command != "logits":
        import bpe  # tokenizer only: text <-> ids
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
