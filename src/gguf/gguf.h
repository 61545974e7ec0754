/* GGUF v2/v3 reader and v3 writer.
 *
 * Reader: the file is memory-mapped read-only and validated completely by bn_gguf_open before
 * anything is returned: magic, version, every count and string length against the bytes that
 * remain, value types, alignment, tensor types, dimension products, data ranges inside the file
 * and aligned, duplicate names.  Errors name the field, the index and the byte offset.
 * Tensor data and string values point into the mapping (no copies); they live until bn_gguf_free.
 * Memory used beyond the mapping is bounded by O(number of keys + tensors + string-array elements),
 * each of which occupies at least 8 bytes of the file, so no file can make us allocate more than
 * a small multiple of its own size.
 *
 * Writer: collects metadata and tensors in memory (tensor data by pointer, not copied), then
 * writes a v3 file atomically (temp file beside the destination, fsync, rename). */
#ifndef BN_GGUF_GGUF_H
#define BN_GGUF_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "gguf/types.h"

#define BN_GGUF_MAX_DIMS 4
#define BN_GGUF_DEFAULT_ALIGNMENT 32
/* Most bytes of per-key, per-tensor and per-nested-array bookkeeping a reader may hold (besides one
 * 8-byte offset per string-array element, which the file pays 8 bytes for). */
#define BN_GGUF_BOOKKEEPING_LIMIT ((size_t)256 << 20)

/* Value types, numbered as in the GGUF specification. */
typedef enum bn_gguf_vtype {
    BN_GGUF_U8 = 0,
    BN_GGUF_I8 = 1,
    BN_GGUF_U16 = 2,
    BN_GGUF_I16 = 3,
    BN_GGUF_U32 = 4,
    BN_GGUF_I32 = 5,
    BN_GGUF_F32 = 6,
    BN_GGUF_BOOL = 7,
    BN_GGUF_STRING = 8,
    BN_GGUF_ARRAY = 9,
    BN_GGUF_U64 = 10,
    BN_GGUF_I64 = 11,
    BN_GGUF_F64 = 12,
    BN_GGUF_VTYPE_COUNT = 13
} bn_gguf_vtype;

const char *bn_gguf_vtype_name(bn_gguf_vtype t);

typedef struct bn_gguf bn_gguf;

/* A string inside the file: not NUL-terminated, may contain any bytes. */
typedef struct bn_gguf_str {
    const char *ptr;
    uint64_t len;
} bn_gguf_str;

/* A metadata value.  Scalars are decoded; arrays give their element type and count, and their
 * elements are read with the bn_gguf_arr_* functions. Nested arrays are allowed. */
typedef struct bn_gguf_value {
    bn_gguf_vtype type;
    union {
        uint64_t u;  /* U8, U16, U32, U64, BOOL (0/1) */
        int64_t i;   /* I8, I16, I32, I64 */
        double f;    /* F32, F64 */
        bn_gguf_str s;
        struct {
            bn_gguf_vtype elem_type;
            uint64_t n;
            const void *opaque; /* reader-internal */
        } arr;
    } v;
} bn_gguf_value;

typedef struct bn_gguf_tensor {
    bn_gguf_str name;
    uint32_t type;  /* a bn_type id (validated: known, and sizeable unless `sized` is false) */
    uint32_t n_dims;
    int64_t ne[BN_GGUF_MAX_DIMS]; /* ne[0] is the row length (input dimension); unused dims = 1 */
    int64_t n_elem;
    uint64_t offset;    /* relative to the start of the data section */
    const void *data;   /* in the mapping */
    size_t nbytes;
    /* false only when opened with BN_GGUF_ALLOW_UNSIZED and the type has no byte size we know
     * (TL1, TL2, ...): nbytes is then the span up to the next tensor's data (or the end of the
     * file), an upper bound, and the data must not be interpreted. */
    bool sized;
} bn_gguf_tensor;

/* Opens and validates a file; on failure *out is NULL and bn_last_error() says why. */
bn_status bn_gguf_open(const char *path, bn_gguf **out);
/* Same for a buffer the caller keeps alive until bn_gguf_free (used by the fuzzer and tests). */
bn_status bn_gguf_open_memory(const void *data, size_t size, bn_gguf **out);

/* Flags for the *_ex variants. */
enum {
    /* Accept tensors of known types whose byte size we cannot compute (TL1, TL2, and removed
     * types like Q4_2): they get sized = false.  Without it such files fail with
     * BN_ERR_UNSUPPORTED.  For inspection (`bitnet info`); a model loader leaves it off. */
    BN_GGUF_ALLOW_UNSIZED = 1u << 0
};
bn_status bn_gguf_open_ex(const char *path, unsigned flags, bn_gguf **out);
bn_status bn_gguf_open_memory_ex(const void *data, size_t size, unsigned flags, bn_gguf **out);
void bn_gguf_free(bn_gguf *g);
/* g takes ownership of the buffer it was opened on with bn_gguf_open_memory (allocated with
 * bn_aligned_alloc, e.g. by bn_gguf_writer_write_memory): bn_gguf_free releases it. */
void bn_gguf_own_buffer(bn_gguf *g, void *buf);

uint32_t bn_gguf_version(const bn_gguf *g);
uint32_t bn_gguf_alignment(const bn_gguf *g);
size_t bn_gguf_file_size(const bn_gguf *g);
size_t bn_gguf_data_offset(const bn_gguf *g); /* file offset of the tensor data section */
/* Base address of the whole file mapping (to advise the OS about the data section). */
const void *bn_gguf_file_data(const bn_gguf *g);
/* Whether the data is a read-only mapping of a file (rather than a buffer in memory). */
bool bn_gguf_is_file_mapping(const bn_gguf *g);
/* Heap bytes the reader holds for g (not counting the mapping): at most 5 x file size + 1 KiB. */
size_t bn_gguf_heap_bytes(const bn_gguf *g);

/* Metadata */
int64_t bn_gguf_n_kv(const bn_gguf *g);
bn_gguf_str bn_gguf_kv_key(const bn_gguf *g, int64_t i);
const bn_gguf_value *bn_gguf_kv_value(const bn_gguf *g, int64_t i);
int64_t bn_gguf_find_key(const bn_gguf *g, const char *key); /* -1 if absent */
const bn_gguf_value *bn_gguf_get(const bn_gguf *g, const char *key); /* NULL if absent */

/* Typed getters by key.  BN_ERR_NOT_FOUND if absent (message names the key), BN_ERR_FORMAT if the
 * stored type cannot represent the request (e.g. a negative value for an unsigned getter, a
 * value that does not fit).  Integer getters accept any integer type; float getters accept
 * F32/F64 and integers. */
bn_status bn_gguf_get_u32(const bn_gguf *g, const char *key, uint32_t *out);
bn_status bn_gguf_get_i64(const bn_gguf *g, const char *key, int64_t *out);
bn_status bn_gguf_get_f32(const bn_gguf *g, const char *key, float *out);
bn_status bn_gguf_get_bool(const bn_gguf *g, const char *key, bool *out);
bn_status bn_gguf_get_str(const bn_gguf *g, const char *key, bn_gguf_str *out);

/* Array elements (0 <= j < arr.n; elem types must match the call: BN_ERR_FORMAT otherwise). */
bn_status bn_gguf_arr_str(const bn_gguf_value *arr, uint64_t j, bn_gguf_str *out);
bn_status bn_gguf_arr_value(const bn_gguf_value *arr, uint64_t j, bn_gguf_value *out); /* any type */
/* For arrays of fixed-size scalars: a pointer to the packed little-endian elements in the file
 * (may be unaligned: read with memcpy).  NULL for strings or nested arrays. */
const void *bn_gguf_arr_data(const bn_gguf_value *arr);

/* Tensors */
int64_t bn_gguf_n_tensors(const bn_gguf *g);
const bn_gguf_tensor *bn_gguf_tensor_at(const bn_gguf *g, int64_t i);
const bn_gguf_tensor *bn_gguf_find_tensor(const bn_gguf *g, const char *name); /* NULL if absent */

/* ---- writer ---- */
typedef struct bn_gguf_writer bn_gguf_writer;

bn_status bn_gguf_writer_init(bn_gguf_writer **out);
void bn_gguf_writer_free(bn_gguf_writer *w);
/* Setting a key that exists replaces its value (keeps its position). Strings are copied. */
bn_status bn_gguf_writer_set_u32(bn_gguf_writer *w, const char *key, uint32_t v);
bn_status bn_gguf_writer_set_i32(bn_gguf_writer *w, const char *key, int32_t v);
bn_status bn_gguf_writer_set_u64(bn_gguf_writer *w, const char *key, uint64_t v);
bn_status bn_gguf_writer_set_f32(bn_gguf_writer *w, const char *key, float v);
bn_status bn_gguf_writer_set_bool(bn_gguf_writer *w, const char *key, bool v);
bn_status bn_gguf_writer_set_str(bn_gguf_writer *w, const char *key, const char *v);
/* Any value, including arrays (of scalars: elements packed little-endian in `data`; of strings:
 * `data` is an array of n `const char *`).  Copies what it needs. */
bn_status bn_gguf_writer_set_array(bn_gguf_writer *w, const char *key, bn_gguf_vtype elem_type, const void *data,
                                   uint64_t n);
/* Any value: scalars and strings as given (BOOL: v.u 0/1; F32/F64: v.f); arrays, nested ones
 * included, only as returned by the reader (bn_gguf_get, bn_gguf_arr_value). */
bn_status bn_gguf_writer_set_value(bn_gguf_writer *w, const char *key, const bn_gguf_value *v);
/* Copies every key/value of g (e.g. when requantising). */
bn_status bn_gguf_writer_copy_kv(bn_gguf_writer *w, const bn_gguf *g);
/* Adds a tensor; `data` (nbytes = bn_type_tensor_nbytes) must stay valid until write.  Names unique. */
bn_status bn_gguf_writer_add_tensor(bn_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                    const int64_t *ne, const void *data);
/* Adds a tensor whose bytes are produced at write time by fill(user, dst, nbytes), so a converter
 * holds only one tensor's output in memory at a time. */
typedef bn_status (*bn_gguf_fill_fn)(void *user, void *dst, size_t nbytes);
bn_status bn_gguf_writer_add_tensor_fn(bn_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                       const int64_t *ne, bn_gguf_fill_fn fill, void *user);
/* Writes the file atomically; alignment from general.alignment if set (u32, power of two), else 32. */
bn_status bn_gguf_writer_write(bn_gguf_writer *w, const char *path);
/* The same bytes as bn_gguf_writer_write, into memory: *buf (page-aligned, bn_aligned_free, or
 * hand it to a reader with bn_gguf_own_buffer) holds *len bytes. */
bn_status bn_gguf_writer_write_memory(bn_gguf_writer *w, void **buf, size_t *len);

#endif
