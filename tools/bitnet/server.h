/* bitnet serve: an OpenAI-compatible HTTP server on the public API (bitnet.h).
 *
 *   server_http.c     libmicrohttpd: routing, limits, auth, streaming, client disconnects
 *   server_json.c     request parsing and validation (cJSON), OpenAI-shaped errors
 *   server_sched.c    slots (one context each), queue, continuous batching with bitnet_eval_multi
 *   server_metrics.c  counters and histograms in Prometheus text format
 *   cmd_serve.c       options, model loading, signals, shutdown
 */
#ifndef BITNET_SERVER_H
#define BITNET_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bitnet.h"

#define SRV_MAX_BODY (1u << 20)  /* request bodies above this get 413 */
#define SRV_MAX_TOP_LOGPROBS 20  /* OpenAI's limit for top_logprobs */
#define SRV_MAX_STOP 16          /* stop strings per request */
#define SRV_MAX_PROMPTS 16       /* prompts in one completions request */

double srv_now(void); /* monotonic seconds */

/* ---- metrics (server_metrics.c) ------------------------------------------------------------ */

typedef enum {
    SRV_EP_COMPLETIONS,
    SRV_EP_CHAT,
    SRV_EP_MODELS,
    SRV_EP_HEALTH,
    SRV_EP_METRICS,
    SRV_EP_OTHER,
    SRV_EP_COUNT
} srv_endpoint;

#define SRV_HIST_MAX_BUCKETS 16
typedef struct {
    int n_bounds;
    double bounds[SRV_HIST_MAX_BUCKETS];
    uint64_t counts[SRV_HIST_MAX_BUCKETS + 1]; /* last: above every bound (+Inf) */
    double sum;
    uint64_t n;
} srv_histogram;

typedef struct srv_metrics {
    pthread_mutex_t mu;
    uint64_t requests[SRV_EP_COUNT][600]; /* by endpoint and HTTP status */
    uint64_t prompt_tokens, generated_tokens;
    srv_histogram ttft, token_latency;
} srv_metrics;

void srv_metrics_init(srv_metrics *m);
void srv_metrics_free(srv_metrics *m);
const char *srv_endpoint_name(srv_endpoint ep);
void srv_metrics_request(srv_metrics *m, srv_endpoint ep, int status);
void srv_metrics_tokens(srv_metrics *m, int n_prompt, int n_generated);
void srv_metrics_ttft(srv_metrics *m, double seconds);
void srv_metrics_token_latency(srv_metrics *m, double seconds);
/* The Prometheus text exposition; malloc'd, NULL when out of memory. */
char *srv_metrics_render(srv_metrics *m, int queue_depth, int active_slots, int n_slots);

/* ---- scheduler (server_sched.c) ------------------------------------------------------------ */

typedef enum {
    SRV_FINISH_STOP,      /* end-of-generation token or a stop string */
    SRV_FINISH_LENGTH,    /* max_tokens, the slot's context or the request time limit */
    SRV_FINISH_CANCELLED, /* the client went away or the server is stopping */
    SRV_FINISH_ERROR      /* the engine failed; the message says why */
} srv_finish;

typedef struct {
    bitnet_token id;
    float logprob;
} srv_top;

/* A sampled token with its log-probability under the model (before sampling transforms) and,
 * when asked for, the most likely alternatives. */
typedef struct {
    bitnet_token id;
    float logprob;
    int n_top;
    srv_top top[SRV_MAX_TOP_LOGPROBS];
} srv_tokinfo;

typedef struct srv_task srv_task;
struct srv_task {
    /* Set by the submitter.  The scheduler takes ownership of prompt and sampler at submit. */
    bitnet_token *prompt;
    int n_prompt;
    int max_tokens;
    bitnet_sampler *sampler;
    const char *const *stop; /* must outlive the task */
    size_t n_stop;
    int top_logprobs; /* -1: no log-probabilities; else 0..SRV_MAX_TOP_LOGPROBS alternatives */
    double deadline;  /* srv_now() after which generation ends as "length"; 0: none */
    /* Called on the scheduler thread.  emit: new text (complete UTF-8, possibly empty) and the
     * tokens sampled since the last call.  finish: exactly once, last; the scheduler never
     * touches the task afterwards. */
    void (*emit)(srv_task *t, const char *text, size_t len, const srv_tokinfo *toks, int n_toks);
    void (*finish)(srv_task *t, srv_finish why, const char *error);
    void *user;
    int index;
    atomic_bool cancel; /* set by anyone, then srv_sched_wake() */
    /* Results, valid when finish is called. */
    int n_generated; /* tokens sampled, the end-of-generation token excluded */
    int n_cached;    /* prompt tokens reused from the slot's previous request */
    double t_submit; /* set by srv_sched_submit */
};

typedef struct srv_sched srv_sched;

typedef struct {
    int n_slots;
    int n_ctx;     /* per slot; 0: the library's default */
    int n_threads; /* per context; 0: the library's default */
    int max_queue; /* tasks waiting for a slot */
    int prompt_piece; /* prompt tokens per slot per batch; 0: 512 */
    bool cache_prompt; /* reuse the longest common prefix a slot already holds */
} srv_sched_params;

/* Creates the slots' contexts and starts the scheduler thread. */
bitnet_status srv_sched_init(bitnet_model *m, const srv_sched_params *p, srv_metrics *metrics, srv_sched **out);
/* Stops the thread; unfinished tasks finish as cancelled. */
void srv_sched_free(srv_sched *s);
/* Queues n tasks, all or none: false (nothing queued) when the queue has no room for them. */
bool srv_sched_submit(srv_sched *s, srv_task *const *tasks, int n);
/* Makes the scheduler look at cancel flags now. */
void srv_sched_wake(srv_sched *s);
/* Cancels every queued and running task (second signal: stop now). */
void srv_sched_cancel_all(srv_sched *s);
void srv_sched_stats(srv_sched *s, int *queued, int *active);
int srv_sched_n_ctx(const srv_sched *s);
int srv_sched_n_slots(const srv_sched *s);

/* ---- requests (server_json.c) -------------------------------------------------------------- */

typedef struct {
    int status;         /* HTTP status */
    const char *type;   /* "invalid_request_error", "server_error", ... */
    const char *code;   /* NULL or e.g. "context_length_exceeded" */
    char param[64];     /* "" when none */
    char message[384];
} srv_error;

void srv_error_set(srv_error *e, int status, const char *type, const char *code, const char *param,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* {"error": {"message", "type", "param", "code"}} (malloc'd). */
char *srv_error_json(const srv_error *e);

typedef struct {
    char *text;          /* a text prompt, or NULL when ids are given */
    bitnet_token *ids;   /* pre-tokenized prompt */
    int n_ids;
} srv_prompt;

typedef struct {
    bool chat;
    srv_prompt prompts[SRV_MAX_PROMPTS]; /* completions */
    int n_prompts;
    bitnet_chat_message *msgs; /* chat: strings owned here */
    size_t n_msgs;
    int max_tokens; /* -1: not given */
    bitnet_sampler_params sampling;
    bool seed_given;
    char *stop[SRV_MAX_STOP];
    size_t n_stop;
    bool stream, include_usage;
    int top_logprobs; /* -1: off */
} srv_params;

/* Parses and validates a request body.  false: e is filled (400 with the offending param). */
bool srv_params_parse(const char *body, size_t len, bool chat, int n_vocab, srv_params *out, srv_error *e);
void srv_params_free(srv_params *p);
/* True when s[0..len) is valid UTF-8. */
bool srv_utf8_valid(const char *s, size_t len);

/* ---- the server (server_http.c, cmd_serve.c) ----------------------------------------------- */

typedef enum { SRV_LOADING, SRV_READY, SRV_DRAINING } srv_state;

typedef struct srv_config {
    const char *model_path;
    const char *model_id;  /* name in responses and /v1/models */
    const char *host;
    int port;              /* 0: any free port */
    int n_parallel, n_ctx, n_threads, max_queue, batch_size;
    int timeout_s;         /* idle connections close; requests end as "length" after it */
    int stream_interval_ms; /* a stream's chunks are sent at most this often (0: each at once) */
    const char *api_key;   /* NULL: no authentication */
    const char *chat_template; /* NULL: the model's */
    bool cache_prompt;
} srv_config;

typedef struct srv_server {
    srv_config cfg;
    bitnet_model *model;
    const bitnet_tokenizer *tok;
    int n_vocab;
    long created;
    srv_sched *sched;
    srv_metrics metrics;
    atomic_int state;     /* srv_state */
    atomic_int in_flight; /* generation requests between submission and their connection's completion */
    pthread_mutex_t tok_mu; /* tokenizer and chat formatting from HTTP threads */
    struct MHD_Daemon *daemon;
    int port;
} srv_server;

/* Binds and starts answering (/health says 503 until state is READY).  false: message in err. */
bool srv_http_start(srv_server *s, char *err, size_t errlen);
void srv_http_stop(srv_server *s);

#endif
