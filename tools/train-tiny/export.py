"""Export the trained model: a Hugging Face folder and a GGUF file.

    /usr/bin/python3 tools/train-tiny/export.py [--work tools/train-tiny/work] [--models models]

Writes
  models/bitnet-kjv-tiny-hf/config.json, generation_config.json, tokenizer.json,
      tokenizer_config.json, model.safetensors (bf16 master weights, as
      microsoft/bitnet-b1.58-2B-4T-bf16), model-packed.safetensors (ternary weights packed
      four per byte + weight_scale, as microsoft/bitnet-b1.58-2B-4T), README.md
  models/bitnet-kjv-tiny.gguf (arch bitnet-b1.58, I2_S, the official 2B-4T file's keys)

Every export is derived from the bf16-rounded master weights, so converting
model.safetensors with any absmean converter gives the same ternary codes as the GGUF.
Ternarization is BitNet's preprocessing in fp32: mean = mean|W| (summed in double),
s = 1/mean, code = clamp(round_half_even(W·s), −1, 1), I2_S scale = 1/s (the magnitude of
the fake-quantized fp32 weights that bitnet.cpp's quantizer reads; = mean up to an ulp).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bpe  # noqa: E402
import gguf_io as G  # noqa: E402

NAME = "bitnet-kjv-tiny"
LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
# BitNet's training chat format (microsoft/BitNet gpu/tokenizer.py): BOS, then per message
# "Role: " + stripped content + <|eot_id|>, and "Assistant: " to prompt a reply.
CHAT_TEMPLATE = ("{{ bos_token }}{% for message in messages %}"
                 "{{ message['role'] | capitalize + ': ' + message['content'] | trim + '<|eot_id|>' }}"
                 "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}")


def bf16_round(t):
    """float32 tensor -> (bf16 bit patterns as uint16 numpy, float32 values after rounding)."""
    b = t.detach().to(torch.bfloat16)
    return b.view(torch.int16).numpy().view(np.uint16), b.float().numpy()


def ternarize(w):
    """w: float32 [out, in] -> (int8 codes in {-1,0,1}, I2_S scale, HF weight_scale s)."""
    # sequential double sum (np.cumsum), not numpy's pairwise sum, so the float32 mean is the
    # one a straightforward C loop gets (our converter's bn_ternarize_absmean)
    mean = np.float32(np.cumsum(np.abs(w.astype(np.float64)).reshape(-1))[-1] / w.size)
    scale = max(mean, np.float32(1e-5))
    s = np.float32(1.0) / scale
    q = np.rint(np.clip(w * s, np.float32(-2), np.float32(2)))
    # bitnet.cpp's pipeline stores the fake-quantized weights code·(1/s) in fp32 and takes
    # their magnitude as the I2_S scale: 1/(1/mean), which can differ from mean by an ulp
    return np.clip(q, -1, 1).astype(np.int8), np.float32(1.0) / s, s


def pack_hf(codes):
    """Microsoft's offline layout: [out, in] codes -> uint8 [out/4, in]; bits 2k..2k+1 of
    packed row r hold output row k·R + r as code + 1 (R = out/4)."""
    out, _ = codes.shape
    R = out // 4
    c = (codes.astype(np.int16) + 1).astype(np.uint8).reshape(4, R, -1)
    return (c[0] | (c[1] << 2) | (c[2] << 4) | (c[3] << 6)).astype(np.uint8)


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype string, shape, bytes). Header padded with spaces to 8."""
    header = {}
    off = 0
    for name, dt, shape, data in tensors:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
    if metadata:
        header["__metadata__"] = metadata
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((-len(hj)) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for _, _, _, data in tensors:
            f.write(data)
    os.replace(tmp, path)


def load(work):
    ck = torch.load(os.path.join(work, "final.pt"))
    tok = bpe.Tokenizer.from_hf_json(os.path.join(work, "tokenizer.json"))
    return ck["config"], ck["model"], tok


def export(work, models):
    cfg, sd, tok = load(work)
    L = cfg["layers"]
    hf_dir = os.path.join(models, NAME + "-hf")
    os.makedirs(hf_dir, exist_ok=True)

    # Master weights rounded to bf16: the single source of every file below.
    bf = {}
    vals = {}
    for k, v in sd.items():
        name = "model." + k
        bf[name], vals[name] = bf16_round(v)
    quant = {}
    for i in range(L):
        for lin in LINEARS:
            n = "model.layers.%d.%s.weight" % (i, lin)
            quant[n] = ternarize(vals[n])

    # --- model.safetensors: bf16 master weights -----------------------------------
    order = ["model.embed_tokens.weight"]
    for i in range(L):
        p = "model.layers.%d." % i
        order += [p + "input_layernorm.weight"] + [p + l + ".weight" for l in LINEARS[:3]] + \
                 [p + "self_attn.attn_sub_norm.weight", p + "self_attn.o_proj.weight",
                  p + "post_attention_layernorm.weight"] + \
                 [p + l + ".weight" for l in LINEARS[4:]] + [p + "mlp.ffn_sub_norm.weight"]
    order.append("model.norm.weight")
    assert sorted(order) == sorted(bf.keys()), set(bf) ^ set(order)
    write_safetensors(os.path.join(hf_dir, "model.safetensors"),
                      [(n, "BF16", vals[n].shape, bf[n].tobytes()) for n in order],
                      {"format": "pt"})

    # --- model-packed.safetensors: four codes per byte + weight_scale --------------
    packed = []
    for n in order:
        if n in quant:
            codes, scale, s = quant[n]
            packed.append((n, "U8", None, pack_hf(codes)))
            # HF semantics (transformers integrations/bitnet.py): y = x_q·W_codes / (x_scale·weight_scale),
            # so weight_scale = s = 1/mean|W|.  Stored F32 (Microsoft's file uses bf16) so that
            # 1/weight_scale is exactly the GGUF's scale.
            ws = np.array([s], dtype=np.float32)
            packed.append((n[:-len(".weight")] + ".weight_scale", "F32", None, ws))
        else:
            packed.append((n, "BF16", None, bf[n]))
    write_safetensors(os.path.join(hf_dir, "model-packed.safetensors"),
                      [(n, dt, a.shape, a.tobytes()) for n, dt, _, a in packed],
                      {"format": "pt"})

    # --- json files ---------------------------------------------------------------
    config = {
        "architectures": ["BitNetForCausalLM"],
        "model_type": "bitnet",
        "vocab_size": tok.n_vocab,
        "hidden_size": cfg["hidden"],
        "intermediate_size": cfg["ffn"],
        "num_hidden_layers": L,
        "num_attention_heads": cfg["heads"],
        "num_key_value_heads": cfg["kv_heads"],
        "head_dim": cfg["hidden"] // cfg["heads"],
        "hidden_act": "relu2",
        "max_position_embeddings": cfg["context"],
        "rms_norm_eps": cfg["rms_eps"],
        "rope_theta": cfg["rope_theta"],
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "tie_word_embeddings": True,
        "initializer_range": 0.02,
        "bos_token_id": tok.bos_id,
        "eos_token_id": tok.eos_id,
        "pad_token_id": tok.eos_id,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        # model.safetensors holds master weights, quantized on the fly ("online");
        # model-packed.safetensors is the "offline" layout of microsoft/bitnet-b1.58-2B-4T.
        "quantization_config": {"quant_method": "bitnet", "linear_class": "autobitlinear",
                                "quantization_mode": "online"},
    }
    gen = {"bos_token_id": tok.bos_id, "eos_token_id": [tok.eos_id, tok.eot_id],
           "pad_token_id": tok.eos_id, "do_sample": True, "temperature": 0.8, "top_k": 40,
           "top_p": 0.95, "max_length": cfg["context"]}
    tcfg = {
        "added_tokens_decoder": {str(tok.special_base + k): {
            "content": s, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": True} for k, s in enumerate(tok.specials)},
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|end_of_text|>",
        "pad_token": "<|end_of_text|>",
        "add_bos_token": True,
        "add_eos_token": False,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": cfg["context"],
        "tokenizer_class": "PreTrainedTokenizerFast",
    }

    def dump(name, obj):
        with open(os.path.join(hf_dir, name), "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False, indent=2)
            f.write("\n")

    dump("config.json", config)
    dump("generation_config.json", gen)
    dump("tokenizer_config.json", tcfg)
    with open(os.path.join(hf_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok.to_hf_json(), f, ensure_ascii=False)
    with open(os.path.join(hf_dir, "README.md"), "w") as f:
        f.write(HF_README)

    # --- GGUF -----------------------------------------------------------------------
    A = "bitnet-b1.58"
    n_vocab = tok.n_vocab
    tokens = [tok.token_str(i) for i in range(n_vocab)]
    ttype = [1] * tok.special_base + [3] * (n_vocab - tok.special_base)  # NORMAL / CONTROL
    scores = [0.0] * tok.special_base + [-1000.0] * (n_vocab - tok.special_base)
    merges = ["%s %s" % (tok.token_str(a), tok.token_str(b)) for a, b in tok.merges]
    kvs = [
        ("general.architecture", G.STRING, A),
        ("general.name", G.STRING, NAME),
        (A + ".vocab_size", G.UINT32, n_vocab),
        (A + ".context_length", G.UINT32, cfg["context"]),
        (A + ".embedding_length", G.UINT32, cfg["hidden"]),
        (A + ".block_count", G.UINT32, L),
        (A + ".feed_forward_length", G.UINT32, cfg["ffn"]),
        (A + ".rope.dimension_count", G.UINT32, cfg["hidden"] // cfg["heads"]),
        (A + ".attention.head_count", G.UINT32, cfg["heads"]),
        (A + ".attention.head_count_kv", G.UINT32, cfg["kv_heads"]),
        ("tokenizer.ggml.add_bos_token", G.BOOL, True),
        (A + ".attention.layer_norm_rms_epsilon", G.FLOAT32, cfg["rms_eps"]),
        (A + ".rope.freq_base", G.FLOAT32, cfg["rope_theta"]),
        ("general.file_type", G.UINT32, 40),
        ("tokenizer.ggml.model", G.STRING, "gpt2"),
        # Not in Microsoft's file (which relies on engines defaulting to Llama-3 splitting);
        # our vocabulary was trained with the Llama-3 pre-tokenizer, so say so.
        ("tokenizer.ggml.pre", G.STRING, "llama-bpe"),
        ("tokenizer.ggml.tokens", G.ARRAY, (G.STRING, tokens)),
        ("tokenizer.ggml.scores", G.ARRAY, (G.FLOAT32, scores)),
        ("tokenizer.ggml.token_type", G.ARRAY, (G.INT32, ttype)),
        ("tokenizer.ggml.merges", G.ARRAY, (G.STRING, merges)),
        ("tokenizer.ggml.bos_token_id", G.UINT32, tok.bos_id),
        ("tokenizer.ggml.eos_token_id", G.UINT32, tok.eos_id),
        ("tokenizer.ggml.padding_token_id", G.UINT32, tok.eos_id),
        ("tokenizer.chat_template", G.STRING, CHAT_TEMPLATE),
        ("general.quantization_version", G.UINT32, 2),
    ]

    def f32(n):
        return vals[n].astype(np.float32).tobytes()

    def i2s(n):
        codes, scale, _ = quant[n]
        return G.i2s_pack((codes.reshape(-1) + 1).astype(np.uint8), float(scale))

    emb = vals["model.embed_tokens.weight"]
    tensors = [("token_embd.weight", G.F16, [cfg["hidden"], n_vocab], emb.astype(np.float16).tobytes())]
    gg = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
          "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
          "mlp.down_proj": "ffn_down"}
    for i in range(L):
        p = "model.layers.%d." % i
        b = "blk.%d." % i

        def lin(hf):
            n = p + hf + ".weight"
            out, inp = vals[n].shape
            return (b + gg[hf] + ".weight", G.I2_S, [inp, out], i2s(n))

        def norm(hf, g):
            n = p + hf + ".weight"
            return (b + g + ".weight", G.F32, [vals[n].shape[0]], f32(n))

        tensors += [norm("input_layernorm", "attn_norm"), lin("self_attn.q_proj"),
                    lin("self_attn.k_proj"), lin("self_attn.v_proj"),
                    norm("self_attn.attn_sub_norm", "attn_sub_norm"), lin("self_attn.o_proj"),
                    norm("post_attention_layernorm", "ffn_norm"), lin("mlp.gate_proj"),
                    lin("mlp.up_proj"), norm("mlp.ffn_sub_norm", "ffn_sub_norm"),
                    lin("mlp.down_proj")]
    tensors.append(("output_norm.weight", G.F32, [cfg["hidden"]], f32("model.norm.weight")))
    gguf_path = os.path.join(models, NAME + ".gguf")
    G.write(gguf_path, kvs, tensors)
    return gguf_path, hf_dir


def verify(gguf_path, hf_dir):
    """Structural checks against the reference file and a round trip of every tensor."""
    kvs, tensors, meta = G.read(gguf_path)
    ref_kvs, ref_t, ref_meta = G.read("/work/shared/data/reference/V1/model.gguf") \
        if os.path.exists("/work/shared/data/reference/V1/model.gguf") else (None, None, None)
    keys = [k for k, _, _ in kvs]
    official = ["general.architecture", "general.name", "bitnet-b1.58.vocab_size",
                "bitnet-b1.58.context_length", "bitnet-b1.58.embedding_length",
                "bitnet-b1.58.block_count", "bitnet-b1.58.feed_forward_length",
                "bitnet-b1.58.rope.dimension_count", "bitnet-b1.58.attention.head_count",
                "bitnet-b1.58.attention.head_count_kv", "tokenizer.ggml.add_bos_token",
                "bitnet-b1.58.attention.layer_norm_rms_epsilon", "bitnet-b1.58.rope.freq_base",
                "general.file_type", "tokenizer.ggml.model", "tokenizer.ggml.tokens",
                "tokenizer.ggml.scores", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
                "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                "tokenizer.ggml.padding_token_id", "tokenizer.chat_template",
                "general.quantization_version"]
    assert [k for k in keys if k != "tokenizer.ggml.pre"] == official, keys
    if ref_t is not None:
        # Same tensor naming pattern and types as the bitnet.cpp-made reference file.
        def pattern(names):
            return sorted({n.split(".", 2)[-1] if n.startswith("blk.") else n for n in names})
        assert pattern(tensors) == pattern(ref_t), (pattern(tensors), pattern(ref_t))
        for n, (tt, shape, _) in tensors.items():
            key = n if not n.startswith("blk.") else "blk.0." + n.split(".", 2)[-1]
            assert ref_t[key][0] == tt, n
    # packed safetensors agree with the GGUF
    hdr, data = read_safetensors(os.path.join(hf_dir, "model-packed.safetensors"))
    for n, (tt, shape, buf) in tensors.items():
        if tt != G.I2_S:
            continue
        vals, scale = G.i2s_unpack(buf, shape[0] * shape[1])
        vals = vals.reshape(shape[1], shape[0])
        hfn = hf_name(n)
        info = hdr[hfn]
        b0, b1 = info["data_offsets"]
        packed = np.frombuffer(data[b0:b1], dtype=np.uint8).reshape(info["shape"])
        R = packed.shape[0]
        un = np.concatenate([((packed >> (2 * k)) & 3).astype(np.int8) - 1 for k in range(4)])
        assert un.shape[0] == 4 * R and np.array_equal(un, vals), n
        s0, s1 = hdr[hfn[:-len(".weight")] + ".weight_scale"]["data_offsets"]
        ws = np.frombuffer(data[s0:s1], dtype=np.float32)[0]
        assert np.float32(1.0) / ws == np.float32(scale), (n, 1.0 / ws, scale)
    size = os.path.getsize(gguf_path)
    assert size < 8 * 1024 * 1024, size
    return size


def hf_name(gguf_name):
    m = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
         "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
         "ffn_down": "mlp.down_proj"}
    _, i, t, _ = gguf_name.split(".")
    return "model.layers.%s.%s.weight" % (i, m[t])


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    n = struct.unpack_from("<Q", buf, 0)[0]
    hdr = json.loads(buf[8:8 + n])
    return hdr, memoryview(buf)[8 + n:]


HF_README = """# bitnet-kjv-tiny (Hugging Face layout)

A tiny BitNet b1.58 model (architecture of microsoft/bitnet-b1.58-2B-4T) trained by this project on the
King James Bible; see `docs/tiny-model.md` in the repository.  Files:

- `model.safetensors`: bf16 master weights (the layout of microsoft/bitnet-b1.58-2B-4T-bf16); linear
  weights are ternarized on load with absmean (`quantization_mode: online` in config.json).
- `model-packed.safetensors`: the same model with every linear weight ternarized and packed four per
  byte (uint8 `[out/4, in]`; bits 2k..2k+1 of packed row r hold output row k*R + r as code+1, R = out/4)
  plus `<name>.weight_scale` = 1 / mean|W| (F32, shape [1]), the "offline" layout of
  microsoft/bitnet-b1.58-2B-4T.  To use it on its own, put it in a folder as `model.safetensors` with
  these json files and set `quantization_mode` to `offline`.
- `tokenizer.json`, `tokenizer_config.json` (BitNet chat template), `generation_config.json`.

Both weight files give exactly the ternary codes of `../bitnet-kjv-tiny.gguf`.
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--models", default=os.path.join(HERE, "..", "..", "models"))
    args = ap.parse_args()
    gguf_path, hf_dir = export(args.work, os.path.normpath(args.models))
    size = verify(gguf_path, hf_dir)
    print("wrote %s (%d bytes) and %s" % (gguf_path, size, hf_dir))


if __name__ == "__main__":
    main()
