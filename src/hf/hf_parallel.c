/* Conversion work split across a thread pool (see hf_parallel.h). */
#include "hf/hf_parallel.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/mem.h"

bn_status bn_convert_check_threads(int n_threads)
{
    if (n_threads < 0 || n_threads > BN_CONVERT_MAX_THREADS)
        return bn_error(BN_ERR_INVALID_ARG, "conversion threads: %d is not in 1..%d (0 = physical cores)", n_threads,
                        BN_CONVERT_MAX_THREADS);
    return BN_OK;
}

bn_status bn_convert_pool_init(int n_threads, bn_threadpool **out)
{
    *out = NULL;
    bn_status st = bn_convert_check_threads(n_threads);
    if (st) return st;
    if (n_threads == 0) n_threads = bn_cpu_count_physical();
    return bn_threadpool_init(out, n_threads);
}

/* Messages are recorded per thread (common/error.h): a worker's is copied here to be re-raised. */
typedef struct range_slot {
    bn_status st;
    int64_t piece; /* the piece that failed */
    char msg[512];
} range_slot;

typedef struct range_task {
    int64_t n, grain, n_pieces;
    bn_range_fn fn;
    void *arg;
    atomic_llong next;   /* the next piece to claim */
    atomic_llong failed; /* the lowest failed piece so far (n_pieces: none) */
    range_slot *slots;   /* per thread */
} range_task;

static void run_pieces(void *p, int ith, int nth)
{
    (void)nth;
    range_task *t = p;
    range_slot *s = &t->slots[ith];
    for (;;) {
        long long i = atomic_fetch_add(&t->next, 1);
        /* pieces are claimed in order, so every piece below a failed one has been claimed and
         * is finished by its thread: the lowest failure is always found */
        if (i >= t->n_pieces || i > atomic_load(&t->failed)) break;
        int64_t lo = (int64_t)i * t->grain, hi = lo + t->grain < t->n ? lo + t->grain : t->n;
        bn_error_clear(); /* a message below is this piece's, not an older one */
        bn_status st = t->fn(t->arg, lo, hi, ith);
        if (st) {
            s->st = st;
            s->piece = i;
            snprintf(s->msg, sizeof s->msg, "%s", bn_last_error());
            long long f = atomic_load(&t->failed);
            while (i < f && !atomic_compare_exchange_weak(&t->failed, &f, i)) {
            }
            break;
        }
    }
}

bn_status bn_parallel_ranges(bn_threadpool *tp, int64_t n, int64_t grain, bn_range_fn fn, void *arg)
{
    if (n <= 0) return BN_OK;
    if (grain <= 0) grain = n;
    int nth = bn_threadpool_size(tp);
    range_task t = {.n = n, .grain = grain, .n_pieces = (n + grain - 1) / grain, .fn = fn, .arg = arg};
    if (nth == 1 || t.n_pieces == 1) {
        /* the same pieces in the same order, on the caller */
        for (int64_t lo = 0; lo < n; lo += grain) {
            bn_status st = fn(arg, lo, lo + grain < n ? lo + grain : n, 0);
            if (st) return st;
        }
        return BN_OK;
    }
    atomic_init(&t.next, 0);
    atomic_init(&t.failed, t.n_pieces);
    t.slots = bn_calloc((size_t)nth, sizeof *t.slots);
    if (!t.slots) return BN_ERR_NOMEM;
    /* one chunk per slot, taken by whichever thread is free: a worker that is not scheduled does
     * not hold the conversion up (its slot's loop simply finds no pieces left) */
    bn_threadpool_run_chunks(tp, run_pieces, &t, nth);
    const range_slot *first = NULL;
    for (int i = 0; i < nth; i++)
        if (t.slots[i].st && (!first || t.slots[i].piece < first->piece)) first = &t.slots[i];
    bn_status st = first ? bn_error(first->st, "%s", first->msg[0] ? first->msg : bn_status_string(first->st)) : BN_OK;
    bn_free(t.slots);
    return st;
}
