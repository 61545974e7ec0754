/* Tokenizers from Hugging Face and OpenAI formats:
 *   - tokenizer.json (byte-level BPE models: Llama-3, GPT-2 style), needs BITNET_WITH_HF (cJSON);
 *     a tokenizer_config.json beside it supplies bos/eos and add_bos_token;
 *   - tiktoken files ("base64(bytes) rank" per line, e.g. BitNet's tokenizer.model), always built.
 * Both hand the vocabulary to bn_tokenizer_build.  pretok overrides the splitting the file implies
 * (BN_PRETOK_AUTO: use the file's). */
#ifndef BN_HF_HF_TOKENIZER_H
#define BN_HF_HF_TOKENIZER_H

#include <stddef.h>

#include "common/status.h"
#include "tokenizer/tokenizer.h"

/* BN_ERR_UNSUPPORTED when the library was built without BITNET_WITH_HF. */
bn_status bn_hf_tokenizer_load(const char *path, bn_pretok pretok, bn_tokenizer **out);
/* json[0..len): tokenizer.json; config (may be NULL): tokenizer_config.json text. */
bn_status bn_hf_tokenizer_load_memory(const char *json, size_t len, const char *config, size_t config_len,
                                      bn_pretok pretok, bn_tokenizer **out);

/* A tiktoken file.  Exactly 128000 entries is Llama-3's vocabulary: its 256 special tokens are
 * appended as ids 128000-128255 (<|begin_of_text|>, <|end_of_text|>, ..., <|eot_id|> = 128009),
 * as BitNet's and Meta's code do, with BOS 128000 added. */
bn_status bn_tiktoken_load(const char *path, bn_pretok pretok, bn_tokenizer **out);
bn_status bn_tiktoken_load_memory(const char *data, size_t len, bn_pretok pretok, bn_tokenizer **out);

/* Name of Llama-3's special token id (128000 <= id < 128256), written into buf (>= 40 bytes). */
void bn_llama3_special_name(int32_t id, char *buf, size_t cap);

#endif
