/* bitnet eval: evaluates token ids as one batch and writes their logits (float32 little-endian,
 * [n_tokens][n_vocab]) — how our numbers are cross-checked against other engines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "cli.h"

static void eval_usage(FILE *f)
{
    fprintf(f, "usage: bitnet eval [-m MODEL] --tokens \"ID ID ...\" [options]\n\n"
               "Evaluates the ids as one batch (from position 0) and writes the logits of every position.\n\n"
               "  -m, --model PATH      GGUF model (default: the bundled model)\n"
               "      --tokens IDS      token ids separated by spaces or commas\n"
               "      --logits-out PATH write float32 little-endian logits [n_tokens][n_vocab] (atomically)\n"
               "      --greedy N        instead print N greedy ids that follow the tokens, one line\n"
               "  -t, --threads N       threads (default: physical cores)\n"
               "  -b, --batch N         tokens per forward pass (default: all at once, up to 512)\n"
               "      --kv f16|f32      KV cache precision (default f16)\n"
               "      --head q8_0|q6_k  requantise the output head at load\n"
               "      --match-reference reproduce bitnet.cpp bit for bit (f16 attention weights in\n"
               "                        single-token passes; results then depend on the batching)\n"
               "  -h, --help            this help\n");
}

static int parse_ids(const char *s, bitnet_token **out, int *n)
{
    size_t cap = 64;
    int count = 0;
    bitnet_token *ids = malloc(cap * sizeof *ids);
    if (!ids) return 1;
    while (*s) {
        while (*s == ' ' || *s == ',' || *s == '\t' || *s == '\n') s++;
        if (!*s) break;
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 0x7fffffff) {
            fprintf(stderr, "bitnet: --tokens: '%.20s' is not a token id\n", s);
            free(ids);
            return 2;
        }
        if ((size_t)count == cap) {
            bitnet_token *ni = realloc(ids, (cap *= 2) * sizeof *ids);
            if (!ni) {
                free(ids);
                return 1;
            }
            ids = ni;
        }
        ids[count++] = (bitnet_token)v;
        s = end;
    }
    *out = ids;
    *n = count;
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    const char *model = NULL, *tokens = NULL, *out_path = NULL;
    long greedy = -1, threads = 0, batch = 0;
    bitnet_kv_type kv = BITNET_KV_F16;
    bitnet_model_params mp;
    bitnet_model_params_default(&mp);
    bool match_reference = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            eval_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--match-reference")) {
            match_reference = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "bitnet: unknown option or missing value: '%s' (see --help)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--tokens")) tokens = v;
        else if (!strcmp(a, "--logits-out")) out_path = v;
        else if (!strcmp(a, "--greedy")) {
            if (!cli_parse_int(a, v, 0, 1 << 20, &greedy)) return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!cli_parse_int(a, v, 1, 256, &threads)) return 2;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch")) {
            if (!cli_parse_int(a, v, 1, 1 << 20, &batch)) return 2;
        } else if (!strcmp(a, "--head")) {
            if (!cli_parse_head(v, &mp.head_type)) return 2;
        } else if (!strcmp(a, "--kv")) {
            if (!cli_parse_kv(v, &kv)) return 2;
        } else {
            fprintf(stderr, "bitnet: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!tokens) {
        fprintf(stderr, "bitnet: eval needs --tokens\n");
        return 2;
    }
    if (!(model = cli_model_path(model))) return 1;
    if (!out_path && greedy < 0) {
        fprintf(stderr, "bitnet: eval needs --logits-out PATH or --greedy N\n");
        return 2;
    }
    bitnet_token *ids = NULL;
    int n = 0, rc = parse_ids(tokens, &ids, &n);
    if (rc) return rc;
    if (n == 0) {
        fprintf(stderr, "bitnet: --tokens has no ids\n");
        free(ids);
        return 2;
    }
    bitnet_model *m = NULL;
    bitnet_context *c = NULL;
    rc = 1;
    bitnet_context_params cp;
    bitnet_context_params_default(&cp);
    cp.n_threads = (int)threads;
    cp.kv_type = kv;
    cp.match_reference = match_reference;
    cp.n_batch = batch ? (int)batch : (n > 512 ? 512 : n);
    if (greedy > 0 || n > 4096) cp.n_ctx = n + (int)(greedy > 0 ? greedy : 0);
    if (bitnet_model_load(model, &mp, &m) != BITNET_OK) {
        rc = cli_fail("loading the model");
        goto done;
    }
    if (bitnet_context_init(m, &cp, &c) != BITNET_OK) {
        rc = cli_fail("creating a context");
        goto done;
    }
    bitnet_model_info info;
    bitnet_model_info_get(m, &info);
    if (bitnet_eval(c, ids, n, out_path != NULL) != BITNET_OK) {
        rc = cli_fail("evaluating");
        goto done;
    }
    if (out_path) {
        size_t nv = (size_t)info.n_vocab, bytes = (size_t)n * nv * sizeof(float);
        float *all = malloc(bytes);
        if (!all) goto done;
        for (int i = 0; i < n; i++) memcpy(all + (size_t)i * nv, bitnet_get_logits(c, i), nv * sizeof(float));
        bool ok = cli_write_file_atomic(out_path, all, bytes);
        free(all);
        if (!ok) goto done;
    }
    if (greedy >= 0) {
        for (long g = 0; g < greedy; g++) {
            const float *l = bitnet_get_logits(c, -1);
            bitnet_token best = 0;
            for (int v = 1; v < info.n_vocab; v++)
                if (l[v] > l[best]) best = v;
            printf(g ? " %d" : "%d", best);
            if (g + 1 < greedy && bitnet_eval(c, &best, 1, false) != BITNET_OK) {
                rc = cli_fail("evaluating");
                goto done;
            }
        }
        printf("\n");
    }
    rc = 0;
done:
    bitnet_context_free(c);
    bitnet_model_free(m);
    free(ids);
    return rc;
}
