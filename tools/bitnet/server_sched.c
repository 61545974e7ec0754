/* Server scheduler: a fixed set of slots, each with its own context (KV cache) on the shared
 * model, and one thread that drives them all.  Every turn of its loop it
 *   1. drops cancelled tasks and gives queued tasks to free slots (the slot whose cache shares the
 *      longest prefix with the prompt, so a conversation's next turn reuses its cache),
 *   2. takes the next token of every ready slot (sampled by the last batch), and
 *   3. evaluates all those tokens, with the next piece of each new prompt, in one
 *      bitnet_eval_batch call (continuous batching), which also samples each slot's following
 *      token on the engine's threads (for a prompt, once its last piece is in).
 * Only this thread touches the contexts, samplers and detokenizers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

/* Prompt tokens per slot per turn (srv_sched_params.prompt_piece): a long prompt goes in pieces,
 * so that the other slots' tokens ride along in every pass instead of waiting for the whole prompt
 * (a piece shares its passes with them; the results do not depend on how tokens are batched). */
#define PROMPT_PIECE_DEFAULT 512

typedef struct {
    bitnet_context *ctx;
    bitnet_token *cache; /* tokens in the KV cache, in order */
    int n_cache;
    srv_task *task; /* NULL: free */
    bool started;   /* task set up (cache truncated, detokenizer made) */
    bool ready;     /* the last batch sampled the slot's next token: `next` (-1: sampling failed) */
    bitnet_token next;
    bitnet_detokenizer *detok;
    char *text; /* generated text; [emitted, len) not yet handed out */
    size_t len, cap, emitted;
    srv_tokinfo *toks; /* tokens sampled since the last emit */
    int n_toks, cap_toks;
    double t_last;
} slot;

struct srv_sched {
    bitnet_model *model;
    const bitnet_tokenizer *tok;
    int n_vocab, n_ctx, max_queue;
    bool cache_prompt;
    srv_metrics *metrics;
    slot *slots;
    int n_slots;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_task **queue; /* ring buffer */
    int q_head, q_len, q_cap;
    int n_busy;
    bool stop, cancel_all;
    bool thread_started;
    pthread_t thread;
    srv_task **dropped;
    bitnet_context **batch_ctx;
    int piece;               /* prompt tokens per slot per turn */
    bitnet_token *batch_tok; /* [n_slots * piece]: each entry's tokens, one after another */
    int *batch_cnt;          /* tokens of each entry: a prompt piece, or 1 */
    bitnet_sampler **batch_samp;
    bitnet_token *batch_next;
    int *batch_slot;
};

/* ---- text held back for stop strings ---------------------------------------------------------- */

static bool text_append(slot *sl, const char *s, size_t n)
{
    if (sl->len + n + 1 > sl->cap) {
        size_t cap = (sl->len + n + 1) * 2;
        char *nb = realloc(sl->text, cap);
        if (!nb) return false;
        sl->text = nb;
        sl->cap = cap;
    }
    memcpy(sl->text + sl->len, s, n);
    sl->len += n;
    sl->text[sl->len] = '\0';
    return true;
}

/* Offset of the first stop string in the text not yet emitted, or -1.  *hold: the length of the
 * longest tail that could still grow into a stop string. */
static long stop_find(const slot *sl, const srv_task *t, size_t *hold)
{
    long best = -1;
    *hold = 0;
    for (size_t i = 0; i < t->n_stop; i++) {
        const char *stop = t->stop[i];
        size_t sl_len = strlen(stop);
        if (sl_len == 0) continue;
        for (size_t j = sl->emitted; j + sl_len <= sl->len; j++)
            if (!memcmp(sl->text + j, stop, sl_len)) {
                if (best < 0 || (long)j < best) best = (long)j;
                break;
            }
        size_t avail = sl->len - sl->emitted;
        for (size_t k = sl_len - 1 < avail ? sl_len - 1 : avail; k > 0; k--)
            if (!memcmp(sl->text + sl->len - k, stop, k)) {
                if (k > *hold) *hold = k;
                break;
            }
    }
    return best;
}

static void slot_emit(slot *sl, size_t upto)
{
    srv_task *t = sl->task;
    if (upto <= sl->emitted && sl->n_toks == 0) return;
    size_t from = sl->emitted;
    if (upto < from) upto = from;
    sl->emitted = upto;
    t->emit(t, sl->text + from, upto - from, sl->toks, sl->n_toks);
    sl->n_toks = 0;
}

/* ---- slot life cycle -------------------------------------------------------------------------- */

static void slot_release(srv_sched *s, slot *sl, srv_finish why, const char *error)
{
    srv_task *t = sl->task;
    srv_metrics_tokens(s->metrics, t->n_prompt, t->n_generated);
    bitnet_detokenizer_free(sl->detok);
    sl->detok = NULL;
    bitnet_sampler_free(t->sampler);
    t->sampler = NULL;
    free(t->prompt);
    t->prompt = NULL;
    sl->task = NULL;
    sl->started = sl->ready = false;
    sl->len = sl->emitted = 0;
    sl->n_toks = 0;
    pthread_mutex_lock(&s->mu);
    s->n_busy--;
    pthread_mutex_unlock(&s->mu);
    t->finish(t, why, error);
}

/* Ends generation normally: what was held back for a stop string that never came (and any
 * partial UTF-8 in the detokenizer) is real output. */
static void slot_finish_text(srv_sched *s, slot *sl, srv_finish why)
{
    char piece[256];
    size_t n = 0;
    if (bitnet_detokenizer_flush(sl->detok, piece, sizeof piece, &n) == BITNET_OK && n) text_append(sl, piece, n);
    size_t hold;
    long at = stop_find(sl, sl->task, &hold);
    if (at >= 0) why = SRV_FINISH_STOP;
    slot_emit(sl, at >= 0 ? (size_t)at : sl->len);
    slot_release(s, sl, why, NULL);
}

static size_t common_prefix(const bitnet_token *a, int na, const bitnet_token *b, int nb)
{
    int i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return (size_t)i;
}

/* Prepares a slot for its new task: keeps the cached prefix, resets the rest. */
static bool slot_setup(srv_sched *s, slot *sl)
{
    srv_task *t = sl->task;
    int keep = 0;
    if (s->cache_prompt) {
        keep = (int)common_prefix(sl->cache, sl->n_cache, t->prompt, t->n_prompt);
        if (keep >= t->n_prompt) keep = t->n_prompt - 1; /* evaluate at least one token for its logits */
    }
    if (bitnet_context_truncate(sl->ctx, keep) != BITNET_OK) {
        if (bitnet_context_truncate(sl->ctx, 0) != BITNET_OK) return false;
        keep = 0;
    }
    sl->n_cache = keep;
    t->n_cached = keep;
    if (bitnet_detokenizer_init(s->tok, false, &sl->detok) != BITNET_OK) return false;
    for (int i = 0; i < t->n_prompt; i++) bitnet_sampler_accept(t->sampler, t->prompt[i]);
    sl->started = true;
    sl->ready = false;
    sl->t_last = 0;
    return true;
}

static void tokinfo_fill(const float *logits, int n_vocab, bitnet_token id, int n_top, srv_tokinfo *ti)
{
    float mx = -INFINITY;
    for (int i = 0; i < n_vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int i = 0; i < n_vocab; i++) sum += exp((double)logits[i] - mx);
    double lse = mx + log(sum);
    ti->id = id;
    ti->logprob = (float)(logits[id] - lse);
    ti->n_top = 0;
    if (n_top > n_vocab) n_top = n_vocab;
    for (int i = 0; i < n_vocab; i++) { /* insertion into a short sorted list */
        if (ti->n_top == n_top && (n_top == 0 || logits[i] <= logits[ti->top[n_top - 1].id])) continue;
        int j = ti->n_top < n_top ? ti->n_top++ : n_top - 1;
        while (j > 0 && logits[ti->top[j - 1].id] < logits[i]) {
            ti->top[j] = ti->top[j - 1];
            j--;
        }
        ti->top[j].id = i;
    }
    for (int j = 0; j < ti->n_top; j++) ti->top[j].logprob = (float)(logits[ti->top[j].id] - lse);
}

/* Takes the token the last batch sampled for a ready slot.  Returns true with *next when the
 * slot goes on (next must be evaluated), false when it finished (the slot is free again). */
static bool slot_step(srv_sched *s, slot *sl, bitnet_token *next)
{
    srv_task *t = sl->task;
    if (t->max_tokens <= 0) {
        slot_release(s, sl, SRV_FINISH_LENGTH, NULL);
        return false;
    }
    const bitnet_token id = sl->next;
    if (id < 0 || id >= s->n_vocab) {
        slot_release(s, sl, SRV_FINISH_ERROR, "sampling failed");
        return false;
    }
    bitnet_sampler_accept(t->sampler, id);
    sl->ready = false;
    double now = srv_now();
    if (sl->t_last == 0)
        srv_metrics_ttft(s->metrics, now - t->t_submit);
    else
        srv_metrics_token_latency(s->metrics, now - sl->t_last);
    sl->t_last = now;

    if (bitnet_tokenizer_is_eog(s->tok, id)) {
        slot_finish_text(s, sl, SRV_FINISH_STOP);
        return false;
    }
    t->n_generated++;
    if (t->top_logprobs >= 0) {
        if (sl->n_toks == sl->cap_toks) {
            int cap = sl->cap_toks ? sl->cap_toks * 2 : 16;
            srv_tokinfo *nt = realloc(sl->toks, (size_t)cap * sizeof *nt);
            if (!nt) {
                slot_release(s, sl, SRV_FINISH_ERROR, "out of memory");
                return false;
            }
            sl->toks = nt;
            sl->cap_toks = cap;
        }
        const float *logits = bitnet_get_logits(sl->ctx, -1); /* the ones `id` was sampled from */
        if (!logits) {
            slot_release(s, sl, SRV_FINISH_ERROR, "the engine kept no logits");
            return false;
        }
        tokinfo_fill(logits, s->n_vocab, id, t->top_logprobs, &sl->toks[sl->n_toks++]);
    }
    char piece[256];
    size_t n = 0;
    if (bitnet_detokenizer_push(sl->detok, id, piece, sizeof piece, &n) != BITNET_OK || !text_append(sl, piece, n)) {
        slot_release(s, sl, SRV_FINISH_ERROR, "detokenizing failed");
        return false;
    }
    size_t hold;
    long at = stop_find(sl, t, &hold);
    if (at >= 0) {
        slot_emit(sl, (size_t)at);
        slot_release(s, sl, SRV_FINISH_STOP, NULL);
        return false;
    }
    if (sl->len - hold > sl->emitted) slot_emit(sl, sl->len - hold);
    if (t->n_generated >= t->max_tokens || (t->deadline > 0 && now > t->deadline) ||
        bitnet_context_pos(sl->ctx) >= bitnet_context_n_ctx(sl->ctx)) {
        slot_finish_text(s, sl, SRV_FINISH_LENGTH);
        return false;
    }
    *next = id;
    return true;
}

/* ---- the loop --------------------------------------------------------------------------------- */

static int slot_pick(srv_sched *s, const srv_task *t)
{
    int best = -1;
    size_t best_len = 0;
    for (int i = 0; i < s->n_slots; i++) {
        if (s->slots[i].task) continue;
        size_t l = s->cache_prompt ? common_prefix(s->slots[i].cache, s->slots[i].n_cache, t->prompt, t->n_prompt) : 0;
        if (best < 0 || l > best_len) {
            best = i;
            best_len = l;
        }
    }
    return best;
}

static void *sched_main(void *arg)
{
    srv_sched *s = arg;
    for (;;) {
        int n_dropped = 0;
        bool cancel_running = false, stopping;
        pthread_mutex_lock(&s->mu);
        for (;;) {
            bool everything = s->stop || s->cancel_all;
            cancel_running |= everything;
            s->cancel_all = false;
            /* drop cancelled queued tasks, keeping the others in order */
            int kept = 0;
            for (int i = 0; i < s->q_len; i++) {
                srv_task *t = s->queue[(s->q_head + i) % s->q_cap];
                if (everything || atomic_load(&t->cancel))
                    s->dropped[n_dropped++] = t;
                else
                    s->queue[(s->q_head + kept++) % s->q_cap] = t;
            }
            s->q_len = kept;
            while (s->q_len > 0 && s->n_busy < s->n_slots) {
                srv_task *t = s->queue[s->q_head];
                int si = slot_pick(s, t);
                if (si < 0) break;
                s->slots[si].task = t;
                s->slots[si].started = false;
                s->n_busy++;
                s->q_head = (s->q_head + 1) % s->q_cap;
                s->q_len--;
            }
            if (s->n_busy > 0 || n_dropped > 0 || s->stop) break;
            pthread_cond_wait(&s->cv, &s->mu);
        }
        stopping = s->stop;
        pthread_mutex_unlock(&s->mu);

        for (int i = 0; i < n_dropped; i++) s->dropped[i]->finish(s->dropped[i], SRV_FINISH_CANCELLED, NULL);

        /* set up new tasks, honour cancellations */
        for (int i = 0; i < s->n_slots; i++) {
            slot *sl = &s->slots[i];
            if (!sl->task) continue;
            if (cancel_running) atomic_store(&sl->task->cancel, true);
            if (atomic_load(&sl->task->cancel)) {
                slot_release(s, sl, SRV_FINISH_CANCELLED, NULL);
                continue;
            }
            if (!sl->started && !slot_setup(s, sl)) {
                slot_release(s, sl, SRV_FINISH_ERROR, bitnet_last_error());
                continue;
            }
        }

        /* one batch: the next piece of every prompt still going in, and the next token of every
         * generating slot */
        int nb = 0, nt = 0;
        for (int i = 0; i < s->n_slots; i++) {
            slot *sl = &s->slots[i];
            if (!sl->task) continue;
            srv_task *t = sl->task;
            int count = 1;
            bitnet_sampler *samp = t->sampler;
            if (!sl->ready) {
                count = t->n_prompt - sl->n_cache < s->piece ? t->n_prompt - sl->n_cache : s->piece;
                if (count <= 0) continue;
                memcpy(s->batch_tok + nt, t->prompt + sl->n_cache, (size_t)count * sizeof *s->batch_tok);
                if (sl->n_cache + count < t->n_prompt) samp = NULL; /* a middle piece: nothing to sample */
            } else {
                if (!slot_step(s, sl, &s->batch_tok[nt])) continue;
            }
            s->batch_ctx[nb] = sl->ctx;
            s->batch_cnt[nb] = count;
            s->batch_samp[nb] = samp;
            s->batch_slot[nb] = i;
            nb++;
            nt += count;
        }
        if (nb > 0) {
            bitnet_status st = bitnet_eval_batch(s->batch_ctx, s->batch_tok, s->batch_cnt, nb, s->batch_samp, s->batch_next);
            for (int j = 0, off = 0; j < nb; off += s->batch_cnt[j], j++) {
                slot *sl = &s->slots[s->batch_slot[j]];
                if (st == BITNET_OK) {
                    memcpy(sl->cache + sl->n_cache, s->batch_tok + off, (size_t)s->batch_cnt[j] * sizeof *sl->cache);
                    sl->n_cache += s->batch_cnt[j];
                    if (s->batch_samp[j]) { /* a generated token, or a prompt's last piece */
                        sl->ready = true;
                        sl->next = s->batch_next[j];
                    }
                } else {
                    sl->n_cache = 0; /* the cache may be partly written: forget it */
                    bitnet_context_truncate(sl->ctx, 0);
                    slot_release(s, sl, SRV_FINISH_ERROR, bitnet_last_error());
                }
            }
        }
        if (stopping) {
            pthread_mutex_lock(&s->mu);
            bool idle = s->n_busy == 0 && s->q_len == 0;
            pthread_mutex_unlock(&s->mu);
            if (idle) break;
        }
    }
    return NULL;
}

/* ---- public ----------------------------------------------------------------------------------- */

bitnet_status srv_sched_init(bitnet_model *m, const srv_sched_params *p, srv_metrics *metrics, srv_sched **out)
{
    *out = NULL;
    srv_sched *s = calloc(1, sizeof *s);
    if (!s) return BITNET_ERR_NOMEM;
    s->model = m;
    s->tok = bitnet_model_tokenizer(m);
    bitnet_model_info info;
    bitnet_status st = bitnet_model_info_get(m, &info);
    if (st != BITNET_OK) {
        free(s);
        return st;
    }
    s->n_vocab = info.n_vocab;
    s->metrics = metrics;
    s->n_slots = p->n_slots > 0 ? p->n_slots : 1;
    s->max_queue = p->max_queue > 0 ? p->max_queue : 0;
    s->cache_prompt = p->cache_prompt;
    s->q_cap = s->max_queue + s->n_slots;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->slots = calloc((size_t)s->n_slots, sizeof *s->slots);
    s->queue = calloc((size_t)s->q_cap, sizeof *s->queue);
    s->dropped = calloc((size_t)s->q_cap, sizeof *s->dropped);
    s->batch_ctx = calloc((size_t)s->n_slots, sizeof *s->batch_ctx);
    s->piece = p->prompt_piece > 0 ? p->prompt_piece : PROMPT_PIECE_DEFAULT;
    s->batch_tok = calloc((size_t)s->n_slots * (size_t)s->piece, sizeof *s->batch_tok);
    s->batch_cnt = calloc((size_t)s->n_slots, sizeof *s->batch_cnt);
    s->batch_samp = calloc((size_t)s->n_slots, sizeof *s->batch_samp);
    s->batch_next = calloc((size_t)s->n_slots, sizeof *s->batch_next);
    s->batch_slot = calloc((size_t)s->n_slots, sizeof *s->batch_slot);
    if (!s->slots || !s->queue || !s->dropped || !s->batch_ctx || !s->batch_tok || !s->batch_cnt || !s->batch_samp ||
        !s->batch_next || !s->batch_slot) {
        srv_sched_free(s);
        return BITNET_ERR_NOMEM;
    }
    bitnet_context_params cp;
    bitnet_context_params_default(&cp);
    cp.n_ctx = p->n_ctx;
    cp.n_threads = p->n_threads;
    for (int i = 0; i < s->n_slots; i++) {
        st = bitnet_context_init(m, &cp, &s->slots[i].ctx);
        if (st == BITNET_OK) {
            s->n_ctx = bitnet_context_n_ctx(s->slots[i].ctx);
            s->slots[i].cache = calloc((size_t)s->n_ctx + 1, sizeof *s->slots[i].cache);
            if (!s->slots[i].cache) st = BITNET_ERR_NOMEM;
        }
        if (st != BITNET_OK) {
            srv_sched_free(s);
            return st;
        }
    }
    if (pthread_create(&s->thread, NULL, sched_main, s) != 0) {
        srv_sched_free(s);
        return BITNET_ERR_INTERNAL;
    }
    s->thread_started = true;
    *out = s;
    return BITNET_OK;
}

void srv_sched_free(srv_sched *s)
{
    if (!s) return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    for (int i = 0; s->slots && i < s->n_slots; i++) {
        bitnet_context_free(s->slots[i].ctx);
        bitnet_detokenizer_free(s->slots[i].detok);
        free(s->slots[i].cache);
        free(s->slots[i].text);
        free(s->slots[i].toks);
    }
    free(s->slots);
    free(s->queue);
    free(s->dropped);
    free(s->batch_ctx);
    free(s->batch_tok);
    free(s->batch_cnt);
    free(s->batch_samp);
    free(s->batch_next);
    free(s->batch_slot);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

bool srv_sched_submit(srv_sched *s, srv_task *const *tasks, int n)
{
    double now = srv_now();
    pthread_mutex_lock(&s->mu);
    int free_slots = s->n_slots - s->n_busy;
    bool ok = !s->stop && s->q_len + n - free_slots <= s->max_queue && s->q_len + n <= s->q_cap;
    if (ok) {
        for (int i = 0; i < n; i++) {
            tasks[i]->t_submit = now;
            tasks[i]->n_generated = tasks[i]->n_cached = 0;
            s->queue[(s->q_head + s->q_len++) % s->q_cap] = tasks[i];
        }
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

void srv_sched_wake(srv_sched *s)
{
    pthread_mutex_lock(&s->mu);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void srv_sched_cancel_all(srv_sched *s)
{
    pthread_mutex_lock(&s->mu);
    s->cancel_all = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void srv_sched_stats(srv_sched *s, int *queued, int *active)
{
    pthread_mutex_lock(&s->mu);
    *queued = s->q_len;
    *active = s->n_busy;
    pthread_mutex_unlock(&s->mu);
}

int srv_sched_n_ctx(const srv_sched *s)
{
    return s->n_ctx;
}

int srv_sched_n_slots(const srv_sched *s)
{
    return s->n_slots;
}
