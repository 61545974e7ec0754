#include "common/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__APPLE__)
#include <sys/sysctl.h>
#include <sys/types.h>
#endif

#include "common/error.h"
#include "common/mem.h"

/* Waiting threads spin briefly on the generation counter (a matmul is often only tens of
 * microseconds, so sleeping between ops would dominate), then yield the CPU for a while (when the
 * machine is oversubscribed, the thread being waited for may need this core), then sleep on a
 * condition variable. */
#define BN_SPIN_ITERS 2048
#define BN_YIELD_ITERS 256

struct bn_threadpool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
    atomic_uint generation;
    atomic_int pending;
    atomic_int stop;
    bn_task_fn fn;
    void *arg;
    /* chunked jobs (bn_threadpool_run_chunks).  A job's kind is the low bit of its generation, so a
     * worker reads the generation and the kind at once, never a newer job's kind for an older job. */
    atomic_uint open_gen;   /* a chunked job's generation while chunks may be claimed, 0 once closed */
    atomic_int next_chunk;  /* the next chunk to claim */
    atomic_int inside;      /* workers that have entered it and not left */
    int n_chunks;
    /* Who sleeps on a condition variable, so that the other side takes the mutex and signals only
     * then (a lock and a broadcast per job cost more than a small job's work).  Each side writes
     * its flag or count, then reads the other's (all sequentially consistent), so at least one of
     * them sees the other: a sleeper is never missed. */
    atomic_int sleepers; /* workers waiting on cv_work */
    atomic_int waiter;   /* the caller waiting on cv_done */
};

typedef struct {
    bn_threadpool *tp;
    int ith;
} worker_arg;


static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("pause");
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Claims and runs chunks of the current chunked job until none is left. */
static void run_chunks(bn_threadpool *tp)
{
    for (;;) {
        int c = atomic_fetch_add(&tp->next_chunk, 1);
        if (c >= tp->n_chunks) return;
        tp->fn(tp->arg, c, tp->n_chunks);
    }
}

static void *worker_main(void *p)
{
    worker_arg wa = *(worker_arg *)p;
    bn_free(p);
    bn_threadpool *tp = wa.tp;
    unsigned seen = 0; /* the generation at creation: a run may start before this thread does */
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&tp->generation, memory_order_acquire) == seen && !atomic_load(&tp->stop)) {
            if (++spins < BN_SPIN_ITERS) {
                cpu_relax();
                continue;
            }
            if (spins < BN_SPIN_ITERS + BN_YIELD_ITERS) {
                sched_yield();
                continue;
            }
            pthread_mutex_lock(&tp->mu);
            atomic_fetch_add(&tp->sleepers, 1);
            while (atomic_load(&tp->generation) == seen && !atomic_load(&tp->stop))
                pthread_cond_wait(&tp->cv_work, &tp->mu);
            atomic_fetch_sub(&tp->sleepers, 1);
            pthread_mutex_unlock(&tp->mu);
        }
        if (atomic_load(&tp->stop)) break;
        seen = atomic_load(&tp->generation);
        if (seen & 1) {
            /* Enter only while the job is open: the caller closes it once every chunk is claimed
             * and then waits only for workers inside, so one that wakes late costs nothing. */
            atomic_fetch_add(&tp->inside, 1);
            if (atomic_load(&tp->open_gen) == seen) run_chunks(tp);
            if (atomic_fetch_sub(&tp->inside, 1) == 1 && atomic_load(&tp->waiter)) {
                pthread_mutex_lock(&tp->mu);
                pthread_cond_signal(&tp->cv_done);
                pthread_mutex_unlock(&tp->mu);
            }
            continue;
        }
        /* a plain job waits for every worker, so its fn and arg stay as they are until this one reports */
        tp->fn(tp->arg, wa.ith, tp->n);
        if (atomic_fetch_sub(&tp->pending, 1) == 1 && atomic_load(&tp->waiter)) {
            pthread_mutex_lock(&tp->mu);
            pthread_cond_signal(&tp->cv_done);
            pthread_mutex_unlock(&tp->mu);
        }
    }
    return NULL;
}

bn_status bn_threadpool_init(bn_threadpool **out, int n_threads)
{
    *out = NULL;
    if (n_threads < 1 || n_threads > 1024) return bn_error(BN_ERR_INVALID_ARG, "thread count %d is not in 1..1024", n_threads);
    bn_threadpool *tp = bn_calloc(1, sizeof *tp);
    if (!tp) return BN_ERR_NOMEM;
    tp->n = n_threads;
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->cv_work, NULL);
    pthread_cond_init(&tp->cv_done, NULL);
    atomic_init(&tp->generation, 0);
    atomic_init(&tp->pending, 0);
    atomic_init(&tp->stop, 0);
    atomic_init(&tp->open_gen, 0);
    atomic_init(&tp->next_chunk, 0);
    atomic_init(&tp->sleepers, 0);
    atomic_init(&tp->waiter, 0);
    atomic_init(&tp->inside, 0);
    if (n_threads > 1) {
        tp->threads = bn_calloc((size_t)n_threads, sizeof(pthread_t));
        if (!tp->threads) {
            bn_threadpool_free(tp);
            return BN_ERR_NOMEM;
        }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *wa = bn_malloc(sizeof *wa);
            if (!wa) {
                tp->n = i;
                bn_threadpool_free(tp);
                return BN_ERR_NOMEM;
            }
            wa->tp = tp;
            wa->ith = i;
            int rc = pthread_create(&tp->threads[i], NULL, worker_main, wa);
            if (rc != 0) {
                bn_free(wa);
                tp->n = i;
                bn_threadpool_free(tp);
                return bn_error(BN_ERR_NOMEM, "cannot start thread %d: %s", i, strerror(rc));
            }
        }
    }
    *out = tp;
    return BN_OK;
}

void bn_threadpool_free(bn_threadpool *tp)
{
    if (!tp) return;
    if (tp->threads) {
        pthread_mutex_lock(&tp->mu);
        atomic_store(&tp->stop, 1);
        pthread_cond_broadcast(&tp->cv_work);
        pthread_mutex_unlock(&tp->mu);
        for (int i = 1; i < tp->n; i++) pthread_join(tp->threads[i], NULL);
        bn_free(tp->threads);
    }
    pthread_mutex_destroy(&tp->mu);
    pthread_cond_destroy(&tp->cv_work);
    pthread_cond_destroy(&tp->cv_done);
    bn_free(tp);
}

int bn_threadpool_size(const bn_threadpool *tp) { return tp ? tp->n : 1; }

/* The next job's generation: a counter, shifted, with the kind (1: chunked) in the low bit; never
 * 0 (a worker's initial `seen`).  Only the caller of a run writes it. */
static unsigned next_generation(bn_threadpool *tp, unsigned chunked)
{
    unsigned g = ((atomic_load(&tp->generation) >> 1) + 1) << 1 | chunked;
    return g ? g : 2 | chunked;
}

/* After a new generation is published: wakes the workers that sleep (see `sleepers`). */
static void wake_sleepers(bn_threadpool *tp)
{
    if (atomic_load(&tp->sleepers) == 0) return;
    pthread_mutex_lock(&tp->mu);
    pthread_cond_broadcast(&tp->cv_work);
    pthread_mutex_unlock(&tp->mu);
}

static void wait_until_zero(bn_threadpool *tp, atomic_int *count)
{
    int spins = 0;
    while (atomic_load_explicit(count, memory_order_acquire) > 0) {
        if (++spins < BN_SPIN_ITERS) {
            cpu_relax();
            continue;
        }
        if (spins < BN_SPIN_ITERS + BN_YIELD_ITERS) {
            sched_yield();
            continue;
        }
        pthread_mutex_lock(&tp->mu);
        atomic_store(&tp->waiter, 1);
        while (atomic_load(count) > 0) pthread_cond_wait(&tp->cv_done, &tp->mu);
        atomic_store(&tp->waiter, 0);
        pthread_mutex_unlock(&tp->mu);
    }
}

void bn_threadpool_run_chunks(bn_threadpool *tp, bn_task_fn fn, void *arg, int n_chunks)
{
    if (n_chunks < 1) return;
    if (!tp || tp->n == 1) {
        for (int c = 0; c < n_chunks; c++) fn(arg, c, n_chunks);
        return;
    }
    tp->fn = fn;
    tp->arg = arg;
    tp->n_chunks = n_chunks;
    atomic_store(&tp->next_chunk, 0);
    unsigned gen = next_generation(tp, 1);
    atomic_store(&tp->open_gen, gen);
    atomic_store(&tp->generation, gen);
    wake_sleepers(tp);
    run_chunks(tp);
    /* every chunk is claimed: close the job, then wait for the workers still inside it (a worker
     * that enters from now on sees it closed and leaves at once) */
    atomic_store(&tp->open_gen, 0);
    wait_until_zero(tp, &tp->inside);
}

void bn_threadpool_run(bn_threadpool *tp, bn_task_fn fn, void *arg)
{
    if (!tp || tp->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    tp->fn = fn;
    tp->arg = arg;
    atomic_store(&tp->pending, tp->n - 1);
    atomic_store(&tp->generation, next_generation(tp, 0));
    wake_sleepers(tp);
    fn(arg, 0, tp->n);
    wait_until_zero(tp, &tp->pending);
}

int bn_cpu_count_logical(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n >= 1 ? (int)n : 1;
}

int bn_cpu_count_physical(void)
{
    /* Linux: count distinct (physical id, core id) pairs; elsewhere assume no SMT. */
    FILE *f = fopen("/proc/cpuinfo", "r");
    int logical = bn_cpu_count_logical();
    if (!f) return logical;
    char line[256];
    int phys = -1, core = -1, n = 0;
    int seen[1024][2];
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "physical id : %d", &phys) == 1) continue;
        if (sscanf(line, "core id : %d", &core) == 1) {
            int dup = 0;
            for (int i = 0; i < n; i++)
                if (seen[i][0] == phys && seen[i][1] == core) dup = 1;
            if (!dup && n < 1024) {
                seen[n][0] = phys;
                seen[n][1] = core;
                n++;
            }
        }
    }
    fclose(f);
    return n >= 1 && n <= logical ? n : logical;
}

static size_t g_cache_bytes;
static pthread_once_t g_cache_once = PTHREAD_ONCE_INIT;

static void cache_detect(void)
{
#if defined(__linux__)
    /* cpu0's caches: index0 .. indexN, each with its level and a size like "32768K" */
    int best_level = 0;
    for (int i = 0; i < 16; i++) {
        char path[96], buf[64];
        int level = 0;
        unsigned long long size = 0;
        char unit = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        FILE *f = fopen(path, "r");
        if (!f) break;
        if (fgets(buf, sizeof buf, f)) level = atoi(buf);
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if (!(f = fopen(path, "r"))) continue;
        if (fgets(buf, sizeof buf, f) && sscanf(buf, "%llu%c", &size, &unit) >= 1) {
            if (unit == 'K') size <<= 10;
            else if (unit == 'M') size <<= 20;
            else if (unit == 'G') size <<= 30;
            if (level >= best_level && size > 0) {
                best_level = level;
                g_cache_bytes = (size_t)size;
            }
        }
        fclose(f);
    }
#elif defined(__APPLE__)
    uint64_t v = 0;
    size_t len = sizeof v;
    if (sysctlbyname("hw.l3cachesize", &v, &len, NULL, 0) == 0 && v > 0) g_cache_bytes = (size_t)v;
    else if ((len = sizeof v, sysctlbyname("hw.l2cachesize", &v, &len, NULL, 0) == 0) && v > 0) g_cache_bytes = (size_t)v;
#endif
}

size_t bn_cpu_cache_bytes(void)
{
    pthread_once(&g_cache_once, cache_detect);
    return g_cache_bytes;
}
