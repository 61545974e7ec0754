/* Public API: text generation with streaming, stop strings and the one-call convenience form. */
#include <string.h>
#include <time.h>

#include "api/api_internal.h"
#include "common/error.h"
#include "common/mem.h"

void bitnet_generate_params_default(bitnet_generate_params *p)
{
    memset(p, 0, sizeof *p);
    p->max_tokens = 128;
    bitnet_sampler_params_default(&p->sampling);
    p->add_bos = true;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Generated text not yet handed to the callback: it may still turn out to begin a stop string. */
typedef struct {
    char *buf;
    size_t len, cap, emitted;
} textbuf;

static bool textbuf_append(textbuf *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->len + n + 1) * 2;
        char *nb = bn_realloc(t->buf, cap);
        if (!nb) return false;
        t->buf = nb;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
    return true;
}

/* Finds the earliest stop string in the text not yet emitted (or straddling it); returns its
 * offset or -1.  *hold gets how many trailing bytes could still begin a stop string. */
static long find_stop(const textbuf *t, const char *const *stop, size_t n_stop, size_t *hold)
{
    long best = -1;
    *hold = 0;
    for (size_t i = 0; i < n_stop; i++) {
        size_t sl = strlen(stop[i]);
        if (sl == 0) continue;
        size_t from = t->emitted >= sl ? t->emitted - sl + 1 : 0;
        for (size_t j = from; j + sl <= t->len; j++)
            if (!memcmp(t->buf + j, stop[i], sl)) {
                if (best < 0 || (long)j < best) best = (long)j;
                break;
            }
        for (size_t k = sl - 1; k > 0; k--) /* longest suffix that is a proper prefix of the stop */
            if (k <= t->len && !memcmp(t->buf + t->len - k, stop[i], k)) {
                if (k > *hold) *hold = k;
                break;
            }
    }
    return best;
}

bitnet_status bitnet_generate_stream(bitnet_context *c, bitnet_sampler *s, const char *prompt,
                                     const bitnet_generate_params *p, bitnet_token_callback cb, void *user,
                                     bitnet_generate_stats *stats)
{
    if (!c || !s || !prompt) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "bitnet_generate_stream: NULL argument");
    bitnet_generate_params dp;
    if (!p) {
        bitnet_generate_params_default(&dp);
        p = &dp;
    }
    if (p->max_tokens < 0) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "max_tokens must be >= 0");
    if (p->n_stop && !p->stop) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "n_stop > 0 but stop is NULL");
    bitnet_generate_stats st_local;
    if (!stats) stats = &st_local;
    memset(stats, 0, sizeof *stats);

    const bn_tokenizer *tok = c->model->tokenizer.tok;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    bool add_bos = p->add_bos && bn_tokenizer_add_bos(tok) && bn_ctx_pos(c->ctx) == 0;
    bn_status st = bn_tokenizer_encode(tok, prompt, strlen(prompt), add_bos, p->parse_special, &ids, &n_ids);
    if (st != BN_OK) return (bitnet_status)st;
    if (n_ids == 0) {
        bn_free(ids);
        return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "the prompt is empty (and no BOS token is added)");
    }
    if ((long)n_ids > (long)(bn_ctx_n_ctx(c->ctx) - bn_ctx_pos(c->ctx))) {
        bn_free(ids);
        return (bitnet_status)bn_error(BN_ERR_RANGE, "the prompt (%zu tokens) does not fit in the context (%d of %d free)",
                                       n_ids, bn_ctx_n_ctx(c->ctx) - bn_ctx_pos(c->ctx), bn_ctx_n_ctx(c->ctx));
    }
    double t0 = now_seconds();
    st = bn_ctx_eval(c->ctx, ids, (int)n_ids, false);
    for (size_t i = 0; i < n_ids && st == BN_OK; i++) bn_sampler_accept(s->s, ids[i]);
    bn_free(ids);
    if (st != BN_OK) return (bitnet_status)st;
    stats->n_prompt = (int)n_ids;
    stats->prompt_seconds = now_seconds() - t0;

    t0 = now_seconds();
    bn_detok dt;
    bn_detok_init(&dt, tok, false);
    textbuf tb = {0};
    char piece[512];
    size_t plen;
    stats->finish = BITNET_FINISH_LENGTH;
    int32_t last_id = -1;
    for (int i = 0; i < p->max_tokens; i++) {
        const float *logits = bn_ctx_logits(c->ctx, -1);
        int32_t id = bn_sampler_sample(s->s, logits, c->model->m->hp.n_vocab);
        if (id < 0) {
            st = bn_error(BN_ERR_NOMEM, "sampling failed");
            break;
        }
        bn_sampler_accept(s->s, id);
        last_id = id;
        stats->n_generated++;
        if (bn_tokenizer_is_eog(tok, id)) {
            stats->finish = BITNET_FINISH_STOP;
            break;
        }
        if ((st = bn_detok_push(&dt, id, piece, sizeof piece, &plen)) != BN_OK) break;
        if (!textbuf_append(&tb, piece, plen)) {
            st = BN_ERR_NOMEM;
            break;
        }
        size_t hold;
        long at = find_stop(&tb, p->stop, p->n_stop, &hold);
        size_t upto = at >= 0 ? (size_t)at : tb.len - hold;
        if (upto > tb.emitted || at >= 0) {
            bool go_on = !cb || cb(user, id, tb.buf + tb.emitted, upto - tb.emitted);
            tb.emitted = upto;
            if (!go_on) {
                stats->finish = BITNET_FINISH_CANCELLED;
                break;
            }
        } else if (cb && !cb(user, id, "", 0)) {
            stats->finish = BITNET_FINISH_CANCELLED;
            break;
        }
        if (at >= 0) {
            stats->finish = BITNET_FINISH_STOP;
            break;
        }
        /* Every emitted token is evaluated (even the last), so the cache always matches the text
         * handed out and a conversation can continue from it. */
        if (bn_ctx_pos(c->ctx) >= bn_ctx_n_ctx(c->ctx)) break; /* context full: finish "length" */
        if ((st = bn_ctx_eval(c->ctx, &id, 1, false)) != BN_OK) break;
        if (i + 1 == p->max_tokens) break;
    }
    if (st == BN_OK && stats->finish != BITNET_FINISH_STOP && stats->finish != BITNET_FINISH_CANCELLED) {
        /* release what was held back for a stop string that never came, and any partial UTF-8 */
        if (bn_detok_flush(&dt, piece, sizeof piece, &plen) == BN_OK && textbuf_append(&tb, piece, plen) &&
            tb.len > tb.emitted && cb)
            cb(user, last_id, tb.buf + tb.emitted, tb.len - tb.emitted);
    } else if (st == BN_OK && stats->finish == BITNET_FINISH_STOP && tb.len > tb.emitted) {
        /* stopped by EOS: held text was not a stop string after all */
        long at = find_stop(&tb, p->stop, p->n_stop, &(size_t){0});
        if (at < 0 && cb) cb(user, last_id, tb.buf + tb.emitted, tb.len - tb.emitted);
    }
    bn_free(tb.buf);
    stats->gen_seconds = now_seconds() - t0;
    return (bitnet_status)st;
}

typedef struct {
    textbuf out;
    bool failed;
} collect_state;

static bool collect(void *user, bitnet_token id, const char *text, size_t len)
{
    (void)id;
    collect_state *cs = user;
    if (!textbuf_append(&cs->out, text, len)) {
        cs->failed = true;
        return false;
    }
    return true;
}

char *bitnet_generate(bitnet_model *m, const char *prompt, const bitnet_generate_params *params)
{
    if (!m || !prompt) {
        bn_error(BN_ERR_INVALID_ARG, "bitnet_generate: NULL argument");
        return NULL;
    }
    bitnet_generate_params dp;
    if (!params) {
        bitnet_generate_params_default(&dp);
        params = &dp;
    }
    bitnet_context_params cp;
    bitnet_context_params_default(&cp);
    cp.n_ctx = params->n_ctx;
    cp.n_threads = params->n_threads;
    bitnet_context *c = NULL;
    bitnet_sampler *s = NULL;
    collect_state cs = {{0}, false};
    char *result = NULL;
    if (bitnet_context_init(m, &cp, &c) == BITNET_OK && bitnet_sampler_init(&params->sampling, &s) == BITNET_OK &&
        bitnet_generate_stream(c, s, prompt, params, collect, &cs, NULL) == BITNET_OK && !cs.failed) {
        result = cs.out.buf ? cs.out.buf : bn_strdup("");
        cs.out.buf = NULL;
    }
    bn_free(cs.out.buf);
    bitnet_sampler_free(s);
    bitnet_context_free(c);
    return result;
}
