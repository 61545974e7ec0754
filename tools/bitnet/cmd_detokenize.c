/* bitnet detokenize: the text of token ids.  Uses only the public API (bitnet.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bitnet detokenize [-m MODEL_OR_TOKENIZER] [--special] [IDS...]\n"
            "\n"
            "Prints the text of the token ids (arguments, or from stdin when none are given; ids may\n"
            "be separated by spaces, commas or newlines).  Invalid UTF-8 is shown as U+FFFD.\n"
            "\n"
            "options:\n"
            "  -m PATH      a model or vocab-only GGUF, a tokenizer.json, or a tiktoken file\n"
            "               (default: the bundled model)\n"
            "  --special    show control tokens such as <|eot_id|> (hidden by default)\n"
            "  --pretok NAME  as for bitnet tokenize (does not change decoding)\n"
            "  -h, --help   show this help\n");
}

/* Appends the ids found in s (separated by spaces, commas or newlines) to *ids. */
static bool parse_ids(const char *s, bitnet_token **ids, size_t *n, size_t *cap)
{
    while (*s) {
        if (*s == ' ' || *s == ',' || *s == '\n' || *s == '\t' || *s == '\r') {
            s++;
            continue;
        }
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > INT32_MAX) {
            fprintf(stderr, "bitnet: detokenize: '%.20s' is not a token id\n", s);
            return false;
        }
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            bitnet_token *m = realloc(*ids, nc * sizeof **ids);
            if (!m) {
                fprintf(stderr, "bitnet: out of memory\n");
                return false;
            }
            *ids = m;
            *cap = nc;
        }
        (*ids)[(*n)++] = (bitnet_token)v;
        s = end;
    }
    return true;
}

int cmd_detokenize(int argc, char **argv)
{
    const char *model = NULL;
    bool special = false, from_args = false;
    bitnet_token *ids = NULL;
    size_t n = 0, cap = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            free(ids);
            return 0;
        } else if (!strcmp(a, "-m") && i + 1 >= argc) {
            fprintf(stderr, "bitnet: %s needs a value\n", a);
            free(ids);
            return 2;
        } else if (!strcmp(a, "-m")) {
            model = argv[++i];
        } else if (!strcmp(a, "--special")) {
            special = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "bitnet: detokenize: unknown option '%s'\n", a);
            usage(stderr);
            free(ids);
            return 2;
        } else {
            from_args = true;
            if (!parse_ids(a, &ids, &n, &cap)) {
                free(ids);
                return 2;
            }
        }
    }
    if (!from_args) {
        char *in = cli_read_file("-", NULL);
        if (!in) return 1;
        bool ok = parse_ids(in, &ids, &n, &cap);
        free(in);
        if (!ok) {
            free(ids);
            return 2;
        }
    }
    if (!model) model = cli_default_model();
    if (!model) {
        fprintf(stderr, "bitnet: detokenize: no -m given and the bundled model was not found\n");
        free(ids);
        return 2;
    }
    bitnet_tokenizer *tok;
    /* decoding does not depend on how text is split: name a splitting so that a file whose own
     * pre-tokenizer we do not implement can still be decoded */
    if (bitnet_tokenizer_load(model, BITNET_PRETOK_DEFAULT, &tok) != BITNET_OK) {
        free(ids);
        return cli_fail("loading the tokenizer");
    }
    char *text = bitnet_detokenize(tok, ids, n, special);
    free(ids);
    if (!text) {
        bitnet_tokenizer_free(tok);
        return cli_fail("detokenizing");
    }
    fputs(text, stdout);
    putchar('\n');
    bitnet_free_string(text);
    bitnet_tokenizer_free(tok);
    return fflush(stdout) == 0 ? 0 : 1;
}
