/* The IR-SE face identity network (TreB1eN's InsightFace Backbone, mode 'ir_se', as used by
 * DiffusionCLIP's IDLoss), in eval mode. Units per stage are read from the state dict
 * (IR-SE50: 3, 4, 14, 3); weights stored as float16 are computed in float32.
 * Load and free with no ctorch pool open: the weights outlive every pool. */
#ifndef DC_SRC_NN_IDNET_H
#define DC_SRC_NN_IDNET_H

#include <stdint.h>

#include "../ctorch/ctorch.h"
#include "../io/checkpoint.h"

typedef struct nn_idnet nn_idnet;

int nn_idnet_load(nn_idnet **out, const io_state_dict *sd, const char *label, int device);
void nn_idnet_free(nn_idnet *net);
int nn_idnet_device(const nn_idnet *net);
/* Side of the square input (112 for the published network). */
int64_t nn_idnet_input_size(const nn_idnet *net);
int64_t nn_idnet_feature_dim(const nn_idnet *net);
/* x: (N, 3, S, S) in [-1, 1], S = input size -> (N, feature_dim) float32, L2-normalised.
 * Differentiable w.r.t. x. */
int nn_idnet_forward(const nn_idnet *net, const ct_tensor *x, ct_tensor **features);

#endif
