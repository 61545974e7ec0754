/* Registry of ggml tensor types as GGUF files number them.  Every id ggml has used is known by
 * name (so `bitnet info` can print any file); block and byte sizes are given for the types this
 * project computes with, and for the others where they are fixed by ggml. */
#ifndef BN_GGUF_TYPES_H
#define BN_GGUF_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum bn_type {
    BN_TYPE_F32 = 0,
    BN_TYPE_F16 = 1,
    BN_TYPE_Q4_0 = 2,
    BN_TYPE_Q4_1 = 3,
    BN_TYPE_Q5_0 = 6,
    BN_TYPE_Q5_1 = 7,
    BN_TYPE_Q8_0 = 8,
    BN_TYPE_Q8_1 = 9,
    BN_TYPE_Q2_K = 10,
    BN_TYPE_Q3_K = 11,
    BN_TYPE_Q4_K = 12,
    BN_TYPE_Q5_K = 13,
    BN_TYPE_Q6_K = 14,
    BN_TYPE_Q8_K = 15,
    BN_TYPE_IQ2_XXS = 16,
    BN_TYPE_IQ2_XS = 17,
    BN_TYPE_IQ3_XXS = 18,
    BN_TYPE_IQ1_S = 19,
    BN_TYPE_IQ4_NL = 20,
    BN_TYPE_IQ3_S = 21,
    BN_TYPE_IQ2_S = 22,
    BN_TYPE_IQ4_XS = 23,
    BN_TYPE_I8 = 24,
    BN_TYPE_I16 = 25,
    BN_TYPE_I32 = 26,
    BN_TYPE_I64 = 27,
    BN_TYPE_F64 = 28,
    BN_TYPE_IQ1_M = 29,
    BN_TYPE_BF16 = 30,
    BN_TYPE_TQ1_0 = 34,
    BN_TYPE_TQ2_0 = 35,
    BN_TYPE_I2_S = 36, /* bitnet.cpp; mainline once used 36 for IQ4_NL_4_4 */
    BN_TYPE_I8_S = 37,
    BN_TYPE_TL1 = 38,
    BN_TYPE_TL2 = 39, /* bitnet.cpp; mainline uses 39 for MXFP4 */
    BN_TYPE_COUNT = 40
} bn_type;

typedef struct bn_type_traits {
    const char *name;   /* e.g. "I2_S"; NULL for ids no ggml version used */
    int64_t block_size; /* elements per block; 0 when we cannot size this type */
    size_t type_size;   /* bytes per block */
    bool computable;    /* this project can dequantize / compute with it */
} bn_type_traits;

/* NULL for an id outside [0, BN_TYPE_COUNT) or one never used. */
const bn_type_traits *bn_type_get(uint32_t id);
const char *bn_type_name(uint32_t id); /* "UNKNOWN(n)"-free: returns NULL when unknown */

/* Bytes of a tensor of type t with n_elem elements in a row of length ne0 (ne0 must be a
 * multiple of the block size).  I2_S is special: n_elem/4 packed bytes + a 32-byte tail holding
 * the float32 scale.  Returns false (and leaves *out untouched) if the type is not sizeable, the
 * row is not a whole number of blocks, or the size overflows. */
bool bn_type_tensor_nbytes(uint32_t t, int64_t ne0, int64_t n_elem, size_t *out);

/* Bytes of one row of ne0 elements (I2_S: ne0/4).  Same failure rules. */
bool bn_type_row_nbytes(uint32_t t, int64_t ne0, size_t *out);

#endif
