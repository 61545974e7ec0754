#include "gguf/types.h"

#include "common/mem.h"

/* Block sizes and bytes per block as ggml defines them.  I2_S, TL1 and TL2 have no fixed block
 * size (I2_S is sized specially below; TL1/TL2 depend on a kernel configuration we do not read). */
static const bn_type_traits traits[BN_TYPE_COUNT] = {
    [BN_TYPE_F32] = {"F32", 1, 4, true},
    [BN_TYPE_F16] = {"F16", 1, 2, true},
    [BN_TYPE_Q4_0] = {"Q4_0", 32, 18, false},
    [BN_TYPE_Q4_1] = {"Q4_1", 32, 20, false},
    [4] = {"Q4_2", 0, 0, false}, /* removed from ggml in 2023 */
    [5] = {"Q4_3", 0, 0, false},
    [BN_TYPE_Q5_0] = {"Q5_0", 32, 22, false},
    [BN_TYPE_Q5_1] = {"Q5_1", 32, 24, false},
    [BN_TYPE_Q8_0] = {"Q8_0", 32, 34, true},
    [BN_TYPE_Q8_1] = {"Q8_1", 32, 36, false},
    [BN_TYPE_Q2_K] = {"Q2_K", 256, 84, false},
    [BN_TYPE_Q3_K] = {"Q3_K", 256, 110, false},
    [BN_TYPE_Q4_K] = {"Q4_K", 256, 144, false},
    [BN_TYPE_Q5_K] = {"Q5_K", 256, 176, false},
    [BN_TYPE_Q6_K] = {"Q6_K", 256, 210, true},
    [BN_TYPE_Q8_K] = {"Q8_K", 256, 292, false},
    [BN_TYPE_IQ2_XXS] = {"IQ2_XXS", 256, 66, false},
    [BN_TYPE_IQ2_XS] = {"IQ2_XS", 256, 74, false},
    [BN_TYPE_IQ3_XXS] = {"IQ3_XXS", 256, 98, false},
    [BN_TYPE_IQ1_S] = {"IQ1_S", 256, 50, false},
    [BN_TYPE_IQ4_NL] = {"IQ4_NL", 32, 18, false},
    [BN_TYPE_IQ3_S] = {"IQ3_S", 256, 110, false},
    [BN_TYPE_IQ2_S] = {"IQ2_S", 256, 82, false},
    [BN_TYPE_IQ4_XS] = {"IQ4_XS", 256, 136, false},
    [BN_TYPE_I8] = {"I8", 1, 1, false},
    [BN_TYPE_I16] = {"I16", 1, 2, false},
    [BN_TYPE_I32] = {"I32", 1, 4, false},
    [BN_TYPE_I64] = {"I64", 1, 8, false},
    [BN_TYPE_F64] = {"F64", 1, 8, false},
    [BN_TYPE_IQ1_M] = {"IQ1_M", 256, 56, false},
    [BN_TYPE_BF16] = {"BF16", 1, 2, true},
    [31] = {"Q4_0_4_4", 32, 18, false}, /* removed from ggml; kept so old files are named */
    [32] = {"Q4_0_4_8", 32, 18, false},
    [33] = {"Q4_0_8_8", 32, 18, false},
    [BN_TYPE_TQ1_0] = {"TQ1_0", 256, 54, true},
    [BN_TYPE_TQ2_0] = {"TQ2_0", 256, 66, true},
    [BN_TYPE_I2_S] = {"I2_S", 1, 0, true},
    [BN_TYPE_I8_S] = {"I8_S", 1, 1, false},
    [BN_TYPE_TL1] = {"TL1", 0, 0, false},
    [BN_TYPE_TL2] = {"TL2", 0, 0, false},
};

const bn_type_traits *bn_type_get(uint32_t id)
{
    if (id >= BN_TYPE_COUNT || !traits[id].name) return NULL;
    return &traits[id];
}

const char *bn_type_name(uint32_t id)
{
    const bn_type_traits *t = bn_type_get(id);
    return t ? t->name : NULL;
}

bool bn_type_row_nbytes(uint32_t type, int64_t ne0, size_t *out)
{
    const bn_type_traits *t = bn_type_get(type);
    if (!t || ne0 < 0) return false;
    if (type == BN_TYPE_I2_S) {
        if (ne0 % 4) return false;
        *out = (size_t)ne0 / 4;
        return true;
    }
    if (t->block_size <= 0 || t->type_size == 0 || ne0 % t->block_size) return false;
    size_t r;
    if (bn_mul_overflow((size_t)(ne0 / t->block_size), t->type_size, &r)) return false;
    *out = r;
    return true;
}

bool bn_type_tensor_nbytes(uint32_t type, int64_t ne0, int64_t n_elem, size_t *out)
{
    const bn_type_traits *t = bn_type_get(type);
    if (!t || ne0 < 0 || n_elem < 0) return false;
    if (ne0 == 0) {
        if (n_elem != 0) return false;
        *out = type == BN_TYPE_I2_S ? 32 : 0;
        return true;
    }
    if (n_elem % ne0) return false;
    if (type == BN_TYPE_I2_S) {
        /* packed 2-bit codes for the whole tensor, then 32 bytes whose first 4 are the scale */
        if (n_elem % 4) return false;
        size_t r;
        if (bn_add_overflow((size_t)n_elem / 4, 32, &r)) return false;
        *out = r;
        return true;
    }
    size_t row, r;
    if (!bn_type_row_nbytes(type, ne0, &row)) return false;
    if (bn_mul_overflow(row, (size_t)(n_elem / ne0), &r)) return false;
    *out = r;
    return true;
}
