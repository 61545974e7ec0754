/* Builds a vocab-only GGUF with the Llama-3 vocabulary from tokenizer.json, keyed as Microsoft's
 * official BitNet 2B-4T file is (tokenizer.ggml.model "gpt2", tokens, scores, token_type, merges,
 * bos/eos/padding ids, add_bos_token, and no tokenizer.ggml.pre).  Shared by the tests and the
 * benchmark (there is no Llama-3 GGUF among the test files). */
#ifndef BN_TESTS_LLAMA3_GGUF_H
#define BN_TESTS_LLAMA3_GGUF_H

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/status.h"
#include "gguf/gguf.h"

static inline bn_status llama3_gguf_write(const char *json_text, size_t json_len, const char *path)
{
    cJSON *root = cJSON_ParseWithLength(json_text, json_len);
    if (!root) return BN_ERR_FORMAT;
    cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    int n = cJSON_GetArraySize(vocab) + cJSON_GetArraySize(added);
    int nm = cJSON_GetArraySize(merges);
    const char **tokens = calloc((size_t)n, sizeof *tokens);
    float *scores = calloc((size_t)n, sizeof *scores);
    int32_t *types = calloc((size_t)n, sizeof *types);
    const char **m = calloc((size_t)nm, sizeof *m);
    bn_status st = BN_ERR_FORMAT;
    bn_gguf_writer *w = NULL;
    if (!tokens || !scores || !types || !m) goto done;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab)
    {
        int id = (int)it->valuedouble;
        if (id < 0 || id >= n) goto done;
        tokens[id] = it->string;
        types[id] = 1; /* normal */
    }
    cJSON_ArrayForEach(it, added)
    {
        int id = (int)cJSON_GetObjectItemCaseSensitive(it, "id")->valuedouble;
        if (id < 0 || id >= n) goto done;
        tokens[id] = cJSON_GetObjectItemCaseSensitive(it, "content")->valuestring;
        types[id] = 3; /* control, as the BitNet converter marks added tokens */
        scores[id] = -1000.0f;
    }
    for (int i = 0; i < n; i++)
        if (!tokens[i]) goto done;
    int i = 0;
    cJSON_ArrayForEach(it, merges) m[i++] = it->valuestring;
    if ((st = bn_gguf_writer_init(&w)) != BN_OK) goto done;
    if ((st = bn_gguf_writer_set_str(w, "general.architecture", "bitnet-b1.58")) != BN_OK ||
        (st = bn_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2")) != BN_OK ||
        (st = bn_gguf_writer_set_array(w, "tokenizer.ggml.tokens", BN_GGUF_STRING, tokens, (uint64_t)n)) != BN_OK ||
        (st = bn_gguf_writer_set_array(w, "tokenizer.ggml.scores", BN_GGUF_F32, scores, (uint64_t)n)) != BN_OK ||
        (st = bn_gguf_writer_set_array(w, "tokenizer.ggml.token_type", BN_GGUF_I32, types, (uint64_t)n)) != BN_OK ||
        (st = bn_gguf_writer_set_array(w, "tokenizer.ggml.merges", BN_GGUF_STRING, m, (uint64_t)nm)) != BN_OK ||
        (st = bn_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 128000)) != BN_OK ||
        (st = bn_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 128001)) != BN_OK ||
        (st = bn_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 128001)) != BN_OK ||
        (st = bn_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true)) != BN_OK)
        goto done;
    st = bn_gguf_writer_write(w, path);
done:
    bn_gguf_writer_free(w);
    free(tokens);
    free(scores);
    free(types);
    free(m);
    cJSON_Delete(root);
    return st;
}

#endif
