/* src/common/threadpool.h without threads, for the wasm32-wasi test build (wasi-libc has no
 * pthreads): every pool has one thread, the caller, and a task runs as fn(arg, 0, 1). */
#include <stdlib.h>

#include "common/error.h"
#include "common/threadpool.h"

struct bn_threadpool {
    int n;
};

bn_status bn_threadpool_init(bn_threadpool **out, int n_threads)
{
    if (!out || n_threads < 1) return bn_error(BN_ERR_INVALID_ARG, "threadpool: need at least 1 thread");
    *out = malloc(sizeof **out);
    if (!*out) return BN_ERR_NOMEM;
    (*out)->n = 1;
    return BN_OK;
}

void bn_threadpool_free(bn_threadpool *tp) { free(tp); }

int bn_threadpool_size(const bn_threadpool *tp) { return tp ? tp->n : 1; }

void bn_threadpool_run(bn_threadpool *tp, bn_task_fn fn, void *arg)
{
    (void)tp;
    fn(arg, 0, 1);
}

void bn_threadpool_run_chunks(bn_threadpool *tp, bn_task_fn fn, void *arg, int n_chunks)
{
    (void)tp;
    for (int c = 0; c < n_chunks; c++) fn(arg, c, n_chunks);
}

int bn_cpu_count_logical(void) { return 1; }
int bn_cpu_count_physical(void) { return 1; }
size_t bn_cpu_cache_bytes(void) { return 0; }
