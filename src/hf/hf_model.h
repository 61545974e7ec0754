/* Hugging Face model folders -> GGUF.
 *
 * One conversion routine serves `bitnet convert` (to a file) and `bitnet run -m DIR` (to memory):
 *   config.json            architecture and hyper-parameters -> <arch>.* keys, as Microsoft's file
 *                          names them (BitNetForCausalLM -> "bitnet-b1.58", BitnetForCausalLM ->
 *                          "bitnet", LlamaForCausalLM with a BitNet quantization_config -> "llama");
 *   tokenizer.json         byte-level BPE -> tokenizer.ggml.{model,tokens,scores,token_type,merges}
 *   tokenizer_config.json  chat template, bos/eos, add_bos_token (generation_config.json and
 *                          config.json supply ids it lacks);
 *   *.safetensors          weights (one file or sharded) -> tensors with llama.cpp's names.
 * Linear weights are either float master weights, ternarised with absmean (weights that are
 * already ternary times one magnitude keep that magnitude), or packed four per byte with a
 * weight_scale (Microsoft's 2B-4T layout: bits 2k..2k+1 of packed row r hold output row k*R + r as
 * code+1; the weight is code / weight_scale).  Tensors are produced one at a time while writing,
 * so only one tensor's float copy is ever in memory; each tensor is converted on n_threads threads
 * (hf_parallel.h), with results that do not depend on their number. */
#ifndef BN_HF_HF_MODEL_H
#define BN_HF_HF_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "gguf/gguf.h"

/* Progress: called after each tensor; returning false cancels (BN_ERR_CANCELLED). */
typedef bool (*bn_progress_fn)(void *user, uint64_t done, uint64_t total);

#define BN_CONVERT_TYPE_AUTO UINT32_MAX

typedef struct bn_convert_opts {
    uint32_t weight_type; /* BN_TYPE_I2_S (default), BN_TYPE_TQ1_0, BN_TYPE_TQ2_0 */
    uint32_t embed_type;  /* token_embd/output: F32, F16, BF16, Q8_0, Q6_K; AUTO = F16 */
    bn_progress_fn progress;
    void *user;
    int n_threads; /* threads converting each tensor: 0 = physical cores (default), else 1..1024;
                      the output is byte-identical for every count */
} bn_convert_opts;

void bn_convert_opts_default(bn_convert_opts *o);

/* true if path is a folder: models are read from folders as Hugging Face ones (a folder
 * without config.json then fails with a message saying so). */
bool bn_hf_is_model_dir(const char *path);

/* A conversion in progress: the checkpoint stays mapped until bn_hf_conv_free. */
typedef struct bn_hf_conv bn_hf_conv;

/* Reads and checks everything (config, tokenizer, every tensor's name, dtype and shape) and
 * prepares a writer whose tensors are produced when it writes.  All input errors surface here. */
bn_status bn_hf_conv_init(const char *dir, const bn_convert_opts *o, bn_hf_conv **out);
bn_gguf_writer *bn_hf_conv_writer(bn_hf_conv *c);
void bn_hf_conv_free(bn_hf_conv *c);

/* Convenience: the whole conversion to an atomically written file. */
bn_status bn_hf_convert_file(const char *dir, const bn_convert_opts *o, const char *out_path);

/* Direct loading: the same conversion into memory, opened as a GGUF that owns its buffer
 * (bn_gguf_free releases it).  o may be NULL (I2_S weights, F16 embeddings). */
bn_status bn_hf_open_gguf(const char *dir, const bn_convert_opts *o, bn_gguf **out);

/* Ternary-weight and file-type ids: general.file_type for a ternary weight type (I2_S 40,
 * TQ1_0 36, TQ2_0 37); 0 for others. */
uint32_t bn_file_type_for(uint32_t weight_type);

#endif
