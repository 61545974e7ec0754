#include "common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__EMSCRIPTEN__) && !defined(_WIN32)
#include <sys/mman.h>
#define BN_HAVE_MMAP 1
#endif

#include "common/error.h"
#include "common/mem.h"

bn_status bn_mapfile_open(bn_mapfile *mf, const char *path)
{
    memset(mf, 0, sizeof *mf);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return bn_error(BN_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return bn_error(BN_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return bn_error(BN_ERR_IO, "'%s' is not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        close(fd);
        mf->data = (const uint8_t *)"";
        mf->size = 0;
        return BN_OK;
    }
#ifdef BN_HAVE_MMAP
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return bn_error(BN_ERR_IO, "cannot map '%s': %s", path, strerror(errno));
    mf->data = p;
    mf->size = size;
    mf->is_mapped = 1;
    return BN_OK;
#else
    uint8_t *buf = bn_malloc(size);
    if (!buf) {
        close(fd);
        return BN_ERR_NOMEM;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = errno;
            close(fd);
            bn_free(buf);
            return bn_error(BN_ERR_IO, "cannot read '%s': %s", path, r == 0 ? "short read" : strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    mf->data = buf;
    mf->size = size;
    return BN_OK;
#endif
}

void bn_mapfile_close(bn_mapfile *mf)
{
    if (!mf || !mf->data) return;
    if (mf->size > 0) {
#ifdef BN_HAVE_MMAP
        if (mf->is_mapped) munmap((void *)mf->data, mf->size);
        else bn_free((void *)mf->data);
#else
        bn_free((void *)mf->data);
#endif
    }
    memset(mf, 0, sizeof *mf);
}

void bn_mapfile_release(const void *p, size_t n)
{
#if defined(BN_HAVE_MMAP) && defined(MADV_DONTNEED)
    long ps = sysconf(_SC_PAGESIZE);
    const uintptr_t page = ps > 0 ? (uintptr_t)ps : 4096, lo = ((uintptr_t)p + page - 1) & ~(page - 1), hi = ((uintptr_t)p + n) & ~(page - 1);
    if (p && hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
#else
    (void)p;
    (void)n;
#endif
}

void bn_mapfile_advise_willneed(const bn_mapfile *mf)
{
#ifdef BN_HAVE_MMAP
    if (mf && mf->is_mapped && mf->size > 0) {
        (void)posix_madvise((void *)mf->data, mf->size, POSIX_MADV_WILLNEED);
#ifdef MADV_HUGEPAGE
        (void)madvise((void *)mf->data, mf->size, MADV_HUGEPAGE);
#endif
    }
#else
    (void)mf;
#endif
}

bn_status bn_atomic_file_open(bn_atomic_file *af, const char *path)
{
    memset(af, 0, sizeof *af);
    af->fd = -1;
    size_t n = strlen(path);
    af->final_path = bn_strdup(path);
    af->tmp_path = bn_malloc(n + 16);
    if (!af->final_path || !af->tmp_path) {
        bn_atomic_file_abort(af);
        return BN_ERR_NOMEM;
    }
    snprintf(af->tmp_path, n + 16, "%s.tmp.XXXXXX", path);
    af->fd = mkstemp(af->tmp_path);
    if (af->fd >= 0) {
        /* mkstemp makes 0600; the final file gets the usual 0666 less the umask */
        mode_t um = umask(0);
        umask(um);
        (void)fchmod(af->fd, 0666 & ~um);
    }
    if (af->fd < 0) {
        int e = errno;
        bn_free(af->tmp_path);
        af->tmp_path = NULL;
        bn_atomic_file_abort(af);
        return bn_error(BN_ERR_IO, "cannot create a temporary file beside '%s': %s", path, strerror(e));
    }
    return BN_OK;
}

bn_status bn_atomic_file_write(bn_atomic_file *af, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t w = write(af->fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return bn_error(BN_ERR_IO, "writing '%s': %s", af->tmp_path, w < 0 ? strerror(errno) : "no progress");
        p += w;
        n -= (size_t)w;
    }
    return BN_OK;
}

static void fsync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? bn_strndup(path, (size_t)(slash - path) + (slash == path)) : bn_strdup(".");
    if (!dir) return;
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    bn_free(dir);
}

bn_status bn_atomic_file_commit(bn_atomic_file *af)
{
    bn_status st = BN_OK;
    if (fsync(af->fd) != 0) st = bn_error(BN_ERR_IO, "fsync '%s': %s", af->tmp_path, strerror(errno));
    if (close(af->fd) != 0 && st == BN_OK) st = bn_error(BN_ERR_IO, "close '%s': %s", af->tmp_path, strerror(errno));
    af->fd = -1;
    if (st == BN_OK && rename(af->tmp_path, af->final_path) != 0)
        st = bn_error(BN_ERR_IO, "rename '%s' to '%s': %s", af->tmp_path, af->final_path, strerror(errno));
    if (st != BN_OK) {
        bn_atomic_file_abort(af);
        return st;
    }
    fsync_parent(af->final_path);
    bn_free(af->tmp_path);
    bn_free(af->final_path);
    memset(af, 0, sizeof *af);
    af->fd = -1;
    return BN_OK;
}

void bn_atomic_file_abort(bn_atomic_file *af)
{
    if (af->fd >= 0) close(af->fd);
    if (af->tmp_path) unlink(af->tmp_path);
    bn_free(af->tmp_path);
    bn_free(af->final_path);
    memset(af, 0, sizeof *af);
    af->fd = -1;
}
