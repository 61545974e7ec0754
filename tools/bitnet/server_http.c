/* Server HTTP layer on libmicrohttpd (one thread per connection): routing, body limits,
 * authentication, OpenAI responses and Server-Sent Events.  A connection thread blocks while its
 * request generates, checking every 100 ms whether the client hung up; if so, the request's tasks
 * are cancelled and their slots freed. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "server.h"

/* ---- requests in generation ------------------------------------------------------------------- */

typedef struct request request;

typedef struct {
    srv_task task;
    request *req;
    int n_prompt;
    char *text; /* non-streamed: the whole text; streamed: text not yet made into a chunk */
    size_t len, cap;
    srv_tokinfo *toks; /* streamed: the tokens of that text (for log-probabilities) */
    int n_toks, cap_toks;
    cJSON *logprobs; /* non-streamed: chat {"content": [...]} or completions {"tokens", ...} */
    size_t text_offset;
    bool done;
    srv_finish why;
    char *error;
} choice;

struct request {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    srv_server *srv;
    srv_params params;
    bool chat, stream, include_usage;
    char id[48];
    long created;
    choice *choices;
    int n_choices, n_done;
    char *out; /* streamed bytes not yet sent: [sent, len) */
    size_t out_len, out_cap, out_sent;
    bool finished; /* every choice done; the last bytes are in out */
    bool cancelled;
    bool oom;
    int fd;
    double peer_checked; /* when wait_news last looked at the client */
    double stream_interval; /* seconds: a stream's chunks go out at most this often */
    double last_send;       /* when stream_read last handed chunks to MHD */
    bool holding;           /* stream_read waits for the interval: only the end wakes it */
};

static uint64_t id_state;

static uint64_t next_random(void)
{
    uint64_t z = __atomic_add_fetch(&id_state, 0x9E3779B97F4A7C15ull, __ATOMIC_RELAXED);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void request_unref(request *r)
{
    pthread_mutex_lock(&r->mu);
    bool last = --r->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (!last) return;
    for (int i = 0; i < r->n_choices; i++) {
        choice *c = &r->choices[i];
        free(c->task.prompt);
        bitnet_sampler_free(c->task.sampler);
        free(c->text);
        free(c->toks);
        free(c->error);
        cJSON_Delete(c->logprobs);
    }
    free(r->choices);
    free(r->out);
    srv_params_free(&r->params);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static void request_cancel(request *r)
{
    pthread_mutex_lock(&r->mu);
    r->cancelled = true;
    for (int i = 0; i < r->n_choices; i++)
        if (!r->choices[i].done) atomic_store(&r->choices[i].task.cancel, true);
    pthread_mutex_unlock(&r->mu);
    if (r->srv->sched) srv_sched_wake(r->srv->sched);
}

/* Appends bytes to the stream (r->mu held). */
static void out_append(request *r, const char *s, size_t n)
{
    if (r->out_sent == r->out_len) r->out_sent = r->out_len = 0;
    if (r->out_len + n > r->out_cap) {
        size_t cap = (r->out_len + n) * 2;
        char *nb = realloc(r->out, cap);
        if (!nb) {
            r->oom = true;
            return;
        }
        r->out = nb;
        r->out_cap = cap;
    }
    memcpy(r->out + r->out_len, s, n);
    r->out_len += n;
}

static void out_event(request *r, cJSON *obj)
{
    char *js = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!js) {
        r->oom = true;
        return;
    }
    out_append(r, "data: ", 6);
    out_append(r, js, strlen(js));
    out_append(r, "\n\n", 2);
    free(js);
}

/* ---- JSON pieces ------------------------------------------------------------------------------ */

/* Token text as valid UTF-8 (a token may hold part of a character: those bytes become U+FFFD). */
static cJSON *token_string(const srv_server *s, bitnet_token id, cJSON **bytes_out)
{
    const char *b = "";
    size_t n = 0;
    if (bitnet_token_bytes(s->tok, id, false, &b, &n) != BITNET_OK) n = 0;
    char *txt = malloc(n * 3 + 1);
    if (!txt) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t l = 1;
        unsigned char c = (unsigned char)b[i];
        if (c >= 0xF0) l = 4;
        else if (c >= 0xE0) l = 3;
        else if (c >= 0xC0) l = 2;
        if (i + l <= n && srv_utf8_valid(b + i, l)) {
            memcpy(txt + o, b + i, l);
            o += l;
            i += l;
        } else {
            memcpy(txt + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    txt[o] = '\0';
    cJSON *js = cJSON_CreateString(txt);
    free(txt);
    if (bytes_out) {
        *bytes_out = cJSON_CreateArray();
        for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(*bytes_out, cJSON_CreateNumber((unsigned char)b[i]));
    }
    return js;
}

/* Adds tokens to a logprobs object: chat {"content": [...]}, completions {"tokens", "token_logprobs",
 * "top_logprobs", "text_offset"}. */
static void logprobs_add(const request *r, cJSON *lp, const srv_tokinfo *toks, int n, size_t *text_offset)
{
    const srv_server *s = r->srv;
    if (r->chat) {
        cJSON *content = cJSON_GetObjectItem(lp, "content");
        for (int i = 0; i < n; i++) {
            cJSON *bytes = NULL, *e = cJSON_CreateObject(), *tops = cJSON_CreateArray();
            cJSON_AddItemToObject(e, "token", token_string(s, toks[i].id, &bytes));
            cJSON_AddNumberToObject(e, "logprob", toks[i].logprob);
            cJSON_AddItemToObject(e, "bytes", bytes);
            for (int k = 0; k < toks[i].n_top; k++) {
                cJSON *t = cJSON_CreateObject(), *tb = NULL;
                cJSON_AddItemToObject(t, "token", token_string(s, toks[i].top[k].id, &tb));
                cJSON_AddNumberToObject(t, "logprob", toks[i].top[k].logprob);
                cJSON_AddItemToObject(t, "bytes", tb);
                cJSON_AddItemToArray(tops, t);
            }
            cJSON_AddItemToObject(e, "top_logprobs", tops);
            cJSON_AddItemToArray(content, e);
        }
    } else {
        cJSON *tokens = cJSON_GetObjectItem(lp, "tokens"), *lps = cJSON_GetObjectItem(lp, "token_logprobs");
        cJSON *tops = cJSON_GetObjectItem(lp, "top_logprobs"), *offs = cJSON_GetObjectItem(lp, "text_offset");
        for (int i = 0; i < n; i++) {
            cJSON *bytes = NULL;
            cJSON *tok = token_string(s, toks[i].id, &bytes);
            cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)*text_offset));
            *text_offset += (size_t)cJSON_GetArraySize(bytes);
            cJSON_Delete(bytes);
            cJSON_AddItemToArray(lps, cJSON_CreateNumber(toks[i].logprob));
            cJSON *top = cJSON_CreateObject();
            for (int k = 0; k < toks[i].n_top; k++) {
                cJSON *tt = token_string(s, toks[i].top[k].id, NULL);
                if (cJSON_IsString(tt) && !cJSON_GetObjectItemCaseSensitive(top, tt->valuestring))
                    cJSON_AddNumberToObject(top, tt->valuestring, toks[i].top[k].logprob);
                cJSON_Delete(tt);
            }
            cJSON_AddItemToArray(tops, top);
            cJSON_AddItemToArray(tokens, tok);
        }
    }
}

static cJSON *logprobs_new(bool chat)
{
    cJSON *lp = cJSON_CreateObject();
    if (chat) {
        cJSON_AddArrayToObject(lp, "content");
        cJSON_AddNullToObject(lp, "refusal");
    } else {
        cJSON_AddArrayToObject(lp, "tokens");
        cJSON_AddArrayToObject(lp, "token_logprobs");
        cJSON_AddArrayToObject(lp, "top_logprobs");
        cJSON_AddArrayToObject(lp, "text_offset");
    }
    return lp;
}

static cJSON *response_base(const request *r, const char *object)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)r->created);
    cJSON_AddStringToObject(o, "model", r->srv->cfg.model_id);
    cJSON_AddStringToObject(o, "system_fingerprint", "bitnet.c");
    return o;
}

static cJSON *usage_json(const request *r)
{
    int p = 0, g = 0, cached = 0;
    for (int i = 0; i < r->n_choices; i++) {
        p += r->choices[i].n_prompt;
        g += r->choices[i].task.n_generated;
        cached += r->choices[i].task.n_cached;
    }
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", p);
    cJSON_AddNumberToObject(u, "completion_tokens", g);
    cJSON_AddNumberToObject(u, "total_tokens", p + g);
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", cached);
    return u;
}

static const char *finish_name(srv_finish f)
{
    return f == SRV_FINISH_LENGTH ? "length" : "stop";
}

/* One streamed chunk for choice i: text (or a finish reason) and tokens' log-probabilities. */
static cJSON *stream_chunk(const request *r, int i, const char *text, size_t len, const srv_tokinfo *toks,
                           int n_toks, const char *finish, bool role)
{
    cJSON *o = response_base(r, r->chat ? "chat.completion.chunk" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, ch);
    cJSON_AddNumberToObject(ch, "index", i);
    char *t = malloc(len + 1);
    if (t) {
        memcpy(t, text, len);
        t[len] = '\0';
    }
    if (r->chat) {
        cJSON *delta = cJSON_AddObjectToObject(ch, "delta");
        if (role) cJSON_AddStringToObject(delta, "role", "assistant");
        if (!finish) cJSON_AddStringToObject(delta, "content", t ? t : "");
    } else {
        cJSON_AddStringToObject(ch, "text", t ? t : "");
    }
    free(t);
    if (n_toks > 0 && r->params.top_logprobs >= 0) {
        cJSON *lp = logprobs_new(r->chat);
        size_t off = r->choices[i].text_offset;
        logprobs_add(r, lp, toks, n_toks, &off);
        r->choices[i].text_offset = off;
        cJSON_AddItemToObject(ch, "logprobs", lp);
    } else {
        cJSON_AddNullToObject(ch, "logprobs");
    }
    if (finish)
        cJSON_AddStringToObject(ch, "finish_reason", finish);
    else
        cJSON_AddNullToObject(ch, "finish_reason");
    if (r->include_usage) cJSON_AddNullToObject(o, "usage");
    return o;
}

/* ---- scheduler callbacks (scheduler thread) ---------------------------------------------------- */

/* Appends text to a choice's buffer (r->mu held); false when out of memory. */
static bool choice_text_append(choice *c, const char *text, size_t len)
{
    if (c->len + len + 1 > c->cap) {
        size_t cap = (c->len + len + 1) * 2;
        char *nb = realloc(c->text, cap);
        if (!nb) return false;
        c->text = nb;
        c->cap = cap;
    }
    memcpy(c->text + c->len, text, len);
    c->len += len;
    c->text[c->len] = '\0';
    return true;
}

/* A stream's text and tokens wait in their choice until the connection thread sends (at most once
 * per stream_interval): then all that came since goes out as one chunk, made there.  So the
 * scheduler thread, which every batched pass waits for, only copies bytes (building and printing
 * a JSON chunk per token cost it ~3.5 us, as long as the sampling). */
static void pending_flush(request *r, int i)
{
    choice *c = &r->choices[i];
    if (c->len == 0 && c->n_toks == 0) return;
    out_event(r, stream_chunk(r, i, c->text ? c->text : "", c->len, c->toks, c->n_toks, NULL, false));
    c->len = 0;
    c->n_toks = 0;
}

static bool pending_any(const request *r)
{
    for (int i = 0; i < r->n_choices; i++)
        if (r->choices[i].len || r->choices[i].n_toks) return true;
    return false;
}

static void on_emit(srv_task *t, const char *text, size_t len, const srv_tokinfo *toks, int n_toks)
{
    choice *c = t->user;
    request *r = c->req;
    pthread_mutex_lock(&r->mu);
    if (!r->cancelled && !choice_text_append(c, text, len)) r->oom = true;
    if (r->stream) {
        if (n_toks > 0 && !r->cancelled) {
            if (c->n_toks + n_toks > c->cap_toks) {
                int cap = (c->n_toks + n_toks) * 2;
                srv_tokinfo *nt = realloc(c->toks, (size_t)cap * sizeof *nt);
                if (nt) {
                    c->toks = nt;
                    c->cap_toks = cap;
                }
            }
            if (c->n_toks + n_toks <= c->cap_toks) {
                memcpy(c->toks + c->n_toks, toks, (size_t)n_toks * sizeof *toks);
                c->n_toks += n_toks;
            } else {
                r->oom = true;
            }
        }
    } else if (n_toks > 0 && r->params.top_logprobs >= 0) {
        if (!c->logprobs) c->logprobs = logprobs_new(r->chat);
        logprobs_add(r, c->logprobs, toks, n_toks, &c->text_offset);
    }
    if (!r->holding) pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void on_finish(srv_task *t, srv_finish why, const char *error)
{
    choice *c = t->user;
    request *r = c->req;
    pthread_mutex_lock(&r->mu);
    c->done = true;
    c->why = why;
    if (error && why == SRV_FINISH_ERROR) {
        c->error = malloc(strlen(error) + 1);
        if (c->error) strcpy(c->error, error);
    }
    r->n_done++;
    if (r->stream && !r->cancelled) {
        pending_flush(r, t->index); /* the text before the finish */
        if (why == SRV_FINISH_STOP || why == SRV_FINISH_LENGTH) {
            out_event(r, stream_chunk(r, t->index, "", 0, NULL, 0, finish_name(why), false));
        } else {
            srv_error e;
            srv_error_set(&e, why == SRV_FINISH_ERROR ? 500 : 503, "server_error", NULL, NULL, "%s",
                          why == SRV_FINISH_ERROR ? (error ? error : "generation failed")
                                                  : "generation cancelled: the server is stopping");
            char *js = srv_error_json(&e);
            if (js) {
                out_append(r, "data: ", 6);
                out_append(r, js, strlen(js));
                out_append(r, "\n\n", 2);
                free(js);
            }
        }
        if (r->n_done == r->n_choices) {
            if (r->include_usage) {
                cJSON *o = response_base(r, r->chat ? "chat.completion.chunk" : "text_completion");
                cJSON_AddArrayToObject(o, "choices");
                cJSON_AddItemToObject(o, "usage", usage_json(r));
                out_event(r, o);
            }
            out_append(r, "data: [DONE]\n\n", 14);
        }
    }
    if (r->n_done == r->n_choices) r->finished = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    request_unref(r);
}

/* ---- waiting, with an eye on the client -------------------------------------------------------- */

/* True when the client closed its end (or the socket failed). */
static bool peer_gone(int fd)
{
    if (fd < 0) return false;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return true;
    if (p.revents & POLLIN) {
        char c;
        ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
    return false;
}

/* Waits up to 100 ms for news (r->mu held), and looks at the client every 100 ms (tokens may
 * arrive more often than that).  false: the client is gone. */
static bool wait_news(request *r)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += 100 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    double now = srv_now();
    if (now - r->peer_checked < 0.1) return true;
    r->peer_checked = now;
    pthread_mutex_unlock(&r->mu);
    bool gone = peer_gone(r->fd);
    pthread_mutex_lock(&r->mu);
    return !gone;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    request *r = cls;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        /* Nothing goes out sooner than stream_interval after the last send (the first chunk and the
         * end go at once), so that at thousands of tokens per second the connection thread and the
         * client wake once per few tokens, not once per token: on a small machine those wake-ups
         * took CPU from the forward pass.  The thread sleeps out the interval even when nothing
         * waits yet (tokens come faster than that), and while it does, new tokens do not signal
         * (r->holding); the end does, so the last chunk is never held (a held end would keep the
         * client's next request, and its slot, waiting). */
        double now = srv_now(), due = r->last_send + r->stream_interval;
        if (!r->finished && !r->cancelled && r->last_send > 0 && now < due && r->out_sent == r->out_len) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            long long ns = (long long)ts.tv_nsec + (long long)((due - now) * 1e9);
            ts.tv_sec += (time_t)(ns / 1000000000LL);
            ts.tv_nsec = (long)(ns % 1000000000LL);
            r->holding = true;
            pthread_cond_timedwait(&r->cv, &r->mu, &ts);
            r->holding = false;
            continue;
        }
        const bool pending = !r->cancelled && pending_any(r);
        if (r->out_sent < r->out_len || pending) {
            for (int i = 0; pending && i < r->n_choices; i++) pending_flush(r, i);
            if (r->out_sent < r->out_len) { /* else a chunk could not be made: r->oom, below */
                if (pending) r->last_send = now; /* text starts an interval (a chat's role chunk does not) */
                size_t n = r->out_len - r->out_sent;
                if (n > max) n = max;
                memcpy(buf, r->out + r->out_sent, n);
                r->out_sent += n;
                pthread_mutex_unlock(&r->mu);
                return (ssize_t)n;
            }
        }
        if (r->finished || r->oom) {
            bool oom = r->oom;
            pthread_mutex_unlock(&r->mu);
            return oom ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (!wait_news(r)) {
            pthread_mutex_unlock(&r->mu);
            request_cancel(r);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
}

static void stream_free(void *cls)
{
    request *r = cls;
    pthread_mutex_lock(&r->mu);
    bool finished = r->finished;
    pthread_mutex_unlock(&r->mu);
    if (!finished) request_cancel(r);
    request_unref(r);
}

/* ---- connections ------------------------------------------------------------------------------- */

typedef enum { R_NONE, R_HEALTH, R_METRICS, R_MODELS, R_MODEL, R_COMPLETIONS, R_CHAT } route;

typedef struct {
    route rt;
    srv_endpoint ep;
    char *body;
    size_t len, cap;
    bool too_large, responded;
    bool generating; /* counted in s->in_flight */
} conn_state;

static enum MHD_Result respond(srv_server *s, struct MHD_Connection *c, conn_state *cs, int status,
                               const char *ctype, char *body, const char *hdr, const char *hdr_value)
{
    if (!body) {
        status = 500;
        ctype = "application/json";
        static const char msg[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,"
                                  "\"code\":null}}";
        body = malloc(sizeof msg);
        if (body) memcpy(body, msg, sizeof msg);
    }
    struct MHD_Response *resp =
        body ? MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (hdr) MHD_add_response_header(resp, hdr, hdr_value);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    srv_metrics_request(&s->metrics, cs->ep, status);
    cs->responded = true;
    return ret;
}

static enum MHD_Result respond_error(srv_server *s, struct MHD_Connection *c, conn_state *cs, const srv_error *e)
{
    const char *hdr = NULL, *val = NULL;
    if (e->status == 503) {
        hdr = MHD_HTTP_HEADER_RETRY_AFTER;
        val = "1";
    } else if (e->status == 401) {
        hdr = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
        val = "Bearer";
    }
    return respond(s, c, cs, e->status, "application/json", srv_error_json(e), hdr, val);
}

static enum MHD_Result respond_simple_error(srv_server *s, struct MHD_Connection *c, conn_state *cs, int status,
                                            const char *type, const char *code, const char *msg)
{
    srv_error e;
    srv_error_set(&e, status, type, code, NULL, "%s", msg);
    return respond_error(s, c, cs, &e);
}

/* Compares in time that depends only on the key's length, not on where they differ. */
static bool key_matches(const char *given, const char *key)
{
    size_t gl = strlen(given), kl = strlen(key);
    volatile unsigned char diff = (unsigned char)(gl != kl);
    for (size_t i = 0; i < kl; i++) diff |= (unsigned char)key[i] ^ (unsigned char)(i < gl ? given[i] : 0);
    return diff == 0;
}

static bool authorized(const srv_server *s, struct MHD_Connection *c)
{
    if (!s->cfg.api_key) return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7)) return false;
    h += 7;
    while (*h == ' ') h++;
    return key_matches(h, s->cfg.api_key);
}

static route route_of(const char *url, srv_endpoint *ep)
{
    *ep = SRV_EP_OTHER;
    if (!strcmp(url, "/health")) return *ep = SRV_EP_HEALTH, R_HEALTH;
    if (!strcmp(url, "/metrics")) return *ep = SRV_EP_METRICS, R_METRICS;
    if (!strcmp(url, "/v1/models")) return *ep = SRV_EP_MODELS, R_MODELS;
    if (!strncmp(url, "/v1/models/", 11)) return *ep = SRV_EP_MODELS, R_MODEL;
    if (!strcmp(url, "/v1/completions")) return *ep = SRV_EP_COMPLETIONS, R_COMPLETIONS;
    if (!strcmp(url, "/v1/chat/completions")) return *ep = SRV_EP_CHAT, R_CHAT;
    return R_NONE;
}

static bool method_allowed(route rt, const char *method)
{
    bool post = rt == R_COMPLETIONS || rt == R_CHAT;
    return post ? !strcmp(method, "POST") : (!strcmp(method, "GET") || !strcmp(method, "HEAD"));
}

/* ---- endpoints --------------------------------------------------------------------------------- */

static cJSON *model_json(const srv_server *s)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", s->cfg.model_id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)s->created);
    cJSON_AddStringToObject(m, "owned_by", "bitnet");
    return m;
}

static enum MHD_Result handle_models(srv_server *s, struct MHD_Connection *c, conn_state *cs, const char *url)
{
    if (cs->rt == R_MODEL) {
        if (strcmp(url + 11, s->cfg.model_id)) {
            srv_error e;
            srv_error_set(&e, 404, "invalid_request_error", "model_not_found", "model",
                          "the model '%.200s' does not exist; this server has '%.100s'", url + 11, s->cfg.model_id);
            return respond_error(s, c, cs, &e);
        }
        cJSON *m = model_json(s);
        char *js = cJSON_PrintUnformatted(m);
        cJSON_Delete(m);
        return respond(s, c, cs, 200, "application/json", js, NULL, NULL);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "data"), model_json(s));
    char *js = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return respond(s, c, cs, 200, "application/json", js, NULL, NULL);
}

/* Tokenizes text (the tokenizer is shared by every connection thread: s->tok_mu held). */
static bitnet_status tokenize(srv_server *s, const char *text, int flags, bitnet_token **ids, int *n)
{
    size_t len = strlen(text), cap = len + 8, got = 0;
    *ids = NULL;
    *n = 0;
    for (int tries = 0; tries < 2; tries++) {
        bitnet_token *buf = malloc(cap * sizeof *buf);
        if (!buf) return BITNET_ERR_NOMEM;
        bitnet_status st = bitnet_tokenize(s->tok, text, len, flags, buf, cap, &got);
        if (st == BITNET_OK) {
            if (got > (size_t)0x7fffffff) {
                free(buf);
                return BITNET_ERR_RANGE;
            }
            *ids = buf;
            *n = (int)got;
            return BITNET_OK;
        }
        free(buf);
        if (st != BITNET_ERR_RANGE) return st;
        cap = got + 1;
    }
    return BITNET_ERR_INTERNAL;
}

static bool prompt_tokens(srv_server *s, request *r, int i, srv_error *e)
{
    choice *c = &r->choices[i];
    bitnet_status st;
    pthread_mutex_lock(&s->tok_mu);
    if (r->chat) {
        char *text = NULL;
        st = bitnet_chat_format(s->model, s->cfg.chat_template, r->params.msgs, r->params.n_msgs, true, &text);
        if (st == BITNET_OK) {
            st = tokenize(s, text, BITNET_TOKENIZE_ADD_BOS | BITNET_TOKENIZE_PARSE_SPECIAL, &c->task.prompt,
                          &c->task.n_prompt);
            /* a template that writes the BOS text itself would otherwise give two */
            bitnet_token bos = bitnet_tokenizer_bos(s->tok);
            if (st == BITNET_OK && c->task.n_prompt >= 2 && bos >= 0 && c->task.prompt[0] == bos &&
                c->task.prompt[1] == bos) {
                memmove(c->task.prompt, c->task.prompt + 1, (size_t)(c->task.n_prompt - 1) * sizeof *c->task.prompt);
                c->task.n_prompt--;
            }
        }
        bitnet_free_string(text);
    } else if (r->params.prompts[i].text) {
        st = tokenize(s, r->params.prompts[i].text, BITNET_TOKENIZE_ADD_BOS, &c->task.prompt, &c->task.n_prompt);
    } else {
        srv_prompt *p = &r->params.prompts[i];
        c->task.prompt = malloc((size_t)p->n_ids * sizeof *c->task.prompt);
        st = c->task.prompt ? BITNET_OK : BITNET_ERR_NOMEM;
        if (st == BITNET_OK) {
            memcpy(c->task.prompt, p->ids, (size_t)p->n_ids * sizeof *p->ids);
            c->task.n_prompt = p->n_ids;
        }
    }
    if (st != BITNET_OK)
        srv_error_set(e, st == BITNET_ERR_NOMEM ? 500 : 400, st == BITNET_ERR_NOMEM ? "server_error" : "invalid_request_error",
                      NULL, r->chat ? "messages" : "prompt", "%s", bitnet_last_error());
    pthread_mutex_unlock(&s->tok_mu);
    if (st != BITNET_OK) return false;
    if (c->task.n_prompt == 0) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", r->chat ? "messages" : "prompt",
                      "the prompt is empty");
        return false;
    }
    c->n_prompt = c->task.n_prompt;
    return true;
}

/* Sets up choice i's task: prompt, length limit, sampler. */
static bool choice_prepare(srv_server *s, request *r, int i, srv_error *e)
{
    choice *c = &r->choices[i];
    c->req = r;
    c->task.user = c;
    c->task.index = i;
    c->task.emit = on_emit;
    c->task.finish = on_finish;
    c->task.stop = (const char *const *)r->params.stop;
    c->task.n_stop = r->params.n_stop;
    c->task.top_logprobs = r->params.top_logprobs;
    atomic_init(&c->task.cancel, false);
    if (!prompt_tokens(s, r, i, e)) return false;
    int n_ctx = srv_sched_n_ctx(s->sched);
    long max_tokens = r->params.max_tokens;
    if (max_tokens < 0) max_tokens = r->chat ? n_ctx - c->n_prompt : 16;
    if ((long)c->n_prompt + max_tokens > n_ctx || c->n_prompt >= n_ctx) {
        srv_error_set(e, 400, "invalid_request_error", "context_length_exceeded", r->chat ? "messages" : "prompt",
                      "this server's context length is %d tokens per request; you requested %ld tokens (%d in the "
                      "prompt, %ld for the completion). Shorten the prompt or lower max_tokens.",
                      n_ctx, (long)c->n_prompt + max_tokens, c->n_prompt, max_tokens);
        return false;
    }
    c->task.max_tokens = (int)max_tokens;
    c->task.deadline = s->cfg.timeout_s > 0 ? srv_now() + s->cfg.timeout_s : 0;
    bitnet_sampler_params sp = r->params.sampling;
    if (!r->params.seed_given) sp.seed = next_random();
    if (bitnet_sampler_init(&sp, &c->task.sampler) != BITNET_OK) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", NULL, "%s", bitnet_last_error());
        return false;
    }
    return true;
}

static char *final_response(request *r)
{
    cJSON *o = response_base(r, r->chat ? "chat.completion" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    for (int i = 0; i < r->n_choices; i++) {
        choice *c = &r->choices[i];
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddNumberToObject(ch, "index", i);
        if (r->chat) {
            cJSON *msg = cJSON_AddObjectToObject(ch, "message");
            cJSON_AddStringToObject(msg, "role", "assistant");
            cJSON_AddStringToObject(msg, "content", c->text ? c->text : "");
            cJSON_AddNullToObject(msg, "refusal");
        } else {
            cJSON_AddStringToObject(ch, "text", c->text ? c->text : "");
        }
        if (r->params.top_logprobs >= 0) {
            if (!c->logprobs) c->logprobs = logprobs_new(r->chat);
            cJSON_AddItemToObject(ch, "logprobs", c->logprobs);
            c->logprobs = NULL;
        } else {
            cJSON_AddNullToObject(ch, "logprobs");
        }
        cJSON_AddStringToObject(ch, "finish_reason", finish_name(c->why));
        cJSON_AddItemToArray(choices, ch);
    }
    cJSON_AddItemToObject(o, "usage", usage_json(r));
    char *js = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return js;
}

static enum MHD_Result handle_generate(srv_server *s, struct MHD_Connection *c, conn_state *cs)
{
    srv_error e;
    bool chat = cs->rt == R_CHAT;
    request *r = calloc(1, sizeof *r);
    if (!r) return respond_simple_error(s, c, cs, 500, "server_error", NULL, "out of memory");
    if (!srv_params_parse(cs->body ? cs->body : "", cs->len, chat, s->n_vocab, &r->params, &e)) {
        free(r);
        return respond_error(s, c, cs, &e);
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    r->refs = 1;
    r->srv = s;
    r->chat = chat;
    r->stream = r->params.stream;
    r->include_usage = r->stream && r->params.include_usage;
    r->created = (long)time(NULL);
    snprintf(r->id, sizeof r->id, "%s%016llx%08llx", chat ? "chatcmpl-" : "cmpl-", (unsigned long long)next_random(),
             (unsigned long long)(next_random() & 0xffffffffu));
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->fd = ci ? ci->connect_fd : -1;
    r->stream_interval = s->cfg.stream_interval_ms * 1e-3;
    r->n_choices = chat ? 1 : r->params.n_prompts;
    r->choices = calloc((size_t)r->n_choices, sizeof *r->choices);
    if (!r->choices) {
        request_unref(r);
        return respond_simple_error(s, c, cs, 500, "server_error", NULL, "out of memory");
    }
    srv_task *tasks[SRV_MAX_PROMPTS];
    for (int i = 0; i < r->n_choices; i++) {
        if (!choice_prepare(s, r, i, &e)) {
            request_unref(r);
            return respond_error(s, c, cs, &e);
        }
        tasks[i] = &r->choices[i].task;
    }
    if (r->stream && r->chat) /* the role comes first, as OpenAI sends it */
        for (int i = 0; i < r->n_choices; i++) out_event(r, stream_chunk(r, i, "", 0, NULL, 0, NULL, true));

    r->refs += r->n_choices; /* before submitting: a task may finish at once */
    /* counted before the state is checked, so that shutdown cannot miss it */
    atomic_fetch_add(&s->in_flight, 1);
    cs->generating = true;
    if (atomic_load(&s->state) != SRV_READY || !srv_sched_submit(s->sched, tasks, r->n_choices)) {
        r->refs -= r->n_choices;
        atomic_fetch_sub(&s->in_flight, 1);
        cs->generating = false;
        bool draining = atomic_load(&s->state) != SRV_READY;
        request_unref(r);
        return respond_simple_error(s, c, cs, 503, "server_error", draining ? "server_shutting_down" : "queue_full",
                                    draining ? "the server is shutting down"
                                             : "the server is busy (the queue is full); retry later");
    }
    /* from here the scheduler owns prompts and samplers until each task finishes; shutdown
     * waits for this connection to complete */

    if (r->stream) {
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, r,
                                                                      stream_free);
        if (!resp) {
            request_cancel(r);
            request_unref(r);
            return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no"); /* nginx: pass events on at once */
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp); /* stream_free runs when MHD is done with it */
        srv_metrics_request(&s->metrics, cs->ep, 200);
        cs->responded = true;
        return ret;
    }

    pthread_mutex_lock(&r->mu);
    bool gone = false;
    while (!r->finished && !gone) gone = !wait_news(r);
    pthread_mutex_unlock(&r->mu);
    if (gone) {
        request_cancel(r);
        request_unref(r);
        srv_metrics_request(&s->metrics, cs->ep, 499); /* client closed the request, as nginx counts it */
        cs->responded = true;
        return MHD_NO;
    }
    enum MHD_Result ret;
    srv_finish worst = SRV_FINISH_STOP;
    const char *err = NULL;
    for (int i = 0; i < r->n_choices; i++)
        if (r->choices[i].why > worst) {
            worst = r->choices[i].why;
            err = r->choices[i].error;
        }
    if (r->oom)
        ret = respond_simple_error(s, c, cs, 500, "server_error", NULL, "out of memory");
    else if (worst == SRV_FINISH_ERROR)
        ret = respond_simple_error(s, c, cs, 500, "server_error", NULL, err ? err : "generation failed");
    else if (worst == SRV_FINISH_CANCELLED)
        ret = respond_simple_error(s, c, cs, 503, "server_error", "server_shutting_down",
                                   "generation cancelled: the server is stopping");
    else
        ret = respond(s, c, cs, 200, "application/json", final_response(r), NULL, NULL);
    request_unref(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    srv_server *s = cls;
    conn_state *cs = *con_cls;
    if (!cs) {
        cs = calloc(1, sizeof *cs);
        if (!cs) return MHD_NO;
        *con_cls = cs;
        cs->rt = route_of(url, &cs->ep);
        /* refuse early what will be refused anyway, without reading the body */
        if (cs->rt == R_NONE) {
            srv_error e;
            srv_error_set(&e, 404, "invalid_request_error", "not_found", NULL, "no endpoint %.16s %.200s", method, url);
            return respond_error(s, c, cs, &e);
        }
        if (!method_allowed(cs->rt, method)) {
            srv_error e;
            srv_error_set(&e, 405, "invalid_request_error", "method_not_allowed", NULL, "%.200s does not accept %.16s",
                          url, method);
            return respond(s, c, cs, 405, "application/json", srv_error_json(&e), MHD_HTTP_HEADER_ALLOW,
                           cs->rt == R_COMPLETIONS || cs->rt == R_CHAT ? "POST" : "GET, HEAD");
        }
        if (cs->rt != R_HEALTH && !authorized(s, c))
            return respond_simple_error(s, c, cs, 401, "invalid_request_error", "invalid_api_key",
                                        "missing or wrong API key: send 'Authorization: Bearer KEY'");
        const char *clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (clen && strtoull(clen, NULL, 10) > SRV_MAX_BODY)
            return respond_simple_error(s, c, cs, 413, "invalid_request_error", "request_too_large",
                                        "the request body is larger than 1 MiB");
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (cs->responded || cs->too_large) return MHD_YES;
        if (cs->len + n > SRV_MAX_BODY) {
            cs->too_large = true;
            free(cs->body);
            cs->body = NULL;
            cs->len = cs->cap = 0;
            return MHD_YES;
        }
        if (cs->len + n + 1 > cs->cap) {
            size_t cap = cs->cap ? cs->cap : 4096;
            while (cap < cs->len + n + 1) cap *= 2;
            char *nb = realloc(cs->body, cap);
            if (!nb) return MHD_NO;
            cs->body = nb;
            cs->cap = cap;
        }
        memcpy(cs->body + cs->len, upload_data, n);
        cs->len += n;
        cs->body[cs->len] = '\0';
        return MHD_YES;
    }
    if (cs->responded) return MHD_YES;
    if (cs->too_large)
        return respond_simple_error(s, c, cs, 413, "invalid_request_error", "request_too_large",
                                    "the request body is larger than 1 MiB");

    int state = atomic_load(&s->state);
    switch (cs->rt) {
    case R_HEALTH: {
        const char *body = state == SRV_READY ? "{\"status\":\"ok\"}"
                           : state == SRV_LOADING ? "{\"status\":\"loading\"}"
                                                  : "{\"status\":\"shutting down\"}";
        char *b = malloc(strlen(body) + 1);
        if (b) strcpy(b, body);
        return respond(s, c, cs, state == SRV_READY ? 200 : 503, "application/json", b,
                       state == SRV_READY ? NULL : MHD_HTTP_HEADER_RETRY_AFTER, "1");
    }
    case R_METRICS: {
        int queued = 0, active = 0, slots = 0;
        if (state != SRV_LOADING && s->sched) { /* sched is set before the state turns READY */
            srv_sched_stats(s->sched, &queued, &active);
            slots = srv_sched_n_slots(s->sched);
        }
        return respond(s, c, cs, 200, "text/plain; version=0.0.4", srv_metrics_render(&s->metrics, queued, active, slots),
                       NULL, NULL);
    }
    default:
        break;
    }
    if (state != SRV_READY)
        return respond_simple_error(s, c, cs, 503, "server_error", state == SRV_LOADING ? "model_loading" : "server_shutting_down",
                                    state == SRV_LOADING ? "the model is loading" : "the server is shutting down");
    if (cs->rt == R_MODELS || cs->rt == R_MODEL) return handle_models(s, c, cs, url);
    return handle_generate(s, c, cs);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    srv_server *s = cls;
    conn_state *cs = *con_cls;
    if (!cs) return;
    if (cs->generating) atomic_fetch_sub(&s->in_flight, 1);
    free(cs->body);
    free(cs);
    *con_cls = NULL;
}

/* ---- the daemon -------------------------------------------------------------------------------- */

bool srv_http_start(srv_server *s, char *err, size_t errlen)
{
    id_state = (uint64_t)time(NULL) * 0x100000001B3ull ^ (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)s;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    id_state ^= (uint64_t)ts.tv_nsec;

    char port[16];
    snprintf(port, sizeof port, "%d", s->cfg.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(s->cfg.host, port, &hints, &ai);
    if (rc != 0 || !ai) {
        snprintf(err, errlen, "cannot resolve host '%s': %s", s->cfg.host, gai_strerror(rc));
        return false;
    }
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    unsigned conn_limit = (unsigned)(s->cfg.n_parallel + s->cfg.max_queue + 64);
    s->daemon = MHD_start_daemon(flags, (uint16_t)s->cfg.port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                                 ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(s->cfg.timeout_s > 0 ? s->cfg.timeout_s : 0),
                                 MHD_OPTION_CONNECTION_LIMIT, conn_limit, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                 (size_t)(64 * 1024), MHD_OPTION_END);
    int saved = errno;
    freeaddrinfo(ai);
    if (!s->daemon) {
        snprintf(err, errlen, "cannot listen on %s:%d%s%s", s->cfg.host, s->cfg.port, saved ? ": " : "",
                 saved ? strerror(saved) : "");
        return false;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->cfg.port;
    return true;
}

void srv_http_stop(srv_server *s)
{
    if (s->daemon) MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
}
