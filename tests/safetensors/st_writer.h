/* Test helper: writes small SafeTensors files (and raw variants with a hand-made header) so the
 * reader and the Hugging Face converter can be tested on synthetic checkpoints. */
#ifndef BN_TEST_ST_WRITER_H
#define BN_TEST_ST_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct st_entry {
    const char *name;
    const char *dtype; /* "F32", "BF16", ... */
    int n_dims;
    int64_t shape[4];
    const void *data;
    size_t nbytes;
} st_entry;

/* Writes 8-byte length + header + data exactly as given (no checks: tests make bad files). */
static inline bool st_write_raw(const char *path, const char *header, size_t hlen, uint64_t declared_len,
                                const void *data, size_t nbytes)
{
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(declared_len >> (8 * i));
    bool ok = fwrite(len, 1, 8, f) == 8 && fwrite(header, 1, hlen, f) == hlen &&
              (nbytes == 0 || fwrite(data, 1, nbytes, f) == nbytes);
    return fclose(f) == 0 && ok;
}

/* A well-formed file: tensors stored back to back in the given order, header padded to 8. */
static inline bool st_write(const char *path, const st_entry *e, int n)
{
    size_t cap = 256 + (size_t)n * 256, o = 0, off = 0;
    char *h = malloc(cap);
    if (!h) return false;
    o += (size_t)snprintf(h + o, cap - o, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        o += (size_t)snprintf(h + o, cap - o, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", e[i].name, e[i].dtype);
        for (int d = 0; d < e[i].n_dims; d++) o += (size_t)snprintf(h + o, cap - o, "%s%lld", d ? "," : "", (long long)e[i].shape[d]);
        o += (size_t)snprintf(h + o, cap - o, "],\"data_offsets\":[%zu,%zu]}", off, off + e[i].nbytes);
        off += e[i].nbytes;
    }
    o += (size_t)snprintf(h + o, cap - o, "}");
    while (o % 8) h[o++] = ' ';
    uint8_t *data = malloc(off ? off : 1);
    if (!data) {
        free(h);
        return false;
    }
    off = 0;
    for (int i = 0; i < n; i++) {
        if (e[i].nbytes) memcpy(data + off, e[i].data, e[i].nbytes);
        off += e[i].nbytes;
    }
    bool ok = st_write_raw(path, h, o, o, data, off);
    free(h);
    free(data);
    return ok;
}

static inline bool write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    size_t n = strlen(text);
    bool ok = fwrite(text, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

#endif
