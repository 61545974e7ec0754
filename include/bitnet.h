/*
 * bitnet.h — the public C API of BitNet.c, an inference engine for BitNet b1.58 (ternary) models.
 *
 * Conventions
 *   - Objects are opaque handles made by *_init / *_load / *_open and released by the matching
 *     *_free.  Passing NULL to a *_free function does nothing.
 *   - Functions that can fail return a bitnet_status.  On failure, bitnet_last_error() gives a
 *     readable message for the calling thread (valid until that thread's next failing call).
 *   - The library never prints, never exits and never aborts on bad input.
 *   - Every object may be used by one thread at a time.  A bitnet_model is read-only after
 *     loading and may be shared by any number of contexts on any threads.
 *   - Strings are UTF-8.  Text returned in buffers is NUL-terminated unless a length is returned.
 *
 * The smallest program:
 *
 *     bitnet_model *m;
 *     if (bitnet_model_load("model.gguf", NULL, &m) != BITNET_OK) {
 *         fprintf(stderr, "%s\n", bitnet_last_error());
 *         return 1;
 *     }
 *     char *text = bitnet_generate(m, "In the beginning", NULL);
 *     if (text) puts(text);
 *     bitnet_free_string(text);
 *     bitnet_model_free(m);
 */
#ifndef BITNET_H
#define BITNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(BITNET_BUILDING_LIBRARY)
#define BITNET_API __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define BITNET_API __attribute__((visibility("default")))
#else
#define BITNET_API
#endif

#define BITNET_VERSION_MAJOR 0
#define BITNET_VERSION_MINOR 1
#define BITNET_VERSION_PATCH 0

/* ============================================================================================
 * Status and errors
 * ============================================================================================ */

typedef enum bitnet_status {
    BITNET_OK = 0,
    BITNET_ERR_INVALID_ARG = 1, /* a bad argument (NULL where not allowed, out-of-range option) */
    BITNET_ERR_IO = 2,          /* a file could not be opened, read or written */
    BITNET_ERR_FORMAT = 3,      /* a file or text is malformed; the message says where */
    BITNET_ERR_NOMEM = 4,       /* out of memory */
    BITNET_ERR_UNSUPPORTED = 5, /* valid input using something this version does not support */
    BITNET_ERR_RANGE = 6,       /* a size or index out of range, e.g. the context is full */
    BITNET_ERR_NOT_FOUND = 7,   /* a key, tensor or token that was asked for is absent */
    BITNET_ERR_CANCELLED = 8,   /* a callback asked to stop */
    BITNET_ERR_STATE = 9,       /* the object is not in a state that allows this call */
    BITNET_ERR_INTERNAL = 10    /* a bug in the library: please report it */
} bitnet_status;

/* The message of the last failure on this thread ("" if none). */
BITNET_API const char *bitnet_last_error(void);
/* A short constant description of a status code. */
BITNET_API const char *bitnet_status_string(bitnet_status status);
/* "0.1.0" */
BITNET_API const char *bitnet_version(void);

/* ============================================================================================
 * System: what the library detected and chose on this machine
 * ============================================================================================ */

typedef struct bitnet_system_info {
    char kernels[16];       /* implementation in use: "ref", "avx2", "avx512", "neon", "wasm" */
    char cpu_features[128]; /* space-separated, e.g. "avx2 fma f16c" */
    int n_cores_physical;
    int n_cores_logical;
    bool i2s_repack;        /* the kernels in use read I2_S weights repacked after loading (see
                               bitnet_model_params.repack) */
    bool tq_repack;         /* the same for TQ1_0 and TQ2_0 weights */
    uint64_t cache_bytes;   /* the CPU's last-level cache as the OS describes it, 0 when it does not
                               say; bitnet_batch_split's AUTO compares the model's size with it */
} bitnet_system_info;

BITNET_API bitnet_status bitnet_system_info_get(bitnet_system_info *info);

/* ============================================================================================
 * GGUF inspection (used by `bitnet info`): read any GGUF v2/v3 file's metadata and tensor table
 * without loading a model.  The file is validated completely when opened.
 * ============================================================================================ */

typedef struct bitnet_gguf bitnet_gguf;

/* Metadata value types, numbered as in the GGUF specification. */
typedef enum bitnet_gguf_type {
    BITNET_GGUF_UINT8 = 0,
    BITNET_GGUF_INT8 = 1,
    BITNET_GGUF_UINT16 = 2,
    BITNET_GGUF_INT16 = 3,
    BITNET_GGUF_UINT32 = 4,
    BITNET_GGUF_INT32 = 5,
    BITNET_GGUF_FLOAT32 = 6,
    BITNET_GGUF_BOOL = 7,
    BITNET_GGUF_STRING = 8,
    BITNET_GGUF_ARRAY = 9,
    BITNET_GGUF_UINT64 = 10,
    BITNET_GGUF_INT64 = 11,
    BITNET_GGUF_FLOAT64 = 12
} bitnet_gguf_type;

/* A metadata value: a scalar, a string or an array (possibly of arrays). */
typedef struct bitnet_gguf_value {
    bitnet_gguf_type type;
    uint64_t u;          /* unsigned integers and BOOL */
    int64_t i;           /* signed integers */
    double f;            /* FLOAT32 / FLOAT64 */
    const char *str;     /* STRING: not NUL-terminated */
    uint64_t str_len;
    bitnet_gguf_type elem_type; /* ARRAY */
    uint64_t n_elem;            /* ARRAY */
    const void *internal_;      /* do not touch */
} bitnet_gguf_value;

typedef struct bitnet_gguf_tensor_info {
    const char *name; /* not NUL-terminated */
    uint64_t name_len;
    uint32_t type;        /* ggml type id */
    const char *type_name;/* "I2_S", "F16", ... or NULL if unknown */
    uint32_t n_dims;
    int64_t ne[4];        /* ne[0] = row length; unused = 1 */
    uint64_t offset;      /* from the start of the data section */
    uint64_t nbytes;
    /* false for types whose byte size this version does not know (TL1, TL2): nbytes is then the
     * span up to the next tensor's data, an upper bound.  Such files can be inspected, not run. */
    bool sized;
} bitnet_gguf_tensor_info;

/* Opens and validates a file (see docs/gguf.md for what is checked).  Tensors of types that
 * cannot be sized are accepted here and flagged (tensor_info.sized = false). */
BITNET_API bitnet_status bitnet_gguf_open(const char *path, bitnet_gguf **out);
BITNET_API void bitnet_gguf_free(bitnet_gguf *g);
BITNET_API uint32_t bitnet_gguf_version(const bitnet_gguf *g);
BITNET_API uint32_t bitnet_gguf_alignment(const bitnet_gguf *g);
BITNET_API uint64_t bitnet_gguf_file_size(const bitnet_gguf *g);
BITNET_API int64_t bitnet_gguf_kv_count(const bitnet_gguf *g);
/* Key i (0 <= i < kv_count), NUL-terminated copy owned by g. */
BITNET_API const char *bitnet_gguf_kv_key(const bitnet_gguf *g, int64_t i);
BITNET_API bitnet_status bitnet_gguf_kv_value(const bitnet_gguf *g, int64_t i, bitnet_gguf_value *out);
/* Index of a key, or -1. */
BITNET_API int64_t bitnet_gguf_kv_find(const bitnet_gguf *g, const char *key);
/* Element j of an array value. */
BITNET_API bitnet_status bitnet_gguf_array_get(const bitnet_gguf_value *array, uint64_t j, bitnet_gguf_value *out);
BITNET_API int64_t bitnet_gguf_tensor_count(const bitnet_gguf *g);
BITNET_API bitnet_status bitnet_gguf_tensor_info_get(const bitnet_gguf *g, int64_t i, bitnet_gguf_tensor_info *out);
/* Name of a ggml tensor type id ("I2_S"), or NULL. */
BITNET_API const char *bitnet_type_name(uint32_t type);
/* Name of a metadata value type ("u32", "string", ...); "unknown" outside the enum. */
BITNET_API const char *bitnet_gguf_type_name(bitnet_gguf_type type);
/* Name of a general.file_type value as llama.cpp / bitnet.cpp number them ("MOSTLY_I2_S" for 40,
 * "MOSTLY_F16" for 1, ...), or NULL if unknown. */
BITNET_API const char *bitnet_file_type_name(uint32_t file_type);

/* ============================================================================================
 * Models
 * ============================================================================================ */

typedef struct bitnet_model bitnet_model;
typedef struct bitnet_tokenizer bitnet_tokenizer;
typedef int32_t bitnet_token;

/* How the Llama-3 vocabulary splits text before BPE. */
typedef enum bitnet_pretokenizer {
    BITNET_PRETOK_AUTO = 0,   /* the file's tokenizer.ggml.pre; Llama-3 vocabulary without it: LLAMA3 */
    BITNET_PRETOK_LLAMA3 = 1, /* what BitNet 2B-4T was trained with */
    BITNET_PRETOK_GPT2 = 2,
    BITNET_PRETOK_DEFAULT = 3 /* bitnet.cpp's fallback when the key is missing (reproduces its ids) */
} bitnet_pretokenizer;

typedef enum bitnet_repack {
    BITNET_REPACK_OFF = 0,        /* use the weights as the file stores them */
    BITNET_REPACK_LAZY = 1,       /* repack a slice before each evaluation after a context's first
                                     (about 64 MiB each): loading and the first token are not
                                     delayed, generation reaches full speed after a few tokens */
    BITNET_REPACK_AT_LOAD = 2     /* repack on all cores before bitnet_model_load returns (steady
                                     speed from the first token, e.g. for benchmarks) */
} bitnet_repack;

typedef struct bitnet_model_params {
    bitnet_pretokenizer pretokenizer;
    bool prefetch;      /* ask the OS to read the whole file ahead (default true) */
    uint32_t head_type; /* 0: the output head as stored; 8 (Q8_0) or 14 (Q6_K): requantise it at
                           load, reading about 53% or 41% of an F16 head's bytes per generated
                           token */
    bitnet_repack repack; /* ternary weights (I2_S; TQ1_0 and TQ2_0 with AVX-512) copied into the
                             row-interleaved layout the x86 kernels read faster (no effect where
                             bitnet_system_info says the kernels do not repack); resident
                             memory stays about the file's size, as the file's pages of the copied
                             tensors are released.  Default BITNET_REPACK_LAZY. */
} bitnet_model_params;

BITNET_API void bitnet_model_params_default(bitnet_model_params *p);
/* Loads a GGUF model (or, when built with Hugging Face support, a model directory, converted in
 * memory exactly as bitnet_convert does with its defaults: I2_S weights, F16 embeddings).
 * params may be NULL for defaults. */
BITNET_API bitnet_status bitnet_model_load(const char *path, const bitnet_model_params *params, bitnet_model **out);
BITNET_API void bitnet_model_free(bitnet_model *m);

typedef struct bitnet_model_info {
    char arch[32];        /* "bitnet-b1.58", "bitnet", "llama" */
    char name[64];        /* general.name */
    int n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, n_ff, head_dim;
    float rope_theta, norm_eps;
    uint32_t weight_type; /* ggml type of the layers' linear weights */
    uint32_t embd_type;   /* ggml type of token_embd */
    uint32_t head_type;   /* ggml type of the output head (== embd_type when tied) */
    bool tied_embeddings;
    uint64_t n_params;    /* parameters in all tensors */
    uint64_t file_bytes;  /* size of the model file */
    uint64_t weight_bytes;/* bytes of tensor data */
    uint64_t bytes_per_token; /* weight bytes read to generate one token: every layer and the head
                                 (as loaded, e.g. after --head q8_0), not the embedding table */
    uint64_t repacked_bytes;  /* weight bytes copied (or being copied) into a faster layout (0: none) */
} bitnet_model_info;

BITNET_API bitnet_status bitnet_model_info_get(const bitnet_model *m, bitnet_model_info *info);
/* The model's tokenizer (owned by the model). */
BITNET_API const bitnet_tokenizer *bitnet_model_tokenizer(const bitnet_model *m);

/* ============================================================================================
 * Tokenizer
 * ============================================================================================ */

/* Loads a standalone tokenizer from a GGUF file (model or vocab-only), a Hugging Face
 * tokenizer.json, or a tiktoken-format file of "base64 rank" lines (BitNet's tokenizer.model). */
BITNET_API bitnet_status bitnet_tokenizer_load(const char *path, bitnet_pretokenizer pretok, bitnet_tokenizer **out);
BITNET_API void bitnet_tokenizer_free(bitnet_tokenizer *t);

enum {
    BITNET_TOKENIZE_ADD_BOS = 1 << 0,      /* prepend BOS if the vocabulary wants it (add_bos_token) */
    BITNET_TOKENIZE_NO_BOS = 1 << 1,       /* never prepend BOS */
    BITNET_TOKENIZE_PARSE_SPECIAL = 1 << 2 /* recognise special-token text like "<|eot_id|>" */
};

/* Tokenizes text[0..len).  Writes up to cap ids; *n_tokens gets the full count.  Returns
 * BITNET_ERR_RANGE (with *n_tokens set) when cap is too small, so callers can retry. */
BITNET_API bitnet_status bitnet_tokenize(const bitnet_tokenizer *t, const char *text, size_t len, int flags,
                                         bitnet_token *tokens, size_t cap, size_t *n_tokens);
/* The text of one token: raw bytes (may be part of a UTF-8 sequence).  special: render control
 * tokens such as <|eot_id|>; otherwise they give "". */
BITNET_API bitnet_status bitnet_token_bytes(const bitnet_tokenizer *t, bitnet_token id, bool special,
                                            const char **bytes, size_t *len);
/* Detokenizes ids into valid UTF-8 (invalid bytes become U+FFFD).  Returns a malloc'd string;
 * free it with bitnet_free_string.  NULL on failure. */
BITNET_API char *bitnet_detokenize(const bitnet_tokenizer *t, const bitnet_token *ids, size_t n, bool special);
BITNET_API int32_t bitnet_tokenizer_n_vocab(const bitnet_tokenizer *t);
BITNET_API bitnet_token bitnet_tokenizer_bos(const bitnet_tokenizer *t); /* -1 if none */
BITNET_API bitnet_token bitnet_tokenizer_eos(const bitnet_tokenizer *t);
BITNET_API bitnet_token bitnet_tokenizer_eot(const bitnet_tokenizer *t);
BITNET_API bool bitnet_tokenizer_is_eog(const bitnet_tokenizer *t, bitnet_token id);

/* Streaming detokenizer: emits only complete UTF-8; safe for printing token by token. */
typedef struct bitnet_detokenizer bitnet_detokenizer;
BITNET_API bitnet_status bitnet_detokenizer_init(const bitnet_tokenizer *t, bool special, bitnet_detokenizer **out);
BITNET_API void bitnet_detokenizer_free(bitnet_detokenizer *d);
/* Appends the text for id (possibly nothing yet) to out[0..cap); *len gets the bytes written.
 * A cap of 256 always suffices. */
BITNET_API bitnet_status bitnet_detokenizer_push(bitnet_detokenizer *d, bitnet_token id, char *out, size_t cap,
                                                 size_t *len);
BITNET_API bitnet_status bitnet_detokenizer_flush(bitnet_detokenizer *d, char *out, size_t cap, size_t *len);

/* ============================================================================================
 * Chat formats
 * ============================================================================================ */

typedef struct bitnet_chat_message {
    const char *role;    /* "system", "user", "assistant" */
    const char *content;
} bitnet_chat_message;

/* Formats messages as the model expects.  template_name: NULL = recognise the model's
 * tokenizer.chat_template; or "bitnet", "llama3", "chatml".  add_assistant: end with the prompt
 * for the assistant's reply.  *out is malloc'd (bitnet_free_string). */
BITNET_API bitnet_status bitnet_chat_format(const bitnet_model *m, const char *template_name,
                                            const bitnet_chat_message *msgs, size_t n_msgs, bool add_assistant,
                                            char **out);
/* The name of the format bitnet_chat_format would pick for this model with template_name NULL. */
BITNET_API const char *bitnet_chat_template_name(const bitnet_model *m);

/* ============================================================================================
 * Contexts: a KV cache and scratch space for evaluating tokens with a model
 * ============================================================================================ */

typedef struct bitnet_context bitnet_context;

typedef enum bitnet_kv_type { BITNET_KV_F16 = 0, BITNET_KV_F32 = 1 } bitnet_kv_type;

/* How bitnet_eval_multi (and bitnet_eval_multi_sample, bitnet_eval_batch with one token per
 * context) shares the work of several sequences among the first context's threads.  The logits
 * are the same bits either way; only the speed differs. */
typedef enum bitnet_batch_split {
    /* SEQUENCES when every thread gets a sequence and the model's matrices fit in the CPU's
     * last-level cache (small models), else ROWS.  The default. */
    BITNET_BATCH_SPLIT_AUTO = 0,
    /* One forward pass for all sequences; every matrix product's rows are shared among the threads,
     * so each weight is read once for all sequences: best when reading the weights from memory is
     * what a pass waits for (models larger than the cache). */
    BITNET_BATCH_SPLIT_ROWS = 1,
    /* The sequences are cut into one group per thread, and each thread evaluates its group alone:
     * no waiting between the many short steps of a pass, but each thread reads all the weights. */
    BITNET_BATCH_SPLIT_SEQUENCES = 2
} bitnet_batch_split;

typedef struct bitnet_context_params {
    int n_ctx;      /* tokens the KV cache holds; 0 = the model's context, capped at 4096 */
    int n_threads;  /* 0 = the number of physical cores */
    int n_batch;    /* most tokens evaluated per forward pass (default 512) */
    bitnet_kv_type kv_type;
    bool match_reference; /* false (default): logits do not depend on how tokens are split into
                             passes, so a cached prefix gives the same results as re-evaluating it.
                             true: reproduce bitnet.cpp bit for bit, which rounds attention weights
                             to f16 only when it evaluates one token per pass. */
    bitnet_batch_split batch_split; /* bitnet_eval_multi with this context first (default AUTO) */
} bitnet_context_params;

BITNET_API void bitnet_context_params_default(bitnet_context_params *p);
BITNET_API bitnet_status bitnet_context_init(bitnet_model *m, const bitnet_context_params *params,
                                             bitnet_context **out);
BITNET_API void bitnet_context_free(bitnet_context *c);
BITNET_API int bitnet_context_n_ctx(const bitnet_context *c);
/* Tokens currently in the KV cache. */
BITNET_API int bitnet_context_pos(const bitnet_context *c);
/* Forgets everything after the first n tokens (n <= pos), e.g. to reuse a shared prefix. */
BITNET_API bitnet_status bitnet_context_truncate(bitnet_context *c, int n);

/* Evaluates n tokens at the current position (split into passes of n_batch).  With all_logits,
 * logits for every token are kept; otherwise only the last token's.  BITNET_ERR_RANGE if the
 * context would overflow (nothing is evaluated then). */
BITNET_API bitnet_status bitnet_eval(bitnet_context *c, const bitnet_token *tokens, int n, bool all_logits);
/* Continuous batching for servers: evaluates one token for each of n contexts (all made from
 * the same model, each with its own KV cache and position) together: in one forward pass that
 * reads the weights once for all of them, or (a small model) one group of contexts per thread, as
 * contexts[0]'s batch_split says, on contexts[0]'s threads.  Afterwards
 * bitnet_get_logits(contexts[i], -1) is token i's, the same bits as evaluating it alone.  Each
 * context must have room for one more token (BITNET_ERR_RANGE otherwise, evaluating none). */
BITNET_API bitnet_status bitnet_eval_multi(bitnet_context *const *contexts, const bitnet_token *tokens, int n);
/* Logits of token i of the last bitnet_eval (i = -1: the last token).  n_vocab floats, owned by
 * the context, valid until the next eval.  NULL if not kept. */
BITNET_API const float *bitnet_get_logits(const bitnet_context *c, int i);

/* ============================================================================================
 * Sampling
 * ============================================================================================ */

typedef struct bitnet_sampler bitnet_sampler;

typedef struct bitnet_sampler_params {
    float temperature;       /* <= 0: greedy (default 0.8) */
    int top_k;               /* 0: off (default 40) */
    float top_p;             /* 1: off (default 0.95) */
    float min_p;             /* 0: off (default 0.05) */
    float repeat_penalty;    /* 1: off (default 1.0) */
    int repeat_last_n;       /* tokens the penalties look back over (default 64) */
    float presence_penalty;  /* 0: off */
    float frequency_penalty; /* 0: off */
    uint64_t seed;           /* same seed, same output */
} bitnet_sampler_params;

BITNET_API void bitnet_sampler_params_default(bitnet_sampler_params *p);
/* Validates the parameters (BITNET_ERR_INVALID_ARG with a message naming the bad one). */
BITNET_API bitnet_status bitnet_sampler_init(const bitnet_sampler_params *p, bitnet_sampler **out);
BITNET_API void bitnet_sampler_free(bitnet_sampler *s);
/* Picks a token from n_vocab logits (not modified). */
BITNET_API bitnet_token bitnet_sampler_sample(bitnet_sampler *s, const float *logits, int n_vocab);
/* Records a token in the penalty history (prompt tokens and generated ones). */
BITNET_API void bitnet_sampler_accept(bitnet_sampler *s, bitnet_token t);
BITNET_API void bitnet_sampler_reset(bitnet_sampler *s);
/* Continuous batching with the sampling done on the engine's threads: bitnet_eval_multi, then
 * next[i] = bitnet_sampler_sample(samplers[i], contexts[i]'s logits) for every i, each on the
 * thread that computed those logits where it can: they are still in its cache, and the samplers run
 * side by side instead of one after another on the caller (the tokens are the same as sampling
 * after bitnet_eval_multi).  The samplers must be distinct.  A NULL sampler, or one that fails,
 * gives next[i] = -1.  The tokens are not accepted into the samplers' histories
 * (bitnet_sampler_accept), and the logits stay readable as after bitnet_eval_multi. */
BITNET_API bitnet_status bitnet_eval_multi_sample(bitnet_context *const *contexts, const bitnet_token *tokens, int n,
                                                  bitnet_sampler *const *samplers, bitnet_token *next);
/* The general form of both: n_tokens[i] tokens for contexts[i] (n_tokens NULL: one each; tokens
 * holds them context after context, each appended at that context's position), evaluated
 * together.  A server puts the next piece of a new prompt in the same batch as the other slots'
 * next tokens, so a prompt does not hold up everyone's generation for a pass of its own.
 * Afterwards each context holds the logits of its last token (bitnet_get_logits(c, -1)), and with
 * samplers (NULL: none; then next may be NULL) next[i] is sampled from them as above.  A batch
 * with several tokens for some context is one shared pass (batch_split is for batches of one
 * token each).  BITNET_ERR_RANGE, evaluating nothing, if a context lacks room. */
BITNET_API bitnet_status bitnet_eval_batch(bitnet_context *const *contexts, const bitnet_token *tokens,
                                           const int *n_tokens, int n, bitnet_sampler *const *samplers,
                                           bitnet_token *next);

/* ============================================================================================
 * Generation
 * ============================================================================================ */

typedef struct bitnet_generate_params {
    int max_tokens;            /* default 128 */
    bitnet_sampler_params sampling;
    const char *const *stop;   /* strings that end generation (not included in the output) */
    size_t n_stop;
    bool add_bos;              /* default true (when the vocabulary wants it) */
    bool parse_special;        /* recognise special-token text in the prompt (default false) */
    int n_ctx, n_threads;      /* for bitnet_generate's own context (0 = defaults) */
} bitnet_generate_params;

typedef enum bitnet_finish_reason {
    BITNET_FINISH_STOP = 0,   /* end-of-generation token or stop string */
    BITNET_FINISH_LENGTH = 1, /* max_tokens reached or the context is full */
    BITNET_FINISH_CANCELLED = 2
} bitnet_finish_reason;

typedef struct bitnet_generate_stats {
    int n_prompt, n_generated;
    double prompt_seconds, gen_seconds;
    bitnet_finish_reason finish;
} bitnet_generate_stats;

/* Called with each new piece of text (complete UTF-8, possibly empty for a token that completes
 * nothing yet); return false to stop. */
typedef bool (*bitnet_token_callback)(void *user, bitnet_token id, const char *text, size_t len);

BITNET_API void bitnet_generate_params_default(bitnet_generate_params *p);
/* Appends the prompt to the context's KV cache, then samples up to max_tokens, calling cb for
 * each.  Text that could still become a stop string is held back until it cannot. */
BITNET_API bitnet_status bitnet_generate_stream(bitnet_context *c, bitnet_sampler *s, const char *prompt,
                                                const bitnet_generate_params *p, bitnet_token_callback cb,
                                                void *user, bitnet_generate_stats *stats);
/* One call: a fresh context, sampler and generation.  Returns the generated text (malloc'd;
 * bitnet_free_string), or NULL with bitnet_last_error() set.  params may be NULL. */
BITNET_API char *bitnet_generate(bitnet_model *m, const char *prompt, const bitnet_generate_params *params);
BITNET_API void bitnet_free_string(char *s);

/* ============================================================================================
 * Synthetic models (tests and benchmarks)
 * ============================================================================================ */

typedef struct bitnet_gen_model_params {
    const char *arch;     /* "bitnet-b1.58" (default), "bitnet" (1bitLLM: multi-head, n_head_kv must equal
                             n_head) or "llama" (Llama3-8B-1.58 style: untied output.weight) */
    int n_layer, n_embd, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    uint32_t weight_type; /* ggml type id: 36 I2_S (default), 34 TQ1_0, 35 TQ2_0 */
    uint32_t embd_type;   /* 1 F16 (default), 8 Q8_0, 0 F32; also the type of llama's output.weight */
    uint64_t seed;
    int scale_tensors;    /* "bitnet" with TQ1_0/TQ2_0 only: weights stored as plain {-1,0,+1} and the
                             scale in per-tensor F32 blk.N.<name>.scale tensors (older converters) */
} bitnet_gen_model_params;

/* Defaults: the "tiny" shape (2 layers x 256, 4/2 heads, FFN 768, vocab 512), I2_S, F16 embeddings. */
BITNET_API void bitnet_gen_model_params_default(bitnet_gen_model_params *p);
/* Sets the shape from "tiny", "2b4t" (the real BitNet b1.58 2B-4T shapes) or "LAYERSxHIDDEN". */
BITNET_API bitnet_status bitnet_gen_model_params_shape(bitnet_gen_model_params *p, const char *shape);
/* Writes a model with random ternary weights and a synthetic byte-level tokenizer, in the key
 * order, tensor names and layout of Microsoft's official GGUF file (atomically). */
BITNET_API bitnet_status bitnet_gen_model(const bitnet_gen_model_params *p, const char *path);

/* ============================================================================================
 * Conversion: Hugging Face model folders and GGUF files -> GGUF (`bitnet convert`)
 * ============================================================================================ */

/* For bitnet_convert_params.embed_type: F16 for Hugging Face input, the input's type for GGUF. */
#define BITNET_TYPE_AUTO UINT32_MAX

/* Called after each tensor with the weights converted so far and in all; return false to cancel
 * (the conversion then fails with BITNET_ERR_CANCELLED and leaves no output file). */
typedef bool (*bitnet_progress_callback)(void *user, uint64_t done, uint64_t total);

typedef struct bitnet_convert_params {
    uint32_t weight_type; /* ggml type of the linear weights: 36 I2_S (default), 34 TQ1_0, 35 TQ2_0 */
    uint32_t embed_type;  /* token_embd (and a separate output head): 1 F16, 30 BF16, 8 Q8_0, 14 Q6_K,
                             0 F32, or BITNET_TYPE_AUTO (default) */
    bitnet_progress_callback progress; /* may be NULL */
    void *user;
    int n_threads; /* threads converting each tensor: 0 (default) = the number of physical cores,
                      else 1..1024 (BITNET_ERR_INVALID_ARG outside); the output is byte-identical
                      for every count */
} bitnet_convert_params;

BITNET_API void bitnet_convert_params_default(bitnet_convert_params *p);
/* Converts `input` to a GGUF file at `output`, written atomically (nothing is left behind on
 * failure).  input is either
 *   - a Hugging Face folder: config.json (BitNetForCausalLM -> arch "bitnet-b1.58",
 *     BitnetForCausalLM -> "bitnet", LlamaForCausalLM with a BitNet quantization_config ->
 *     "llama"), tokenizer.json (byte-level BPE, or SentencePiece-style BPE with byte fallback),
 *     optional tokenizer_config.json and
 *     generation_config.json, and model.safetensors or a sharded set with
 *     model.safetensors.index.json.  Float master weights are ternarised with absmean; packed
 *     weights (four per byte with weight_scale, as Microsoft's 2B-4T repository) are unpacked.
 *     With I2_S the keys, tensor names, types and layout are those of Microsoft's official file;
 *   - a GGUF file: ternary weights are re-encoded as weight_type (same ternary values), the
 *     embeddings as embed_type, everything else copied; general.file_type follows.
 * params may be NULL for defaults. */
BITNET_API bitnet_status bitnet_convert(const char *input, const char *output, const bitnet_convert_params *params);

#ifdef __cplusplus
}
#endif

#endif /* BITNET_H */
