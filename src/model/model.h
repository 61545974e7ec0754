/* Model: architecture, hyper-parameters and weights bound by name from a GGUF file.
 * Weights stay in the file's memory map; only small tensors that are not F32 (norms) are
 * converted into owned buffers. */
#ifndef BN_MODEL_MODEL_H
#define BN_MODEL_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/status.h"
#include "gguf/gguf.h"
#include "kernels/kernels.h"

typedef enum bn_arch {
    BN_ARCH_BITNET_B158 = 0, /* "bitnet-b1.58" / "bitnet-25": Microsoft BitNet b1.58 2B-4T graph */
    BN_ARCH_BITNET = 1,      /* "bitnet": 1bitLLM graph (sub-norms, SiLU-gated FFN) */
    BN_ARCH_LLAMA = 2        /* "llama": standard Llama graph */
} bn_arch;

typedef enum bn_ffn_act { BN_FFN_RELU2 = 0, BN_FFN_SILU = 1 } bn_ffn_act;

typedef struct bn_hparams {
    int n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, n_ff, head_dim, n_rot;
    float rope_theta, norm_eps;
    bool rope_neox;  /* rotate halves (BitNet) vs adjacent pairs (llama) */
    bool sub_norms;  /* attn_sub_norm / ffn_sub_norm present */
    bn_ffn_act ffn_act;
} bn_hparams;

typedef struct bn_layer {
    const float *attn_norm, *attn_sub_norm, *ffn_norm, *ffn_sub_norm; /* [n_embd] / [n_ff] */
    bn_weight wq, wk, wv, wo, w_gate, w_up, w_down;
    /* "bitnet" arch: optional per-tensor output scales (1 when absent) */
    float sq, sk, sv, so, s_gate, s_up, s_down;
} bn_layer;

typedef struct bn_model {
    bn_gguf *gguf;             /* owns the mapping */
    bn_arch arch;
    char arch_name[32];
    bn_hparams hp;
    const bn_gguf_tensor *tok_embd; /* [n_vocab x n_embd], any dequantizable type */
    float tok_embd_i2s_scale;
    const float *output_norm;
    bn_weight output;          /* head; tied models point at token_embd */
    bool tied;
    void *head_owned;          /* the requantised head, when bn_model_requantize_head made one */
    bn_layer *layers;
    void **owned;              /* converted small tensors */
    int n_owned;
    uint64_t n_params;
    uint64_t repacked_bytes;   /* weight bytes bn_model_repack copies (or is copying) into a faster layout */
    int repack_total;          /* weights bn_model_repack looks at (0: no repacking asked for) */
    int repack_next;           /* the next one to repack (claimed atomically; >= total: all done) */
    bool repack_release;
} bn_model;

/* Binds a model to an opened GGUF file.  On success the model owns g. On failure g is untouched
 * (caller frees) and the message names the key or tensor at fault. */
bn_status bn_model_init_gguf(bn_gguf *g, bn_model **out);
void bn_model_free(bn_model *m);

/* Replaces the output head by a copy quantised to `type` (Q8_0 today): fewer bytes read per
 * generated token for a small quality cost.  Only the head changes; token_embd lookups keep the
 * stored type.  No-op if the head already has that type. */
bn_status bn_model_requantize_head(bn_model *m, uint32_t type);

/* Copies the matrices the active kernels read faster in another layout (I2_S, TQ1_0 and TQ2_0 on AVX2/AVX-512:
 * bn_weight_repack) into that layout.  With release_file_pages (the model is a read-only file
 * mapping), the file's pages of each copied tensor are then dropped from the resident set, so the
 * copy does not count twice.  m->repacked_bytes gets the total.
 * Not lazy: done now, on all cores.  lazy: nothing is copied yet; the engine then calls
 * bn_model_repack_step before each evaluation after a context's first, so loading and the first
 * token are not delayed and the copy is spread over the next few tokens (each weight switches to
 * its copy when the copy is complete; the results are the same either way). */
bn_status bn_model_repack(bn_model *m, bool release_file_pages, bool lazy);
/* Repacks weights not yet repacked, about `budget` bytes of them, on pool's threads (pool may be
 * NULL).  Safe to call from several contexts of one model at once (each weight is claimed once).
 * On failure (no memory for a copy) that weight keeps the file's layout, which stays correct. */
bn_status bn_model_repack_step(const bn_model *m, bn_threadpool *pool, size_t budget);

/* Bytes of the matrices one forward pass reads (every layer's and the head), in the file's types. */
uint64_t bn_model_pass_bytes(const bn_model *m);

/* Embedding lookup: dst[n_embd] = row `token` of token_embd as float. */
bn_status bn_model_embed(const bn_model *m, int32_t token, float *dst);

const char *bn_arch_name(bn_arch a);

#endif
