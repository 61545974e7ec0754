/* Public API: what the library detected on this machine and which kernels it uses. */
#include <stdio.h>
#include <string.h>

#include "bitnet.h"
#include "common/error.h"
#include "common/threadpool.h"
#include "kernels/kernels.h"

bitnet_status bitnet_system_info_get(bitnet_system_info *info)
{
    if (!info) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "system info: NULL argument");
    memset(info, 0, sizeof *info);
    snprintf(info->kernels, sizeof info->kernels, "%s", bn_kernel_impl_name(bn_kernels_active()));
    const bn_cpu_features *f = bn_cpu_features_get();
    const struct {
        int on;
        const char *name;
    } feats[] = {
        {f->avx2, "avx2"},         {f->fma, "fma"},           {f->f16c, "f16c"},
        {f->avx512f, "avx512f"},   {f->avx512bw, "avx512bw"}, {f->avx512vl, "avx512vl"},
        {f->avx512vnni, "avx512vnni"}, {f->avx512vbmi, "avx512vbmi"}, {f->neon, "neon"}, {f->dotprod, "dotprod"},
        {f->wasm_simd, "simd128"},
    };
    size_t len = 0;
    for (size_t i = 0; i < sizeof feats / sizeof feats[0]; i++) {
        if (!feats[i].on) continue;
        int n = snprintf(info->cpu_features + len, sizeof info->cpu_features - len, "%s%s", len ? " " : "",
                         feats[i].name);
        if (n < 0 || (size_t)n >= sizeof info->cpu_features - len) break;
        len += (size_t)n;
    }
    info->n_cores_physical = bn_cpu_count_physical();
    info->n_cores_logical = bn_cpu_count_logical();
    info->i2s_repack = bn_kernels_repack_i2s();
    info->tq_repack = bn_kernels_repack_tq();
    info->cache_bytes = bn_cpu_cache_bytes();
    return BITNET_OK;
}
