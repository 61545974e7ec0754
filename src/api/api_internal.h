/* What the public handles hold (private to src/api). */
#ifndef BN_API_INTERNAL_H
#define BN_API_INTERNAL_H

#include "bitnet.h"
#include "engine/engine.h"
#include "model/model.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

struct bitnet_tokenizer {
    bn_tokenizer *tok;
    int owned; /* 1: bitnet_tokenizer_free frees tok; 0: it belongs to a model */
};

struct bitnet_model {
    bn_model *m;
    bitnet_tokenizer tokenizer; /* owned = 0; freed with the model */
    char *chat_template;        /* tokenizer.chat_template or NULL */
};

struct bitnet_context {
    bitnet_model *model;
    bn_ctx *ctx;
};

struct bitnet_sampler {
    bn_sampler *s;
};

#endif
