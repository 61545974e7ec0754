/* One pool of worker threads for the whole engine: created once, reused by every parallel op, so
 * no thread is created per call.  bn_threadpool_run() runs fn(arg, ith, nth) on all nth threads
 * (the caller is thread 0) and returns when all have finished. */
#ifndef BN_COMMON_THREADPOOL_H
#define BN_COMMON_THREADPOOL_H

#include <stddef.h>

#include "common/status.h"

typedef struct bn_threadpool bn_threadpool;
typedef void (*bn_task_fn)(void *arg, int ith, int nth);

/* n_threads >= 1; 1 means the caller does all the work and no thread is started. */
bn_status bn_threadpool_init(bn_threadpool **out, int n_threads);
void bn_threadpool_free(bn_threadpool *tp);
int bn_threadpool_size(const bn_threadpool *tp);
/* Runs the task on every thread.  tp may be NULL: then fn(arg, 0, 1) runs on the caller.
 * Not reentrant: a task must not call bn_threadpool_run on the same pool. */
void bn_threadpool_run(bn_threadpool *tp, bn_task_fn fn, void *arg);
/* Runs fn(arg, c, n_chunks) once for every chunk c in [0, n_chunks), on whichever threads are
 * free: each takes the next unclaimed chunk.  Work that does not depend on which thread does it
 * (a matmul's rows) should use this: when the machine is busy and a worker is not scheduled, the
 * others do its share instead of waiting a scheduler tick for it to start. */
void bn_threadpool_run_chunks(bn_threadpool *tp, bn_task_fn fn, void *arg, int n_chunks);

/* Splits [0, n) into nth nearly equal parts, aligned to `align` items; part ith is [*lo, *hi). */
static inline void bn_split_range(long n, int ith, int nth, long align, long *lo, long *hi)
{
    long blocks = (n + align - 1) / align;
    long per = blocks / nth, extra = blocks % nth;
    long b0 = ith * per + (ith < extra ? ith : extra);
    long b1 = b0 + per + (ith < extra ? 1 : 0);
    *lo = b0 * align < n ? b0 * align : n;
    *hi = b1 * align < n ? b1 * align : n;
}

/* Number of online processors (>= 1) and a guess at physical cores (>= 1). */
int bn_cpu_count_logical(void);
int bn_cpu_count_physical(void);
/* Bytes of the last-level cache (the highest level the OS describes: on Linux sysfs, on macOS
 * sysctl), or 0 when the OS does not say. */
size_t bn_cpu_cache_bytes(void);

#endif
