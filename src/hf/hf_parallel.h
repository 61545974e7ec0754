/* Conversion work split across a thread pool: fixed-size pieces of elements (or rows), so the
 * output does not depend on the thread count as long as each piece's result depends only on its
 * own inputs (reductions are kept per piece and combined by the caller in piece order).
 * Used by the Hugging Face converter and by GGUF -> GGUF requantisation (bitnet_convert). */
#ifndef BN_HF_HF_PARALLEL_H
#define BN_HF_HF_PARALLEL_H

#include <stdint.h>

#include "common/status.h"
#include "common/threadpool.h"

/* Most threads a conversion accepts (bn_threadpool's limit). */
#define BN_CONVERT_MAX_THREADS 1024

/* BN_ERR_INVALID_ARG, with a message, unless n_threads is 0 (physical cores) or 1..1024. */
bn_status bn_convert_check_threads(int n_threads);

/* A pool for a conversion: n_threads 0 means the number of physical cores; otherwise 1..1024
 * (BN_ERR_INVALID_ARG outside). */
bn_status bn_convert_pool_init(int n_threads, bn_threadpool **out);

/* Work on [lo, hi); ith is the calling thread (for per-thread state such as a buffer). */
typedef bn_status (*bn_range_fn)(void *arg, int64_t lo, int64_t hi, int ith);

/* Runs fn over [0, n) cut into pieces of `grain` (the last one shorter), which the threads of tp
 * (tp may be NULL: the caller alone) claim in increasing order as they become free, so a thread
 * slowed by other work on the machine does not hold the others up.  A piece's result must depend
 * only on the piece, never on the thread that ran it.  Returns BN_OK, or the failure of the
 * lowest failing piece (the error one thread would meet first), its message moved to the calling
 * thread; no piece is started after a failure. */
bn_status bn_parallel_ranges(bn_threadpool *tp, int64_t n, int64_t grain, bn_range_fn fn, void *arg);

#endif
