/* SafeTensors reader: see safetensors.h for what is validated. */
#include "safetensors/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__EMSCRIPTEN__) && !defined(_WIN32)
#include <sys/mman.h>
#include <unistd.h>
#define BN_ST_HAVE_MADVISE 1
#endif

#include "common/error.h"
#include "common/file.h"
#include "common/fp16.h"
#include "common/mem.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[BN_ST_DTYPE_COUNT] = {
    [BN_ST_F32] = {"F32", 4},     [BN_ST_F16] = {"F16", 2},         [BN_ST_BF16] = {"BF16", 2},
    [BN_ST_U8] = {"U8", 1},       [BN_ST_I8] = {"I8", 1},           [BN_ST_BOOL] = {"BOOL", 1},
    [BN_ST_I16] = {"I16", 2},     [BN_ST_U16] = {"U16", 2},         [BN_ST_I32] = {"I32", 4},
    [BN_ST_U32] = {"U32", 4},     [BN_ST_I64] = {"I64", 8},         [BN_ST_U64] = {"U64", 8},
    [BN_ST_F64] = {"F64", 8},     [BN_ST_F8_E4M3] = {"F8_E4M3", 1}, [BN_ST_F8_E5M2] = {"F8_E5M2", 1},
};

const char *bn_st_dtype_name(bn_st_dtype t) { return (unsigned)t < BN_ST_DTYPE_COUNT ? dtypes[t].name : "?"; }
size_t bn_st_dtype_size(bn_st_dtype t) { return (unsigned)t < BN_ST_DTYPE_COUNT ? dtypes[t].size : 0; }

/* One mapped file with its metadata strings. */
typedef struct st_file {
    bn_mapfile map;
    int mapped; /* 1: map is ours to close */
    char *path; /* for messages */
    char **meta; /* key, value, key, value, ... */
    size_t n_meta;
} st_file;

struct bn_safetensors {
    st_file *files;
    int n_files;
    bn_st_tensor *ts; /* sorted by name */
    int64_t n_t, cap_t;
};

void bn_st_free(bn_safetensors *st)
{
    if (!st) return;
    for (int i = 0; i < st->n_files; i++) {
        st_file *f = &st->files[i];
        if (f->mapped) bn_mapfile_close(&f->map);
        bn_free(f->path);
        for (size_t k = 0; k < f->n_meta; k++) bn_free(f->meta[k]);
        bn_free(f->meta);
    }
    for (int64_t i = 0; i < st->n_t; i++) bn_free((char *)st->ts[i].name);
    bn_free(st->ts);
    bn_free(st->files);
    bn_free(st);
}

int64_t bn_st_n_tensors(const bn_safetensors *st) { return st ? st->n_t : 0; }
int bn_st_n_files(const bn_safetensors *st) { return st ? st->n_files : 0; }

const bn_st_tensor *bn_st_tensor_at(const bn_safetensors *st, int64_t i)
{
    return st && i >= 0 && i < st->n_t ? &st->ts[i] : NULL;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const bn_st_tensor *)a)->name, ((const bn_st_tensor *)b)->name);
}

const bn_st_tensor *bn_st_find(const bn_safetensors *st, const char *name)
{
    if (!st || !name || !st->n_t) return NULL;
    bn_st_tensor key = {.name = name};
    return bsearch(&key, st->ts, (size_t)st->n_t, sizeof key, cmp_name);
}

const char *bn_st_metadata(const bn_safetensors *st, const char *key)
{
    if (!st || !st->n_files || !key) return NULL;
    const st_file *f = &st->files[0];
    for (size_t k = 0; k + 1 < f->n_meta; k += 2)
        if (!strcmp(f->meta[k], key)) return f->meta[k + 1];
    return NULL;
}

bn_status bn_st_read_f32(const bn_st_tensor *t, int64_t first, int64_t n, float *dst)
{
    if (!t || (!dst && n)) return bn_error(BN_ERR_INVALID_ARG, "safetensors: NULL argument");
    if (first < 0 || n < 0 || first > t->n_elem || n > t->n_elem - first)
        return bn_error(BN_ERR_RANGE, "safetensors: elements [%lld, +%lld) are outside tensor '%s' (%lld elements)",
                        (long long)first, (long long)n, t->name, (long long)t->n_elem);
    const uint8_t *p = (const uint8_t *)t->data + (size_t)first * dtypes[t->dtype].size;
    switch (t->dtype) {
    case BN_ST_F32: memcpy(dst, p, (size_t)n * 4); break;
    case BN_ST_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = bn_fp16_to_fp32(h);
        }
        break;
    case BN_ST_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = bn_bf16_to_fp32(h);
        }
        break;
    case BN_ST_U8:
        for (int64_t i = 0; i < n; i++) dst[i] = (float)p[i];
        break;
    case BN_ST_I8:
        for (int64_t i = 0; i < n; i++) dst[i] = (float)(int8_t)p[i];
        break;
    default:
        return bn_error(BN_ERR_UNSUPPORTED, "safetensors: tensor '%s' has dtype %s, which cannot be read as float",
                        t->name, dtypes[t->dtype].name);
    }
    return BN_OK;
}

void bn_st_release_range(const bn_st_tensor *t, size_t offset, size_t n)
{
#ifdef BN_ST_HAVE_MADVISE
    if (!t || offset >= t->nbytes) return;
    if (n > t->nbytes - offset) n = t->nbytes - offset;
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0 || !n) return;
    /* only whole pages inside the range: a neighbour's pages stay as they are */
    uintptr_t start = (uintptr_t)t->data + offset;
    uintptr_t lo = (start + (uintptr_t)pg - 1) & ~(uintptr_t)(pg - 1);
    uintptr_t hi = (start + n) & ~(uintptr_t)(pg - 1);
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
#else
    (void)t;
    (void)offset;
    (void)n;
#endif
}

void bn_st_release(const bn_st_tensor *t)
{
    if (t) bn_st_release_range(t, 0, t->nbytes);
}

#if BITNET_WITH_HF
#include <cjson/cJSON.h>

/* ---- one file's header ---------------------------------------------------------------------- */

/* A JSON number that is a non-negative integer below 2^53 (exact in a double). */
static bool json_u53(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d) return false;
    *out = (uint64_t)d;
    return true;
}

static bn_status add_tensor(bn_safetensors *st, const bn_st_tensor *t)
{
    if (st->n_t == st->cap_t) {
        int64_t cap = st->cap_t ? 2 * st->cap_t : 64;
        bn_st_tensor *p = bn_realloc(st->ts, (size_t)cap * sizeof *p);
        if (!p) return BN_ERR_NOMEM;
        st->ts = p;
        st->cap_t = cap;
    }
    st->ts[st->n_t++] = *t;
    return BN_OK;
}

static bn_status parse_entry(bn_safetensors *st, int file, const cJSON *e, const uint8_t *data, uint64_t data_size,
                             bn_st_tensor *t)
{
    const char *fname = st->files[file].path;
    const char *name = e->string;
    if (!cJSON_IsObject(e)) return bn_error(BN_ERR_FORMAT, "%s: tensor '%.80s' is not an object", fname, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) return bn_error(BN_ERR_FORMAT, "%s: tensor '%.80s' has no dtype string", fname, name);
    int d = -1;
    for (int k = 0; k < BN_ST_DTYPE_COUNT; k++)
        if (!strcmp(dt->valuestring, dtypes[k].name)) d = k;
    if (d < 0)
        return bn_error(BN_ERR_UNSUPPORTED, "%s: tensor '%.80s' has unknown dtype '%.20s'", fname, name, dt->valuestring);
    t->dtype = (bn_st_dtype)d;
    if (!cJSON_IsArray(shape)) return bn_error(BN_ERR_FORMAT, "%s: tensor '%.80s' has no shape array", fname, name);
    int nd = cJSON_GetArraySize(shape);
    if (nd > BN_ST_MAX_DIMS)
        return bn_error(BN_ERR_UNSUPPORTED, "%s: tensor '%.80s' has %d dimensions (at most %d)", fname, name, nd,
                        BN_ST_MAX_DIMS);
    t->n_dims = nd;
    uint64_t n_elem = 1;
    const cJSON *it;
    int k = 0;
    cJSON_ArrayForEach(it, shape)
    {
        uint64_t v;
        if (!json_u53(it, &v))
            return bn_error(BN_ERR_FORMAT, "%s: tensor '%.80s' shape[%d] is not a non-negative integer", fname, name, k);
        t->shape[k++] = (int64_t)v;
        if (v && n_elem > (uint64_t)INT64_MAX / v)
            return bn_error(BN_ERR_FORMAT, "%s: tensor '%.80s' has too many elements", fname, name);
        n_elem *= v;
    }
    for (; k < BN_ST_MAX_DIMS; k++) t->shape[k] = 1;
    t->n_elem = (int64_t)n_elem;
    uint64_t begin, end;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_u53(cJSON_GetArrayItem(offs, 0), &begin) ||
        !json_u53(cJSON_GetArrayItem(offs, 1), &end))
        return bn_error(BN_ERR_FORMAT, "%s: tensor '%.80s' data_offsets is not a pair of non-negative integers", fname,
                        name);
    if (begin > end)
        return bn_error(BN_ERR_FORMAT, "%s: tensor '%.80s' data_offsets [%llu, %llu] end before they begin", fname, name,
                        (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return bn_error(BN_ERR_FORMAT,
                        "%s: tensor '%.80s' data_offsets [%llu, %llu] run past the data (%llu bytes; the file is "
                        "truncated?)",
                        fname, name, (unsigned long long)begin, (unsigned long long)end, (unsigned long long)data_size);
    size_t want;
    if (bn_mul_overflow((size_t)n_elem, dtypes[d].size, &want) || want != end - begin)
        return bn_error(BN_ERR_FORMAT, "%s: tensor '%.80s' is %s with %llu elements (%llu bytes) but data_offsets span %llu bytes",
                        fname, name, dtypes[d].name, (unsigned long long)n_elem,
                        (unsigned long long)(n_elem * dtypes[d].size), (unsigned long long)(end - begin));
    t->data = data + begin;
    t->nbytes = (size_t)(end - begin);
    t->file = file;
    return BN_OK;
}

static bn_status parse_metadata(st_file *f, const cJSON *m)
{
    if (!cJSON_IsObject(m)) return bn_error(BN_ERR_FORMAT, "%s: __metadata__ is not an object", f->path);
    int n = cJSON_GetArraySize(m);
    f->meta = bn_calloc((size_t)n * 2 + 1, sizeof(char *));
    if (!f->meta) return BN_ERR_NOMEM;
    const cJSON *it;
    cJSON_ArrayForEach(it, m)
    {
        if (!cJSON_IsString(it)) continue; /* the format allows only strings; ignore anything else */
        char *k = bn_strdup(it->string), *v = bn_strdup(it->valuestring);
        if (!k || !v) {
            bn_free(k);
            bn_free(v);
            return BN_ERR_NOMEM;
        }
        f->meta[f->n_meta++] = k;
        f->meta[f->n_meta++] = v;
    }
    return BN_OK;
}

typedef struct span {
    uint64_t begin, end;
    const char *name;
} span;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

/* Parses file `file` (already mapped) and appends its tensors. */
static bn_status parse_file(bn_safetensors *st, int file)
{
    st_file *f = &st->files[file];
    const uint8_t *p = f->map.data;
    size_t size = f->map.size;
    if (size < 8)
        return bn_error(BN_ERR_FORMAT, "%s: the file is %zu bytes; a safetensors file starts with an 8-byte header length",
                        f->path, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | p[i];
    if (hlen > size - 8)
        return bn_error(BN_ERR_FORMAT, "%s: the header length %llu runs past the end of the file (%zu bytes)", f->path,
                        (unsigned long long)hlen, size);
    if (hlen > BN_ST_MAX_HEADER)
        return bn_error(BN_ERR_FORMAT, "%s: the header length %llu exceeds the %u-byte limit", f->path,
                        (unsigned long long)hlen, BN_ST_MAX_HEADER);
    if (hlen < 2 || p[8] != '{')
        return bn_error(BN_ERR_FORMAT, "%s: the header does not start with a JSON object", f->path);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)p + 8, (size_t)hlen, &end, false);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= (const char *)p + 8 && at <= (const char *)p + 8 + hlen ? (size_t)(at - (const char *)p) : 8;
        return bn_error(BN_ERR_FORMAT, "%s: the header is not valid JSON (near byte %zu)", f->path, off);
    }
    bn_status st_ = BN_OK;
    /* anything after the object may only be padding spaces (writers align the data this way) */
    for (const char *q = end; q && q < (const char *)p + 8 + hlen && !st_; q++)
        if (*q != ' ' && *q != '\0' && *q != '\n' && *q != '\t' && *q != '\r')
            st_ = bn_error(BN_ERR_FORMAT, "%s: unexpected bytes after the header's JSON object (byte %zu)", f->path,
                           (size_t)(q - (const char *)p));
    if (!st_ && !cJSON_IsObject(root)) st_ = bn_error(BN_ERR_FORMAT, "%s: the header is not a JSON object", f->path);
    const uint8_t *data = p + 8 + hlen;
    uint64_t data_size = size - 8 - hlen;
    int64_t first = st->n_t;
    const cJSON *e;
    if (!st_) cJSON_ArrayForEach(e, root)
    {
        if (!strcmp(e->string, "__metadata__")) {
            if (f->meta) st_ = bn_error(BN_ERR_FORMAT, "%s: two __metadata__ entries", f->path);
            else st_ = parse_metadata(f, e);
            if (st_) break;
            continue;
        }
        bn_st_tensor t = {0};
        if ((st_ = parse_entry(st, file, e, data, data_size, &t))) break;
        if (!(t.name = bn_strdup(e->string))) {
            st_ = BN_ERR_NOMEM;
            break;
        }
        if ((st_ = add_tensor(st, &t))) {
            bn_free((char *)t.name);
            break;
        }
    }
    cJSON_Delete(root);
    if (st_) return st_;

    /* no two tensors of this file may share bytes */
    int64_t n = st->n_t - first;
    if (n > 1) {
        span *sp = bn_malloc((size_t)n * sizeof *sp);
        if (!sp) return BN_ERR_NOMEM;
        for (int64_t i = 0; i < n; i++) {
            const bn_st_tensor *t = &st->ts[first + i];
            uint64_t b = (uint64_t)((const uint8_t *)t->data - data);
            sp[i] = (span){b, b + t->nbytes, t->name};
        }
        qsort(sp, (size_t)n, sizeof *sp, cmp_span);
        const span *reach = NULL; /* the non-empty span seen so far that ends last */
        for (int64_t i = 0; i < n && !st_; i++) {
            if (sp[i].end == sp[i].begin) continue; /* empty tensors occupy nothing */
            if (reach && sp[i].begin < reach->end)
                st_ = bn_error(BN_ERR_FORMAT, "%s: tensors '%.80s' [%llu, %llu) and '%.80s' [%llu, %llu) overlap", f->path,
                               reach->name, (unsigned long long)reach->begin, (unsigned long long)reach->end, sp[i].name,
                               (unsigned long long)sp[i].begin, (unsigned long long)sp[i].end);
            if (!reach || sp[i].end > reach->end) reach = &sp[i];
        }
        bn_free(sp);
    }
    return st_;
}

/* Sorts the tensors by name and rejects duplicates (within or across files). */
static bn_status finish(bn_safetensors *st)
{
    if (st->n_t > 1) qsort(st->ts, (size_t)st->n_t, sizeof *st->ts, cmp_name);
    for (int64_t i = 1; i < st->n_t; i++)
        if (!strcmp(st->ts[i].name, st->ts[i - 1].name))
            return bn_error(BN_ERR_FORMAT, "tensor '%.80s' appears twice (in %s and %s)", st->ts[i].name,
                            st->files[st->ts[i - 1].file].path, st->files[st->ts[i].file].path);
    return BN_OK;
}

static bn_status new_set(int n_files, bn_safetensors **out)
{
    *out = NULL;
    bn_safetensors *st = bn_calloc(1, sizeof *st);
    if (!st) return BN_ERR_NOMEM;
    st->files = bn_calloc((size_t)n_files, sizeof *st->files);
    if (!st->files) {
        bn_free(st);
        return BN_ERR_NOMEM;
    }
    *out = st;
    return BN_OK;
}

bn_status bn_st_open_memory(const void *data, size_t size, bn_safetensors **out)
{
    if (!out || (!data && size)) return bn_error(BN_ERR_INVALID_ARG, "safetensors: NULL argument");
    *out = NULL;
    bn_safetensors *st;
    bn_status s = new_set(1, &st);
    if (s) return s;
    st->n_files = 1;
    st->files[0].map.data = data ? data : (const uint8_t *)"";
    st->files[0].map.size = size;
    if (!(st->files[0].path = bn_strdup("(memory)"))) s = BN_ERR_NOMEM;
    if (!s) s = parse_file(st, 0);
    if (!s) s = finish(st);
    if (s) {
        bn_st_free(st);
        return s;
    }
    *out = st;
    return BN_OK;
}

static bn_status open_file(bn_safetensors *st, const char *path)
{
    st_file *f = &st->files[st->n_files];
    if (!(f->path = bn_strdup(path))) return BN_ERR_NOMEM;
    st->n_files++;
    bn_status s = bn_mapfile_open(&f->map, path);
    if (s) return s;
    f->mapped = 1;
    return parse_file(st, st->n_files - 1);
}

bn_status bn_st_open(const char *path, bn_safetensors **out)
{
    if (!out || !path) return bn_error(BN_ERR_INVALID_ARG, "safetensors: NULL argument");
    *out = NULL;
    bn_safetensors *st;
    bn_status s = new_set(1, &st);
    if (s) return s;
    if (!(s = open_file(st, path))) s = finish(st);
    if (s) {
        bn_st_free(st);
        return s;
    }
    *out = st;
    return BN_OK;
}

/* dir + "/" + name, malloc'd */
static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = bn_malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* A shard name must stay inside the checkpoint's folder. */
static bool safe_name(const char *s)
{
    if (!*s || s[0] == '/' || strchr(s, '\\')) return false;
    for (const char *p = s; *p; p = strchr(p, '/') ? strchr(p, '/') + 1 : p + strlen(p))
        if (!strncmp(p, "..", 2) && (p[2] == '/' || p[2] == '\0')) return false;
    return true;
}

bn_status bn_st_open_index(const char *index_path, bn_safetensors **out)
{
    if (!out || !index_path) return bn_error(BN_ERR_INVALID_ARG, "safetensors: NULL argument");
    *out = NULL;
    bn_mapfile mf;
    bn_status s = bn_mapfile_open(&mf, index_path);
    if (s) return s;
    cJSON *root = cJSON_ParseWithLength((const char *)mf.data, mf.size);
    bn_mapfile_close(&mf);
    if (!root) return bn_error(BN_ERR_FORMAT, "%s: not valid JSON", index_path);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return bn_error(BN_ERR_FORMAT, "%s: no \"weight_map\" object", index_path);
    }
    /* the distinct shard names, in order of first appearance */
    int n_map = cJSON_GetArraySize(map);
    const char **names = bn_calloc((size_t)n_map + 1, sizeof *names);
    char *dir = bn_strdup(index_path);
    bn_safetensors *st = NULL;
    if (!names || !dir) s = BN_ERR_NOMEM;
    int n_names = 0;
    const cJSON *it;
    if (!s) cJSON_ArrayForEach(it, map)
    {
        if (!cJSON_IsString(it) || !safe_name(it->valuestring)) {
            s = bn_error(BN_ERR_FORMAT, "%s: weight_map entry '%.80s' does not name a file in the folder", index_path,
                         it->string);
            break;
        }
        int k = 0;
        while (k < n_names && strcmp(names[k], it->valuestring)) k++;
        if (k == n_names) names[n_names++] = it->valuestring;
    }
    if (!s && n_names == 0) s = bn_error(BN_ERR_FORMAT, "%s: weight_map is empty", index_path);
    if (!s) {
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        else strcpy(dir, ".");
        s = new_set(n_names, &st);
    }
    for (int k = 0; k < n_names && !s; k++) {
        char *path = join(dir, names[k]);
        s = path ? open_file(st, path) : BN_ERR_NOMEM;
        bn_free(path);
    }
    if (!s) s = finish(st);
    /* every tensor the map lists must be in the file it names */
    if (!s) cJSON_ArrayForEach(it, map)
    {
        const bn_st_tensor *t = bn_st_find(st, it->string);
        int k = 0;
        while (k < n_names && strcmp(names[k], it->valuestring)) k++;
        if (!t) {
            s = bn_error(BN_ERR_FORMAT, "%s: tensor '%.80s' is listed in weight_map but is not in %s", index_path,
                         it->string, it->valuestring);
            break;
        }
        if (t->file != k) {
            s = bn_error(BN_ERR_FORMAT, "%s: tensor '%.80s' is listed in %s but found in %s", index_path, it->string,
                         it->valuestring, st->files[t->file].path);
            break;
        }
    }
    cJSON_Delete(root);
    bn_free(names);
    bn_free(dir);
    if (s) {
        bn_st_free(st);
        return s;
    }
    *out = st;
    return BN_OK;
}

#include <dirent.h>
#include <sys/stat.h>

static bool is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

bn_status bn_st_open_dir(const char *dir, bn_safetensors **out)
{
    if (!out || !dir) return bn_error(BN_ERR_INVALID_ARG, "safetensors: NULL argument");
    *out = NULL;
    char *p = join(dir, "model.safetensors.index.json");
    if (!p) return BN_ERR_NOMEM;
    if (is_file(p)) {
        bn_status s = bn_st_open_index(p, out);
        bn_free(p);
        return s;
    }
    bn_free(p);
    if (!(p = join(dir, "model.safetensors"))) return BN_ERR_NOMEM;
    if (is_file(p)) {
        bn_status s = bn_st_open(p, out);
        bn_free(p);
        return s;
    }
    bn_free(p);
    /* otherwise exactly one *.safetensors file */
    DIR *d = opendir(dir);
    if (!d) return bn_error(BN_ERR_IO, "cannot read the folder '%s'", dir);
    char *found = NULL;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len > 12 && !strcmp(de->d_name + len - 12, ".safetensors")) {
            if (!n++) found = bn_strdup(de->d_name);
        }
    }
    closedir(d);
    if (n != 1) {
        bn_free(found);
        return n ? bn_error(BN_ERR_FORMAT, "%s: %d .safetensors files but no model.safetensors.index.json to say how they fit",
                            dir, n)
                 : bn_error(BN_ERR_NOT_FOUND, "%s: no model.safetensors, model.safetensors.index.json or *.safetensors", dir);
    }
    if (!found) return BN_ERR_NOMEM;
    p = join(dir, found);
    bn_free(found);
    if (!p) return BN_ERR_NOMEM;
    bn_status s = bn_st_open(p, out);
    bn_free(p);
    return s;
}

#else /* !BITNET_WITH_HF */

static bn_status no_hf(void)
{
    return bn_error(BN_ERR_UNSUPPORTED, "safetensors support needs a build with Hugging Face support (cJSON)");
}
bn_status bn_st_open(const char *path, bn_safetensors **out) { (void)path; if (out) *out = NULL; return no_hf(); }
bn_status bn_st_open_memory(const void *d, size_t n, bn_safetensors **out) { (void)d; (void)n; if (out) *out = NULL; return no_hf(); }
bn_status bn_st_open_dir(const char *dir, bn_safetensors **out) { (void)dir; if (out) *out = NULL; return no_hf(); }
bn_status bn_st_open_index(const char *p, bn_safetensors **out) { (void)p; if (out) *out = NULL; return no_hf(); }

#endif
