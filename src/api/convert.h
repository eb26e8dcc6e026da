/* What every public entry point over ctorch needs: moving arrays between dc_tensor and
 * ctorch, running a computation in a pool, devices (options.h has the options structs). */
#ifndef DC_SRC_API_CONVERT_H
#define DC_SRC_API_CONVERT_H

#include "../ctorch/ctorch.h"
#include "diffclip.h"

/* Checks that t is a well-formed array (known dtype, 0..DC_MAX_DIMS dims, non-negative
 * dims without overflow, data when non-empty) and copies it to a new tensor on `device`.
 * `what` names the argument in messages. */
int api_tensor_in(ct_tensor **out, const dc_tensor *t, const char *what, int device);
/* The header checks of api_tensor_in alone (no copy). */
int api_check_tensor(const dc_tensor *t, const char *what);
/* Copies a tensor (any device, its dtype) into a newly allocated dc_tensor. */
int api_tensor_out(const ct_tensor *t, dc_tensor *out);

/* Runs fn(args) inside a pool, with autograd on (grad) or in inference mode, then frees every
 * handle it made, also on an error path. */
typedef int (*api_fn)(void *args);
int api_run_pooled(api_fn fn, void *args, int grad);

/* Device number for a device name (NULL: `fallback`); CUDA asked for without CUDA is
 * DC_EDEVICE. */
int api_parse_device(const char *name, const char *fallback, int *device);

#endif
