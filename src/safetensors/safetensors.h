/* SafeTensors reader (Hugging Face checkpoints), one file or a sharded set.
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {..}},
 * then the data; offsets are relative to the end of the header.  Files are memory-mapped and the
 * header is validated completely on open: its length against the file, the JSON, every dtype,
 * shape and offset pair (inside the data, matching dtype x shape), no two tensors overlapping, no
 * duplicate names.  Errors name the file, the tensor and the field.
 *
 * A sharded checkpoint (model.safetensors.index.json with a "weight_map" {tensor: file}) opens as
 * one set: every file it names is opened and every tensor the map lists must be in its file.
 *
 * Needs cJSON (BITNET_WITH_HF); without it the open functions fail with BN_ERR_UNSUPPORTED. */
#ifndef BN_SAFETENSORS_SAFETENSORS_H
#define BN_SAFETENSORS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define BN_ST_MAX_DIMS 8
/* The header-size limit of the reference implementation (100 MB). */
#define BN_ST_MAX_HEADER (100u * 1000u * 1000u)

typedef enum bn_st_dtype {
    BN_ST_F32 = 0,
    BN_ST_F16,
    BN_ST_BF16,
    BN_ST_U8,
    BN_ST_I8,
    /* sized (so files holding them validate) but not convertible to float here */
    BN_ST_BOOL,
    BN_ST_I16,
    BN_ST_U16,
    BN_ST_I32,
    BN_ST_U32,
    BN_ST_I64,
    BN_ST_U64,
    BN_ST_F64,
    BN_ST_F8_E4M3,
    BN_ST_F8_E5M2,
    BN_ST_DTYPE_COUNT
} bn_st_dtype;

typedef struct bn_st_tensor {
    const char *name;   /* NUL-terminated, owned by the set */
    bn_st_dtype dtype;
    int n_dims;
    int64_t shape[BN_ST_MAX_DIMS]; /* PyTorch order: shape[n_dims-1] varies fastest */
    int64_t n_elem;
    const void *data;   /* in the mapping; may be unaligned */
    size_t nbytes;
    int file;           /* index of the file (shard) holding it */
} bn_st_tensor;

typedef struct bn_safetensors bn_safetensors;

/* One .safetensors file. */
bn_status bn_st_open(const char *path, bn_safetensors **out);
/* A buffer the caller keeps alive until bn_st_free (fuzzing, tests). */
bn_status bn_st_open_memory(const void *data, size_t size, bn_safetensors **out);
/* The weights of a model folder: model.safetensors.index.json if present, else model.safetensors,
 * else the only *.safetensors file. */
bn_status bn_st_open_dir(const char *dir, bn_safetensors **out);
/* A sharded set from its index file. */
bn_status bn_st_open_index(const char *index_path, bn_safetensors **out);
void bn_st_free(bn_safetensors *st);

int64_t bn_st_n_tensors(const bn_safetensors *st);
/* Tensors in name order. */
const bn_st_tensor *bn_st_tensor_at(const bn_safetensors *st, int64_t i);
const bn_st_tensor *bn_st_find(const bn_safetensors *st, const char *name); /* NULL if absent */
int bn_st_n_files(const bn_safetensors *st);
/* A string value of the first file's "__metadata__" (NULL if absent). */
const char *bn_st_metadata(const bn_safetensors *st, const char *key);

const char *bn_st_dtype_name(bn_st_dtype t);
size_t bn_st_dtype_size(bn_st_dtype t);

/* Converts elements [first, first + n) of t (flattened) to float.  F32, F16, BF16, U8, I8;
 * BN_ERR_UNSUPPORTED for other dtypes, BN_ERR_RANGE outside the tensor. */
bn_status bn_st_read_f32(const bn_st_tensor *t, int64_t first, int64_t n, float *dst);

/* Tells the OS the pages of t's data will not be needed again, so converting a large checkpoint
 * keeps only the tensor at hand resident.  The data stays readable (pages fault back in). */
void bn_st_release(const bn_st_tensor *t);
/* The same for bytes [offset, offset + n) of t's data (a tensor processed in pieces). */
void bn_st_release_range(const bn_st_tensor *t, size_t offset, size_t n);

#endif
