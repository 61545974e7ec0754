/* Server metrics: counters and histograms, rendered in the Prometheus text format. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server.h"

double srv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void hist_init(srv_histogram *h, const double *bounds, int n)
{
    memset(h, 0, sizeof *h);
    h->n_bounds = n;
    memcpy(h->bounds, bounds, (size_t)n * sizeof *bounds);
}

static void hist_add(srv_histogram *h, double v)
{
    int i = 0;
    while (i < h->n_bounds && v > h->bounds[i]) i++;
    h->counts[i]++;
    h->sum += v;
    h->n++;
}

void srv_metrics_init(srv_metrics *m)
{
    static const double ttft[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    static const double tok[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    hist_init(&m->ttft, ttft, (int)(sizeof ttft / sizeof ttft[0]));
    hist_init(&m->token_latency, tok, (int)(sizeof tok / sizeof tok[0]));
}

void srv_metrics_free(srv_metrics *m)
{
    pthread_mutex_destroy(&m->mu);
}

const char *srv_endpoint_name(srv_endpoint ep)
{
    static const char *names[SRV_EP_COUNT] = {"/v1/completions", "/v1/chat/completions", "/v1/models",
                                              "/health", "/metrics", "other"};
    return (unsigned)ep < SRV_EP_COUNT ? names[ep] : "other";
}

void srv_metrics_request(srv_metrics *m, srv_endpoint ep, int status)
{
    if ((unsigned)ep >= SRV_EP_COUNT || status < 0 || status >= 600) return;
    pthread_mutex_lock(&m->mu);
    m->requests[ep][status]++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_tokens(srv_metrics *m, int n_prompt, int n_generated)
{
    pthread_mutex_lock(&m->mu);
    m->prompt_tokens += (uint64_t)(n_prompt > 0 ? n_prompt : 0);
    m->generated_tokens += (uint64_t)(n_generated > 0 ? n_generated : 0);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_ttft(srv_metrics *m, double seconds)
{
    pthread_mutex_lock(&m->mu);
    hist_add(&m->ttft, seconds);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_token_latency(srv_metrics *m, double seconds)
{
    pthread_mutex_lock(&m->mu);
    hist_add(&m->token_latency, seconds);
    pthread_mutex_unlock(&m->mu);
}

/* ---- rendering -------------------------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len, cap;
    bool failed;
} outbuf;

static void out_printf(outbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(outbuf *o, const char *fmt, ...)
{
    if (o->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n + 1;
        char *nb = realloc(o->buf, cap);
        if (!nb) {
            o->failed = true;
            return;
        }
        o->buf = nb;
        o->cap = cap;
    }
}

static void render_hist(outbuf *o, const char *name, const char *help, const srv_histogram *h)
{
    out_printf(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < h->n_bounds; i++) {
        cum += h->counts[i];
        out_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i], (unsigned long long)cum);
    }
    cum += h->counts[h->n_bounds];
    out_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    out_printf(o, "%s_sum %.9g\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->n);
}

char *srv_metrics_render(srv_metrics *m, int queue_depth, int active_slots, int n_slots)
{
    outbuf o = {malloc(4096), 0, 4096, false};
    if (!o.buf) return NULL;
    o.buf[0] = '\0';
    pthread_mutex_lock(&m->mu);
    out_printf(&o, "# HELP bitnet_requests_total HTTP requests answered, by endpoint and status.\n"
                   "# TYPE bitnet_requests_total counter\n");
    for (int ep = 0; ep < SRV_EP_COUNT; ep++)
        for (int st = 0; st < 600; st++)
            if (m->requests[ep][st])
                out_printf(&o, "bitnet_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n",
                           srv_endpoint_name((srv_endpoint)ep), st, (unsigned long long)m->requests[ep][st]);
    out_printf(&o, "# HELP bitnet_prompt_tokens_total Prompt tokens of finished requests.\n"
                   "# TYPE bitnet_prompt_tokens_total counter\nbitnet_prompt_tokens_total %llu\n",
               (unsigned long long)m->prompt_tokens);
    out_printf(&o, "# HELP bitnet_generated_tokens_total Tokens generated.\n"
                   "# TYPE bitnet_generated_tokens_total counter\nbitnet_generated_tokens_total %llu\n",
               (unsigned long long)m->generated_tokens);
    render_hist(&o, "bitnet_time_to_first_token_seconds",
                "Seconds from a request's arrival to its first generated token (queueing included).", &m->ttft);
    render_hist(&o, "bitnet_token_latency_seconds", "Seconds between consecutive generated tokens of a request.",
                &m->token_latency);
    pthread_mutex_unlock(&m->mu);
    out_printf(&o, "# HELP bitnet_queue_depth Requests waiting for a slot.\n"
                   "# TYPE bitnet_queue_depth gauge\nbitnet_queue_depth %d\n", queue_depth);
    out_printf(&o, "# HELP bitnet_active_slots Slots generating.\n"
                   "# TYPE bitnet_active_slots gauge\nbitnet_active_slots %d\n", active_slots);
    out_printf(&o, "# HELP bitnet_slots Slots configured (--parallel).\n"
                   "# TYPE bitnet_slots gauge\nbitnet_slots %d\n", n_slots);
    if (o.failed) {
        free(o.buf);
        return NULL;
    }
    return o.buf;
}
