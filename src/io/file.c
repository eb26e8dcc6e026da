#define _POSIX_C_SOURCE 200809L
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/error.h"

int io_map_file(const char *path, io_mapped_file *out)
{
    out->data = NULL;
    out->size = 0;
    if (!path)
        return dci_err(DC_EINVAL, "file path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dci_err(DC_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return dci_err(DC_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return dci_err(DC_EIO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return DC_OK;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return dci_err(DC_EIO, "%s: cannot map: %s", path, strerror(e));
    out->data = p;
    out->size = (size_t)st.st_size;
    return DC_OK;
}

void io_unmap_file(io_mapped_file *file)
{
    if (file && file->data)
        munmap((void *)file->data, file->size);
    if (file) {
        file->data = NULL;
        file->size = 0;
    }
}

static char *string_copy(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c)
        memcpy(c, s, n);
    return c;
}

int io_atomic_begin(io_atomic_file *file, const char *path)
{
    memset(file, 0, sizeof *file);
    if (!path || !*path)
        return dci_err(DC_EINVAL, "output path is empty");
    size_t n = strlen(path);
    file->final_path = string_copy(path);
    file->temp_path = malloc(n + 16);
    if (!file->final_path || !file->temp_path) {
        io_atomic_abort(file);
        return dci_err(DC_ENOMEM, "%s: out of memory", path);
    }
    /* A hidden name in the same directory: rename() must not cross file systems. */
    char *dir_copy = string_copy(path);
    char *base_copy = string_copy(path);
    if (!dir_copy || !base_copy) {
        free(dir_copy);
        free(base_copy);
        io_atomic_abort(file);
        return dci_err(DC_ENOMEM, "%s: out of memory", path);
    }
    snprintf(file->temp_path, n + 16, "%s/.%s.XXXXXX", dirname(dir_copy), basename(base_copy));
    free(dir_copy);
    free(base_copy);
    int fd = mkstemp(file->temp_path);
    if (fd < 0) {
        int e = errno;
        free(file->temp_path);
        file->temp_path = NULL;
        io_atomic_abort(file);
        return dci_err(DC_EIO, "%s: cannot create a temporary file: %s", path, strerror(e));
    }
    fchmod(fd, 0644);
    file->stream = fdopen(fd, "wb");
    if (!file->stream) {
        int e = errno;
        close(fd);
        io_atomic_abort(file);
        return dci_err(DC_EIO, "%s: cannot open a temporary file: %s", path, strerror(e));
    }
    return DC_OK;
}

int io_atomic_write(io_atomic_file *file, const void *data, size_t size)
{
    if (size && fwrite(data, 1, size, file->stream) != size)
        return dci_err(DC_EIO, "%s: write failed: %s", file->final_path, strerror(errno));
    return DC_OK;
}

static void sync_directory(const char *path)
{
    char *copy = string_copy(path);
    if (!copy)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int io_atomic_commit(io_atomic_file *file)
{
    int failed = fflush(file->stream) != 0 || fsync(fileno(file->stream)) != 0;
    int e = errno;
    failed |= fclose(file->stream) != 0;
    file->stream = NULL;
    if (failed) {
        int s = dci_err(DC_EIO, "%s: write failed: %s", file->final_path, strerror(e));
        io_atomic_abort(file);
        return s;
    }
    if (rename(file->temp_path, file->final_path) != 0) {
        int s = dci_err(DC_EIO, "%s: cannot replace: %s", file->final_path, strerror(errno));
        io_atomic_abort(file);
        return s;
    }
    sync_directory(file->final_path);
    free(file->temp_path);
    free(file->final_path);
    memset(file, 0, sizeof *file);
    return DC_OK;
}

void io_atomic_abort(io_atomic_file *file)
{
    if (file->stream)
        fclose(file->stream);
    if (file->temp_path)
        unlink(file->temp_path);
    free(file->temp_path);
    free(file->final_path);
    memset(file, 0, sizeof *file);
}
