/* Files: read-only memory maps (weights are used in place) and atomic writes
 * (temp file in the destination folder, fsync, rename) so a crash never leaves a torn file. */
#ifndef BN_COMMON_FILE_H
#define BN_COMMON_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

typedef struct bn_mapfile {
    const uint8_t *data; /* whole file contents, read-only */
    size_t size;
    int is_mapped;       /* 1: mmap (unmap on close); 0: heap copy (platforms without mmap) */
} bn_mapfile;

bn_status bn_mapfile_open(bn_mapfile *mf, const char *path);
void bn_mapfile_close(bn_mapfile *mf);
/* Advises the OS that the whole mapping will be needed soon (and that huge pages are welcome). */
void bn_mapfile_advise_willneed(const bn_mapfile *mf);
/* Drops the process's pages of [p, p + n), a part of a read-only file mapping, from memory (the
 * whole pages inside it): the next access reads them from the page cache again.  For data that
 * was copied elsewhere, so it stops counting twice in the resident set.  No effect elsewhere. */
void bn_mapfile_release(const void *p, size_t n);

typedef struct bn_atomic_file {
    int fd;
    char *tmp_path;
    char *final_path;
} bn_atomic_file;

/* Creates a unique temporary file beside `path`. */
bn_status bn_atomic_file_open(bn_atomic_file *af, const char *path);
bn_status bn_atomic_file_write(bn_atomic_file *af, const void *data, size_t n);
/* fsync, rename over the final name, fsync the folder.  Removes the temp file on failure. */
bn_status bn_atomic_file_commit(bn_atomic_file *af);
/* Removes the temporary file; the destination is untouched.  Safe after a failed commit. */
void bn_atomic_file_abort(bn_atomic_file *af);

#endif
