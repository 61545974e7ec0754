/* bitnet perplexity: llama.cpp's perplexity method through the public API.
 *
 * The whole text is tokenized once (with BOS in front when the vocabulary asks for one) and cut
 * into non-overlapping chunks of c tokens; a trailing partial chunk is dropped.  Each chunk is
 * evaluated from an empty cache, with its first token replaced by BOS when the vocabulary adds
 * BOS (as llama.cpp does), and the loss counts only the second half: the predictions of tokens
 * c/2+1 .. c-1 from the logits at positions c/2 .. c-2, so every scored token has at least c/2
 * tokens of context.  PPL = exp(mean loss); its standard error is
 * PPL * sqrt(var(loss) / (N - 1)) over the N scored tokens, as llama.cpp prints it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bitnet perplexity -m MODEL -f TEXT [-c 512] [--batch N] [-t N]\n"
            "\n"
            "Perplexity of MODEL (GGUF file or Hugging Face folder) on the text in TEXT, computed as\n"
            "llama.cpp's perplexity tool does: non-overlapping chunks of c tokens, each starting with\n"
            "BOS, loss over the second half of each chunk.  Prints the running value after each\n"
            "chunk and the final value with its standard error.\n"
            "\n"
            "options:\n"
            "  -m, --model PATH   the model\n"
            "  -f, --file PATH    the text ('-' for stdin)\n"
            "  -c, --ctx N        tokens per chunk (default 512)\n"
            "  -b, --batch N      tokens per forward pass (default 512)\n"
            "  -t, --threads N    threads (default: physical cores)\n"
            "      --head q8_0|q6_k  requantise the output head at load (to measure its cost)\n"
            "  -h, --help         show this help\n");
}

int cmd_perplexity(int argc, char **argv)
{
    const char *model_path = NULL, *text_path = NULL;
    long n_ctx = 512, n_batch = 512, n_threads = 0;
    bitnet_model_params mp;
    bitnet_model_params_default(&mp);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        bool known = !strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "-f") || !strcmp(a, "--file") ||
                     !strcmp(a, "-c") || !strcmp(a, "--ctx") || !strcmp(a, "-b") || !strcmp(a, "--batch") ||
                     !strcmp(a, "-t") || !strcmp(a, "--threads") || !strcmp(a, "--head");
        if (!known) {
            fprintf(stderr, "bitnet: perplexity: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bitnet: %s needs a value\n", a);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) text_path = v;
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            if (!cli_parse_int(a, v, 4, 1 << 20, &n_ctx)) return 2;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch")) {
            if (!cli_parse_int(a, v, 1, 1 << 20, &n_batch)) return 2;
        } else if (!strcmp(a, "--head")) {
            if (!cli_parse_head(v, &mp.head_type)) return 2;
        } else if (!cli_parse_int(a, v, 0, 1024, &n_threads)) {
            return 2;
        }
    }
    if (!model_path) model_path = cli_default_model();
    if (!model_path || !text_path) {
        fprintf(stderr, "bitnet: perplexity needs -m MODEL and -f TEXT\n");
        usage(stderr);
        return 2;
    }
    size_t len;
    char *text = cli_read_file(text_path, &len);
    if (!text) return 1;
    bitnet_model *m;
    if (bitnet_model_load(model_path, &mp, &m) != BITNET_OK) {
        free(text);
        return cli_fail(model_path);
    }
    const bitnet_tokenizer *tok = bitnet_model_tokenizer(m);
    int rc = 1;
    bitnet_token *ids = NULL;
    bitnet_context *ctx = NULL;
    size_t n_ids = 0, cap = len + 16;
    ids = malloc(cap * sizeof *ids);
    bitnet_status st = ids ? bitnet_tokenize(tok, text, len, BITNET_TOKENIZE_ADD_BOS, ids, cap, &n_ids) : BITNET_ERR_NOMEM;
    if (st == BITNET_ERR_RANGE) { /* more tokens than bytes: only with odd vocabularies */
        free(ids);
        cap = n_ids;
        ids = malloc(cap * sizeof *ids);
        st = ids ? bitnet_tokenize(tok, text, len, BITNET_TOKENIZE_ADD_BOS, ids, cap, &n_ids) : BITNET_ERR_NOMEM;
    }
    free(text);
    if (st != BITNET_OK) {
        cli_fail("tokenize");
        goto done;
    }
    /* does this vocabulary add BOS?  then every chunk starts with it */
    bitnet_token probe[2];
    size_t n_probe = 0;
    bool add_bos = bitnet_tokenize(tok, "", 0, BITNET_TOKENIZE_ADD_BOS, probe, 2, &n_probe) == BITNET_OK && n_probe == 1;
    bitnet_token bos = bitnet_tokenizer_bos(tok);
    int c = (int)n_ctx;
    size_t n_chunks = n_ids / (size_t)c;
    if (n_chunks == 0) {
        fprintf(stderr, "bitnet: perplexity: the text has %zu tokens, fewer than one chunk of %d (use a smaller -c)\n",
                n_ids, c);
        goto done;
    }
    bitnet_context_params cp;
    bitnet_context_params_default(&cp);
    cp.n_ctx = c;
    cp.n_batch = (int)n_batch;
    cp.n_threads = (int)n_threads;
    if (bitnet_context_init(m, &cp, &ctx) != BITNET_OK) {
        cli_fail("context");
        goto done;
    }
    int n_vocab = bitnet_tokenizer_n_vocab(tok);
    bitnet_model_info info;
    if (bitnet_model_info_get(m, &info) == BITNET_OK) n_vocab = info.n_vocab;
    int first = c / 2;
    fprintf(stderr, "perplexity: %zu tokens, %zu chunks of %d, loss over positions %d..%d of each\n", n_ids, n_chunks,
            c, first + 1, c - 1);
    double nll = 0, nll2 = 0;
    size_t count = 0;
    double t0 = cli_now();
    for (size_t k = 0; k < n_chunks; k++) {
        bitnet_token *chunk = ids + k * (size_t)c;
        bitnet_token saved = chunk[0];
        if (add_bos && bos >= 0) chunk[0] = bos;
        if (bitnet_context_truncate(ctx, 0) != BITNET_OK || bitnet_eval(ctx, chunk, c, true) != BITNET_OK) {
            chunk[0] = saved;
            cli_fail("eval");
            goto done;
        }
        chunk[0] = saved;
        for (int j = first; j < c - 1; j++) {
            const float *lg = bitnet_get_logits(ctx, j);
            double mx = lg[0];
            for (int v = 1; v < n_vocab; v++)
                if (lg[v] > mx) mx = lg[v];
            double sum = 0;
            for (int v = 0; v < n_vocab; v++) sum += exp((double)lg[v] - mx);
            double loss = log(sum) + mx - (double)lg[chunk[j + 1]];
            nll += loss;
            nll2 += loss * loss;
            count++;
        }
        printf("[%zu]%.4f,", k + 1, exp(nll / (double)count));
        fflush(stdout);
    }
    printf("\n");
    double mean = nll / (double)count, var = nll2 / (double)count - mean * mean;
    double ppl = exp(mean);
    double se = count > 1 && var > 0 ? ppl * sqrt(var / (double)(count - 1)) : 0;
    printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, se);
    fprintf(stderr, "perplexity: %zu scored tokens, %.2f s\n", count, cli_now() - t0);
    rc = 0;
done:
    bitnet_context_free(ctx);
    bitnet_model_free(m);
    free(ids);
    return rc;
}
