/* Helpers shared by the tokenizer tests: reading files and the llama.cpp vector format. */
#ifndef BN_TESTS_TOK_TEST_UTIL_H
#define BN_TESTS_TOK_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOK_DATA BITNET_TEST_DATA "/tokenizer/"
#define GGUF_DATA BITNET_TEST_DATA "/gguf/"

static inline char *tu_read_file(const char *path, size_t *len)
{
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    if (len) *len = (size_t)n;
    return buf;
}

/* One llama.cpp test case: input text and expected ids. */
typedef struct tu_case {
    const char *text;
    size_t len;
    int32_t ids[256];
    size_t n_ids;
} tu_case;

typedef struct tu_cases {
    char *inp, *out; /* file contents (the cases point into inp) */
    tu_case *c;
    size_t n;
} tu_cases;

/* Reads <name>.inp / <name>.out from tests/data/tokenizer; returns the number of cases (0 on error). */
static inline size_t tu_load_cases(const char *name, tu_cases *cs)
{
    char path[512];
    memset(cs, 0, sizeof *cs);
    snprintf(path, sizeof path, TOK_DATA "%s.inp", name);
    size_t inp_len = 0, out_len = 0;
    cs->inp = tu_read_file(path, &inp_len);
    snprintf(path, sizeof path, TOK_DATA "%s.out", name);
    cs->out = tu_read_file(path, &out_len);
    if (!cs->inp || !cs->out) return 0;
    static const char sep[] = "\n__ggml_vocab_test__\n";
    const size_t sep_len = sizeof sep - 1;
    cs->c = calloc(64, sizeof *cs->c);
    char *p = cs->inp, *end = cs->inp + inp_len;
    char *line = cs->out;
    while (p < end && cs->n < 64) {
        char *s = NULL;
        for (char *q = p; q + sep_len <= end; q++) {
            if (memcmp(q, sep, sep_len) == 0) {
                s = q;
                break;
            }
        }
        if (!s) break;
        tu_case *c = &cs->c[cs->n++];
        c->text = p;
        c->len = (size_t)(s - p);
        *s = '\0';
        p = s + sep_len;
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        char *tok = line, *e;
        for (;;) {
            long v = strtol(tok, &e, 10);
            if (e == tok) break;
            c->ids[c->n_ids++] = (int32_t)v;
            tok = e;
        }
        line = nl ? nl + 1 : line + strlen(line);
    }
    return cs->n;
}

static inline void tu_free_cases(tu_cases *cs)
{
    free(cs->inp);
    free(cs->out);
    free(cs->c);
}

#endif
