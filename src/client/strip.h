/* What the tools over the public API (src/cli, src/serve) share. */
#ifndef DC_SRC_CLIENT_STRIP_H
#define DC_SRC_CLIENT_STRIP_H

#include "diffclip.h"

/* The images of several NCHW float32 tensors in [-1, 1] with one H and W, side by side in
 * order, as one image (release with dc_image_free). DC_EINVAL when they are not 4-D or their
 * H and W differ (dc_last_error is not set then: the caller says what is wrong), DC_ENOMEM,
 * or dc_tensor_to_image's failure. */
dc_status client_compose_strip(const dc_tensor *const *tensors, int count, dc_image *out);

#endif
