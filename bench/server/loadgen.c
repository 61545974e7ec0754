/* Load generator for bench/server/run.sh, in C so that it costs the (small, shared) machine little:
 * C concurrent clients, each sending R streamed completions one after another over plain HTTP/1.1.
 * Prints one JSON line like client.mjs: generated tokens (from each stream's usage), wall seconds,
 * aggregate tokens/s and time-to-first-token percentiles (first event with non-empty text).
 *
 *   loadgen BASE_URL CLIENTS REQUESTS_PER_CLIENT MAX_TOKENS [API_KEY]   (BASE_URL: http://HOST:PORT)
 *
 * One thread drives every connection with poll(); each request uses its own connection. */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 256

typedef struct {
    int fd;
    int done_requests; /* finished so far */
    double t0, ttft;   /* ttft < 0: no text yet */
    char *req;         /* request bytes; [sent, req_len) still to send */
    size_t req_len, sent;
    char *in; /* raw bytes received, not yet consumed */
    size_t in_len, in_cap;
    bool headers_done, chunked, eof;
    long chunk_left; /* bytes left in the current chunk; -1: a size line is next */
    char *body;      /* de-chunked body, events not yet consumed */
    size_t body_len, body_cap;
    long tokens; /* usage.completion_tokens of the current stream */
} client;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *msg, const char *detail)
{
    fprintf(stderr, "loadgen: %s%s%s\n", msg, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static void grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return;
    size_t nc = *cap ? *cap : 4096;
    while (nc < need) nc *= 2;
    char *nb = realloc(*buf, nc);
    if (!nb) die("out of memory", NULL);
    *buf = nb;
    *cap = nc;
}

static struct addrinfo *server_addr;

static void start_request(client *c, const char *host, int max_tokens, int seed, const char *key)
{
    char body[512], auth[600] = "";
    int bl = snprintf(body, sizeof body,
                      "{\"prompt\":\"In the beginning God created\",\"max_tokens\":%d,\"seed\":%d,"
                      "\"temperature\":0.8,\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
                      max_tokens, seed);
    if (key) snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", key);
    free(c->req);
    c->req = malloc(2048);
    if (!c->req) die("out of memory", NULL);
    c->req_len = (size_t)snprintf(c->req, 2048,
                                  "POST /v1/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                                  "%sContent-Length: %d\r\nConnection: close\r\n\r\n%s",
                                  host, auth, bl, body);
    c->sent = 0;
    c->in_len = c->body_len = 0;
    c->headers_done = c->chunked = c->eof = false;
    c->chunk_left = -1;
    c->tokens = 0;
    c->ttft = -1;
    c->t0 = now();
    c->fd = socket(server_addr->ai_family, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, server_addr->ai_addr, server_addr->ai_addrlen) != 0)
        die("cannot connect", strerror(errno));
}

/* Handles the complete events in the body: time to first text, usage. */
static void take_events(client *c)
{
    size_t at = 0;
    for (;;) {
        char *start = c->body + at, *end = NULL;
        for (size_t i = at; i + 1 < c->body_len; i++)
            if (c->body[i] == '\n' && c->body[i + 1] == '\n') {
                end = c->body + i;
                break;
            }
        if (!end) break;
        *end = '\0';
        if (!strncmp(start, "data: {\"error\"", 14)) die("the server sent an error", start + 6);
        if (c->ttft < 0) {
            const char *t = strstr(start, "\"text\":\"");
            if (t && t[8] != '"') c->ttft = now() - c->t0;
        }
        const char *u = strstr(start, "\"completion_tokens\":");
        if (u) c->tokens = strtol(u + 20, NULL, 10);
        at = (size_t)(end - c->body) + 2;
    }
    if (at == 0) return;
    memmove(c->body, c->body + at, c->body_len - at);
    c->body_len -= at;
}

static void body_add(client *c, const char *p, size_t n)
{
    grow(&c->body, &c->body_cap, c->body_len + n + 1);
    memcpy(c->body + c->body_len, p, n);
    c->body_len += n;
}

/* Consumes received bytes: headers once, then (chunked) body. */
static void take_input(client *c)
{
    size_t at = 0;
    if (!c->headers_done) {
        char *hend = NULL;
        for (size_t i = 0; i + 3 < c->in_len; i++)
            if (!memcmp(c->in + i, "\r\n\r\n", 4)) {
                hend = c->in + i;
                break;
            }
        if (!hend) return;
        *hend = '\0';
        if (strncmp(c->in, "HTTP/1.1 200", 12) && strncmp(c->in, "HTTP/1.0 200", 12)) {
            c->in[strcspn(c->in, "\r\n")] = '\0';
            die("request failed", c->in);
        }
        for (char *h = c->in; *h; h++) *h = (char)(*h >= 'A' && *h <= 'Z' ? *h + 32 : *h);
        c->chunked = strstr(c->in, "transfer-encoding: chunked") != NULL;
        c->headers_done = true;
        at = (size_t)(hend - c->in) + 4;
    }
    while (at < c->in_len) {
        if (!c->chunked) {
            body_add(c, c->in + at, c->in_len - at);
            at = c->in_len;
            break;
        }
        if (c->chunk_left < 0) { /* size line */
            char *nl = memchr(c->in + at, '\n', c->in_len - at);
            if (!nl) break;
            c->chunk_left = strtol(c->in + at, NULL, 16);
            at = (size_t)(nl - c->in) + 1;
            if (c->chunk_left == 0) {
                c->eof = true; /* last chunk: the trailer does not matter */
                at = c->in_len;
            }
            continue;
        }
        if (c->chunk_left > 0) {
            size_t n = c->in_len - at < (size_t)c->chunk_left ? c->in_len - at : (size_t)c->chunk_left;
            body_add(c, c->in + at, n);
            at += n;
            c->chunk_left -= (long)n;
            continue;
        }
        /* the CRLF after a chunk's data */
        if (c->in_len - at < 2) break;
        at += 2;
        c->chunk_left = -1;
    }
    memmove(c->in, c->in + at, c->in_len - at);
    c->in_len -= at;
    take_events(c);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The p-th percentile of n sorted values (nearest rank, as client.mjs takes it). */
static double pct(const double *v, int n, double p)
{
    int i = (int)ceil(p / 100.0 * n) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: loadgen BASE_URL CLIENTS REQUESTS_PER_CLIENT MAX_TOKENS [API_KEY]\n");
        return 2;
    }
    const char *base = argv[1], *key = argc > 5 ? argv[5] : NULL;
    int C = atoi(argv[2]), R = atoi(argv[3]), N = atoi(argv[4]);
    if (C < 1 || C > MAX_CLIENTS || R < 1 || N < 1) die("bad CLIENTS, REQUESTS_PER_CLIENT or MAX_TOKENS", NULL);
    if (strncmp(base, "http://", 7)) die("BASE_URL must start with http://", base);
    char host[256], port[16] = "80";
    snprintf(host, sizeof host, "%s", base + 7);
    char *slash = strchr(host, '/');
    if (slash) *slash = '\0';
    char *colon = strrchr(host, ':');
    if (colon) {
        snprintf(port, sizeof port, "%s", colon + 1);
        *colon = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (getaddrinfo(host, port, &hints, &server_addr) != 0) die("cannot resolve", host);
    if (colon) *colon = ':';

    client *cl = calloc((size_t)C, sizeof *cl);
    double *ttft = calloc((size_t)C * (size_t)R, sizeof *ttft);
    struct pollfd *pf = calloc((size_t)C, sizeof *pf);
    if (!cl || !ttft || !pf) die("out of memory", NULL);
    long tokens = 0;
    int n_results = 0, active = C;
    const double t_start = now();
    for (int i = 0; i < C; i++) start_request(&cl[i], host, N, 1000 * i + 1, key);
    while (active > 0) {
        for (int i = 0; i < C; i++) {
            pf[i].fd = cl[i].fd;
            pf[i].events = cl[i].fd < 0 ? 0 : cl[i].sent < cl[i].req_len ? POLLOUT : POLLIN;
        }
        if (poll(pf, (nfds_t)C, 60000) <= 0) die("no answer for 60 s", NULL);
        for (int i = 0; i < C; i++) {
            client *c = &cl[i];
            if (c->fd < 0 || !pf[i].revents) continue;
            if (c->sent < c->req_len) {
                ssize_t n = send(c->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);
                if (n < 0 && errno != EINTR && errno != EAGAIN) die("send failed", strerror(errno));
                if (n > 0) c->sent += (size_t)n;
                continue;
            }
            grow(&c->in, &c->in_cap, c->in_len + 65536);
            ssize_t n = recv(c->fd, c->in + c->in_len, 65536, 0);
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (n < 0) die("recv failed", strerror(errno));
            c->in_len += (size_t)n;
            take_input(c);
            if (n > 0 && !c->eof) continue;
            /* the stream is over */
            close(c->fd);
            c->fd = -1;
            if (!c->headers_done) die("the server closed the connection without an answer", NULL);
            tokens += c->tokens;
            ttft[n_results++] = c->ttft >= 0 ? c->ttft : now() - c->t0;
            if (++c->done_requests < R) start_request(c, host, N, 1000 * i + c->done_requests + 1, key);
            else active--;
        }
    }
    const double wall = now() - t_start;
    qsort(ttft, (size_t)n_results, sizeof *ttft, cmp_double);
    printf("{\"clients\":%d,\"requests\":%d,\"max_tokens\":%d,\"generated_tokens\":%ld,\"wall_seconds\":%.3f,"
           "\"tokens_per_second\":%.2f,\"ttft_p50_seconds\":%.4f,\"ttft_p99_seconds\":%.4f}\n",
           C, n_results, N, tokens, wall, (double)tokens / wall, pct(ttft, n_results, 50), pct(ttft, n_results, 99));
    for (int i = 0; i < C; i++) {
        free(cl[i].req);
        free(cl[i].in);
        free(cl[i].body);
    }
    free(cl);
    free(ttft);
    free(pf);
    freeaddrinfo(server_addr);
    return 0;
}
