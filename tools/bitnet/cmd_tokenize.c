/* bitnet tokenize: the token ids of a text, with the tokenizer of a model GGUF, a vocab-only GGUF,
 * a Hugging Face tokenizer.json or a tiktoken file.  Uses only the public API (bitnet.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bitnet tokenize [-m MODEL_OR_TOKENIZER] [options] [TEXT... | -f FILE]\n"
            "\n"
            "Prints the token ids of TEXT (several arguments are joined with spaces; without TEXT or\n"
            "-f the text is read from stdin) separated by spaces on one line.\n"
            "\n"
            "options:\n"
            "  -m PATH          a model or vocab-only GGUF, a tokenizer.json, or a tiktoken file\n"
            "                   (default: the bundled model)\n"
            "  -f FILE          read the text from FILE ('-' for stdin)\n"
            "  --no-bos         do not prepend BOS (by default it is added when the vocabulary asks)\n"
            "  --parse-special  recognise special-token text such as <|eot_id|> in the input\n"
            "  --ids-only       print only the ids (no token count on stderr)\n"
            "  --show           print one token per line: id, tab, its text (escaped)\n"
            "  --pretok NAME    splitting for BPE vocabularies: auto, llama3, gpt2, default\n"
            "  -h, --help       show this help\n");
}

static bool parse_pretok(const char *s, bitnet_pretokenizer *out)
{
    static const struct {
        const char *name;
        bitnet_pretokenizer p;
    } names[] = {{"auto", BITNET_PRETOK_AUTO},
                 {"llama3", BITNET_PRETOK_LLAMA3},
                 {"gpt2", BITNET_PRETOK_GPT2},
                 {"default", BITNET_PRETOK_DEFAULT}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].p;
            return true;
        }
    }
    fprintf(stderr, "bitnet: --pretok expects auto, llama3, gpt2 or default, got '%s'\n", s);
    return false;
}

/* Token text with bytes that would garble a terminal shown as escapes. */
static void print_escaped(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c == '\\') fputs("\\\\", stdout);
        else if (c < 0x20 || c == 0x7F) printf("\\x%02x", c);
        else putchar(c);
    }
}

int cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *file = NULL;
    bool no_bos = false, special = false, ids_only = false, show = false;
    bitnet_pretokenizer pretok = BITNET_PRETOK_AUTO;
    char *joined = NULL;
    size_t joined_len = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            free(joined);
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "-f") || !strcmp(a, "--pretok")) && i + 1 >= argc) {
            fprintf(stderr, "bitnet: %s needs a value\n", a);
            free(joined);
            return 2;
        } else if (!strcmp(a, "-m")) {
            model = argv[++i];
        } else if (!strcmp(a, "-f")) {
            file = argv[++i];
        } else if (!strcmp(a, "--pretok")) {
            if (!parse_pretok(argv[++i], &pretok)) {
                free(joined);
                return 2;
            }
        } else if (!strcmp(a, "--no-bos")) {
            no_bos = true;
        } else if (!strcmp(a, "--parse-special")) {
            special = true;
        } else if (!strcmp(a, "--ids-only")) {
            ids_only = true;
        } else if (!strcmp(a, "--show")) {
            show = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "bitnet: tokenize: unknown option '%s'\n", a);
            usage(stderr);
            free(joined);
            return 2;
        } else {
            size_t n = strlen(a);
            char *nj = realloc(joined, joined_len + n + 2);
            if (!nj) {
                free(joined);
                fprintf(stderr, "bitnet: out of memory\n");
                return 1;
            }
            joined = nj;
            if (joined_len) joined[joined_len++] = ' ';
            memcpy(joined + joined_len, a, n + 1);
            joined_len += n;
        }
    }
    if (joined && file) {
        fprintf(stderr, "bitnet: tokenize: give TEXT or -f FILE, not both\n");
        free(joined);
        return 2;
    }
    if (!model) model = cli_default_model();
    if (!model) {
        fprintf(stderr, "bitnet: tokenize: no -m given and the bundled model was not found\n");
        free(joined);
        return 2;
    }
    char *text = joined;
    size_t len = joined_len;
    if (!text) {
        text = cli_read_file(file ? file : "-", &len);
        if (!text) return 1;
    }

    bitnet_tokenizer *tok;
    if (bitnet_tokenizer_load(model, pretok, &tok) != BITNET_OK) {
        free(text);
        return cli_fail("loading the tokenizer");
    }
    int flags = (no_bos ? BITNET_TOKENIZE_NO_BOS : BITNET_TOKENIZE_ADD_BOS) | (special ? BITNET_TOKENIZE_PARSE_SPECIAL : 0);
    size_t n = 0, cap = len + 16;
    bitnet_token *ids = malloc(cap * sizeof *ids);
    bitnet_status st = ids ? bitnet_tokenize(tok, text, len, flags, ids, cap, &n) : BITNET_ERR_NOMEM;
    if (st == BITNET_ERR_RANGE) { /* cannot happen (a token covers at least one byte), but be exact */
        bitnet_token *more = realloc(ids, n * sizeof *ids);
        if (more) {
            ids = more;
            cap = n;
            st = bitnet_tokenize(tok, text, len, flags, ids, cap, &n);
        }
    }
    free(text);
    if (st != BITNET_OK) {
        free(ids);
        bitnet_tokenizer_free(tok);
        return cli_fail("tokenizing");
    }
    if (show) {
        for (size_t i = 0; i < n; i++) {
            const char *b;
            size_t bl;
            printf("%d\t", (int)ids[i]);
            if (bitnet_token_bytes(tok, ids[i], true, &b, &bl) == BITNET_OK) print_escaped(b, bl);
            putchar('\n');
        }
    } else {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
        putchar('\n');
    }
    if (!ids_only) fprintf(stderr, "%zu tokens\n", n);
    free(ids);
    bitnet_tokenizer_free(tok);
    return fflush(stdout) == 0 ? 0 : 1;
}
