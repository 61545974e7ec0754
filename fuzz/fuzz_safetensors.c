/* libFuzzer target: the SafeTensors header parser on arbitrary bytes.  Every accepted file must
 * describe tensors that lie inside the buffer and can be read back. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "safetensors/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bn_safetensors *st;
    if (bn_st_open_memory(data, size, &st) != BN_OK) return 0;
    float buf[64];
    for (int64_t i = 0; i < bn_st_n_tensors(st); i++) {
        const bn_st_tensor *t = bn_st_tensor_at(st, i);
        if ((const uint8_t *)t->data < data || (const uint8_t *)t->data + t->nbytes > data + size) abort();
        if (bn_st_find(st, t->name) != t) abort();
        int64_t n = t->n_elem < 64 ? t->n_elem : 64;
        (void)bn_st_read_f32(t, t->n_elem - n, n, buf);
    }
    bn_st_free(st);
    return 0;
}
