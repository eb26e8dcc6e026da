/* The per-thread error state and the names of the status codes. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { ERROR_CAPACITY = 1024 };

static _Thread_local char last_error[ERROR_CAPACITY];

int dci_err(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

int dci_err_prefix(int status, const char *prefix)
{
    char previous[ERROR_CAPACITY];
    memcpy(previous, last_error, sizeof previous);
    /* Long messages are cut: the prefix (a file name) matters more than the tail. */
    snprintf(last_error, sizeof last_error, "%.255s: %.760s", prefix, previous);
    return status;
}

void dci_err_clear(void) { last_error[0] = '\0'; }

DC_API const char *dc_last_error(void) { return last_error; }

DC_API const char *dc_status_name(dc_status status)
{
    switch (status) {
    case DC_OK: return "DC_OK";
    case DC_EINVAL: return "DC_EINVAL";
    case DC_EIO: return "DC_EIO";
    case DC_EFORMAT: return "DC_EFORMAT";
    case DC_ENOMEM: return "DC_ENOMEM";
    case DC_EDEVICE: return "DC_EDEVICE";
    case DC_ECANCELLED: return "DC_ECANCELLED";
    case DC_EINTERNAL: return "DC_EINTERNAL";
    case DC_ENOTFOUND: return "DC_ENOTFOUND";
    }
    return "DC_UNKNOWN";
}
