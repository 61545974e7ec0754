"""BitNet b1.58 (arch `bitnet-b1.58`, as BitNet-b1.58-2B-4T) with quantization-aware training.

Per layer (see ../../../shared/spec/bitnet-format.md §1 — the op order is the spec's):
  a = RMSNorm(x)·attn_norm; q,k,v = W a; NEOX RoPE; causal GQA softmax attention;
  o = RMSNorm(o)·attn_sub_norm; x += Wo o
  f = RMSNorm(x)·ffn_norm; g = relu(Wgate f)² · (Wup f); g = RMSNorm(g)·ffn_sub_norm; x += Wdown g
Final RMSNorm·output_norm, logits against the tied embedding.  No biases.

Every linear layer is a BitLinear: in the forward pass its input is quantized per token to
int8 (absmax, s = 127/max(|x|,1e-5), round half to even, clamp −128..127) and its weight to
ternary (absmean: scale = mean|W|, clamp(round(W/scale),−1,1)·scale); gradients pass
straight through both roundings (x + (q(x) − x).detach()).
"""
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab_size: int = 4096
    hidden: int = 256
    layers: int = 6
    heads: int = 4
    kv_heads: int = 2
    ffn: int = 768
    context: int = 256
    rope_theta: float = 10000.0
    rms_eps: float = 1e-5

    @property
    def head_dim(self):
        return self.hidden // self.heads

    def to_dict(self):
        return asdict(self)


def weight_quant(w):
    """Absmean ternary fake-quantization; returns (dequantized weight, scale)."""
    scale = w.abs().mean().clamp(min=1e-5)
    return (w / scale).round().clamp(-1, 1) * scale, scale


def act_quant(x):
    """Per-token absmax int8 fake-quantization (torch.round rounds half to even)."""
    s = 127.0 / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
    return (x * s).round().clamp(-128, 127) / s


class BitLinear(nn.Linear):
    def __init__(self, n_in, n_out):
        super().__init__(n_in, n_out, bias=False)

    def forward(self, x):
        xq = x + (act_quant(x) - x).detach()
        wq = self.weight + (weight_quant(self.weight)[0] - self.weight).detach()
        return F.linear(xq, wq)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(cfg, n_pos, device=None):
    d = cfg.head_dim
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    ang = torch.arange(n_pos, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float().to(device), torch.sin(ang).float().to(device)


def apply_rope(x, cos, sin):
    """NEOX style: element i pairs with i + d/2 (rotate halves). x: [B, H, T, d]."""
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.q_proj = BitLinear(cfg.hidden, cfg.heads * hd)
        self.k_proj = BitLinear(cfg.hidden, cfg.kv_heads * hd)
        self.v_proj = BitLinear(cfg.hidden, cfg.kv_heads * hd)
        self.attn_sub_norm = RMSNorm(cfg.heads * hd, cfg.rms_eps)
        self.o_proj = BitLinear(cfg.heads * hd, cfg.hidden)

    def forward(self, x, cos, sin, mask):
        cfg = self.cfg
        B, T, _ = x.shape
        hd = cfg.head_dim
        q = self.q_proj(x).view(B, T, cfg.heads, hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, cfg.kv_heads, hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, cfg.kv_heads, hd).transpose(1, 2)
        q = apply_rope(q, cos[:T], sin[:T])
        k = apply_rope(k, cos[:T], sin[:T])
        rep = cfg.heads // cfg.kv_heads  # query head h uses kv head h // rep
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd)) + mask[:T, :T]
        o = torch.softmax(att, dim=-1) @ v
        o = o.transpose(1, 2).reshape(B, T, cfg.heads * hd)
        return self.o_proj(self.attn_sub_norm(o))


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.gate_proj = BitLinear(cfg.hidden, cfg.ffn)
        self.up_proj = BitLinear(cfg.hidden, cfg.ffn)
        self.ffn_sub_norm = RMSNorm(cfg.ffn, cfg.rms_eps)
        self.down_proj = BitLinear(cfg.ffn, cfg.hidden)

    def forward(self, x):
        g = F.relu(self.gate_proj(x)).square() * self.up_proj(x)
        return self.down_proj(self.ffn_sub_norm(g))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden, cfg.rms_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden, cfg.rms_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class BitNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = RMSNorm(cfg.hidden, cfg.rms_eps)
        cos, sin = rope_tables(cfg, cfg.context)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        mask = torch.full((cfg.context, cfg.context), float("-inf")).triu(1)
        self.register_buffer("mask", mask, persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        std = 0.02
        nn.init.normal_(self.embed_tokens.weight, std=std)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, std=std)

    def forward(self, idx):
        x = self.embed_tokens(idx)
        for blk in self.layers:
            x = blk(x, self.rope_cos, self.rope_sin, self.mask)
        x = self.norm(x)
        return x @ self.embed_tokens.weight.t()  # tied output head
