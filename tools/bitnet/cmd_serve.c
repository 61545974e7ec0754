/* bitnet serve: the OpenAI-compatible HTTP server (see server.h and docs/server.md).
 * It listens first (so /health answers 503 while the model loads), then loads the model and
 * starts the slots.  SIGINT/SIGTERM: stop taking requests, finish the ones in flight, exit; a
 * second signal cancels what is still running. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "server.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bitnet serve [-m MODEL] [OPTIONS]\n"
            "\n"
            "An OpenAI-compatible HTTP server: /v1/completions, /v1/chat/completions, /v1/models,\n"
            "/health, /metrics.  Also installed as bitnet-server.\n"
            "\n"
            "  -m, --model PATH      GGUF model (default: the bundled tiny model)\n"
            "      --host HOST       address to bind (default 127.0.0.1; 0.0.0.0 for every interface)\n"
            "      --port N          port (default 8080; 0: any free port, printed at start)\n"
            "  -np, --parallel N     slots: requests generated at once, batched together (default 1)\n"
            "  -c, --ctx-size N      context (KV cache) tokens per slot (default: the model's, at most 4096)\n"
            "  -t, --threads N       threads for the forward pass (default: physical cores)\n"
            "  -b, --batch-size N    prompt tokens a slot adds to each batched pass (default 512): a\n"
            "                        longer prompt goes in pieces, the other slots' tokens with each\n"
            "      --max-queue N     requests that may wait for a slot; more get 503 (default 64)\n"
            "      --timeout S       close idle connections and end generations after S seconds (default 600)\n"
            "      --stream-interval MS  send a stream's text at most every MS milliseconds, as one chunk\n"
            "                        when tokens come faster (default 10; 0: each token's chunk at once;\n"
            "                        the first chunk and the end are never held)\n"
            "      --api-key KEY     require 'Authorization: Bearer KEY' (also $BITNET_API_KEY)\n"
            "      --alias NAME      the model's name in responses (default: the file name)\n"
            "      --chat-template NAME  bitnet, llama3 or chatml (default: the model's)\n"
            "      --no-cache-prompt re-evaluate every prompt instead of reusing the prefix a slot already\n"
            "                        holds (the cache is on by default; results are the same either way)\n");
}

static const char *base_name(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    const char *p = path + n;
    while (p > path && p[-1] != '/') p--;
    return p;
}

int cmd_serve(int argc, char **argv)
{
    srv_config cfg = {
        .host = "127.0.0.1",
        .port = 8080,
        .n_parallel = 1,
        .max_queue = 64,
        .timeout_s = 600,
        .stream_interval_ms = 10,
        .cache_prompt = true,
    };
    cfg.api_key = getenv("BITNET_API_KEY");
    if (cfg.api_key && !*cfg.api_key) cfg.api_key = NULL;
    long v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE() \
    do { \
        if (!val) { \
            fprintf(stderr, "bitnet serve: %s needs a value\n", a); \
            return 2; \
        } \
        i++; \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            NEED_VALUE();
            cfg.model_path = val;
        } else if (!strcmp(a, "--host")) {
            NEED_VALUE();
            cfg.host = val;
        } else if (!strcmp(a, "--port")) {
            NEED_VALUE();
            if (!cli_parse_int(a, val, 0, 65535, &v)) return 2;
            cfg.port = (int)v;
        } else if (!strcmp(a, "-np") || !strcmp(a, "--parallel")) {
            NEED_VALUE();
            if (!cli_parse_int(a, val, 1, 256, &v)) return 2;
            cfg.n_parallel = (int)v;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            NEED_VALUE();
            if (!cli_parse_int(a, val, 0, 1 << 20, &v)) return 2;
            cfg.n_ctx = (int)v;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            NEED_VALUE();
            if (!cli_parse_int(a, val, 0, 1024, &v)) return 2;
            cfg.n_threads = (int)v;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
            NEED_VALUE();
            if (!cli_parse_int(a, val, 1, 65536, &v)) return 2;
            cfg.batch_size = (int)v;
        } else if (!strcmp(a, "--max-queue")) {
            NEED_VALUE();
            if (!cli_parse_int(a, val, 0, 100000, &v)) return 2;
            cfg.max_queue = (int)v;
        } else if (!strcmp(a, "--timeout")) {
            NEED_VALUE();
            if (!cli_parse_int(a, val, 0, 7 * 24 * 3600, &v)) return 2;
            cfg.timeout_s = (int)v;
        } else if (!strcmp(a, "--stream-interval")) {
            NEED_VALUE();
            if (!cli_parse_int(a, val, 0, 1000, &v)) return 2;
            cfg.stream_interval_ms = (int)v;
        } else if (!strcmp(a, "--api-key")) {
            NEED_VALUE();
            cfg.api_key = *val ? val : NULL;
        } else if (!strcmp(a, "--alias")) {
            NEED_VALUE();
            cfg.model_id = val;
        } else if (!strcmp(a, "--chat-template")) {
            NEED_VALUE();
            cfg.chat_template = val;
        } else if (!strcmp(a, "--cache-prompt")) {
            cfg.cache_prompt = true;
        } else if (!strcmp(a, "--no-cache-prompt")) {
            cfg.cache_prompt = false;
        } else {
            fprintf(stderr, "bitnet serve: unknown option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
#undef NEED_VALUE
    }
    if (!cfg.model_path) cfg.model_path = cli_default_model();
    if (!cfg.model_path) {
        fprintf(stderr, "bitnet serve: no model given (-m MODEL) and the bundled model was not found\n");
        return 2;
    }
    if (!cfg.model_id) cfg.model_id = base_name(cfg.model_path);

    /* Signals are taken synchronously by this thread only; every thread started from here on
     * inherits the mask.  Writes to a client that left must not kill the process. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    static srv_server srv; /* connection threads hold its address until the daemon stops */
    memset(&srv, 0, sizeof srv);
    srv.cfg = cfg;
    srv_metrics_init(&srv.metrics);
    pthread_mutex_init(&srv.tok_mu, NULL);
    atomic_init(&srv.state, SRV_LOADING);
    atomic_init(&srv.in_flight, 0);
    char err[256];
    if (!srv_http_start(&srv, err, sizeof err)) {
        fprintf(stderr, "bitnet serve: %s\n", err);
        return 1;
    }
    fprintf(stderr, "bitnet serve: listening on http://%s%s%s:%d (loading %s)\n", strchr(cfg.host, ':') ? "[" : "",
            cfg.host, strchr(cfg.host, ':') ? "]" : "", srv.port, cfg.model_path);

    int rc = 0;
    bitnet_model_params mp;
    bitnet_model_params_default(&mp);
    if (bitnet_model_load(cfg.model_path, &mp, &srv.model) != BITNET_OK) {
        rc = cli_fail("loading the model");
        goto out;
    }
    srv.tok = bitnet_model_tokenizer(srv.model);
    bitnet_model_info info;
    if (bitnet_model_info_get(srv.model, &info) != BITNET_OK) {
        rc = cli_fail("model info");
        goto out;
    }
    srv.n_vocab = info.n_vocab;
    srv.created = (long)time(NULL);
    srv_sched_params sp = {
        .n_slots = cfg.n_parallel,
        .n_ctx = cfg.n_ctx,
        .n_threads = cfg.n_threads,
        .max_queue = cfg.max_queue,
        .prompt_piece = cfg.batch_size,
        .cache_prompt = cfg.cache_prompt,
    };
    if (srv_sched_init(srv.model, &sp, &srv.metrics, &srv.sched) != BITNET_OK) {
        rc = cli_fail("creating the slots");
        goto out;
    }
    atomic_store(&srv.state, SRV_READY);
    fprintf(stderr, "bitnet serve: ready: model '%s', %d slot%s of %d tokens%s\n", cfg.model_id, cfg.n_parallel,
            cfg.n_parallel == 1 ? "" : "s", srv_sched_n_ctx(srv.sched), cfg.api_key ? ", API key required" : "");

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    fprintf(stderr, "bitnet serve: %s: finishing %d request%s in flight (signal again to cancel them)\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", atomic_load(&srv.in_flight),
            atomic_load(&srv.in_flight) == 1 ? "" : "s");
    atomic_store(&srv.state, SRV_DRAINING);
    struct timespec tick = {0, 50 * 1000 * 1000};
    bool cancelled = false;
    while (atomic_load(&srv.in_flight) > 0) {
        if (!cancelled && sigtimedwait(&sigs, NULL, &tick) > 0) {
            fprintf(stderr, "bitnet serve: cancelling the requests in flight\n");
            srv_sched_cancel_all(srv.sched);
            cancelled = true;
        } else if (cancelled) {
            nanosleep(&tick, NULL);
        }
    }
out:
    srv_http_stop(&srv);
    srv_sched_free(srv.sched);
    bitnet_model_free(srv.model);
    pthread_mutex_destroy(&srv.tok_mu);
    srv_metrics_free(&srv.metrics);
    if (rc == 0) fprintf(stderr, "bitnet serve: stopped\n");
    return rc;
}
