#include "kernels/kernels_impl.h"
const bn_kernel_table bn_kernels_avx2 = {.row_align = 1};
