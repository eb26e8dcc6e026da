/* The per-thread error state shared by every module (io, ctorch, nn, ...). */
#ifndef DC_SRC_CORE_ERROR_H
#define DC_SRC_CORE_ERROR_H

#include "diffclip.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Records a message for this thread and returns `status`, so that a failing path can
 * `return dci_err(DC_EFORMAT, "%s: truncated", path);`. */
int dci_err(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Prefixes the current message with "<prefix>: " (e.g. the file name) and returns status. */
int dci_err_prefix(int status, const char *prefix);
void dci_err_clear(void);

/* Returns early with the status of `expr` when it fails. */
#define DCI_TRY(expr)                  \
    do {                               \
        int dci_try_status_ = (expr);  \
        if (dci_try_status_ != DC_OK)  \
            return dci_try_status_;    \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
