/* Fine-tuning in a process group (data parallelism over ctorch's ct_dist): the check that
 * every rank starts the same run. */
#ifndef DC_SRC_FINETUNE_GROUP_H
#define DC_SRC_FINETUNE_GROUP_H

#include <stddef.h>

#include "../ctorch/ctorch.h"
#include "diffclip.h"

/* Called by every rank of `d` at the start: compares this rank's base model fingerprint,
 * texts and numbers (everything in `o` that shapes the run but the rank and the images)
 * with rank 0's, and its number of training images with its share of the group's total
 * (rank r of W holds ceil((N - r) / W) of N). On any difference every rank fails with
 * DC_EINVAL naming the ranks and what differs; otherwise *group_images is N. */
int ft_group_check(ct_dist *d, const char *fingerprint, const dc_finetune_options *o,
                   size_t local_images, size_t *group_images);

#endif
