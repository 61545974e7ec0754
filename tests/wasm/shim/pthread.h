/* The one part of <pthread.h> the kernel files use (pthread_once, in src/kernels/cpu.c), for
 * wasm32-wasi builds without threads, whose libc has no <pthread.h>: one thread, so a flag does. */
#ifndef BN_WASM_SHIM_PTHREAD_H
#define BN_WASM_SHIM_PTHREAD_H

typedef int pthread_once_t;
#define PTHREAD_ONCE_INIT 0

static inline int pthread_once(pthread_once_t *once, void (*fn)(void))
{
    if (!*once) {
        *once = 1;
        fn();
    }
    return 0;
}

#endif
