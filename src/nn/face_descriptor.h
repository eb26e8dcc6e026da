/* face-api's FaceRecognitionNet (@vladmandic/face-api 1.7.15, src/faceRecognitionNet/): the
 * dlib ResNet face descriptor, a 150x150 RGB face -> 128 floats whose Euclidean distance is
 * below 0.6 for the same person. Weights are the package's tfjs weights (names such as
 * "conv64_down/conv1/conv/filters", filters HWIO, fc (256, 128)), computed in float32.
 * Load and free with no ctorch pool open: the weights outlive every pool. */
#ifndef DC_SRC_NN_FACE_DESCRIPTOR_H
#define DC_SRC_NN_FACE_DESCRIPTOR_H

#include "../ctorch/ctorch.h"
#include "../io/tfjs.h"

#define NN_FACE_DESCRIPTOR_INPUT 150
#define NN_FACE_DESCRIPTOR_DIM 128

typedef struct nn_face_descriptor nn_face_descriptor;

/* DC_EFORMAT names a missing, non-float32 or misshapen weight; `label` names the file. */
int nn_face_descriptor_load(nn_face_descriptor **out, const io_tfjs_weights *weights,
                            const char *label, int device);
void nn_face_descriptor_free(nn_face_descriptor *net);
int nn_face_descriptor_device(const nn_face_descriptor *net);
/* x: (N, 3, 150, 150) float32 RGB in 0..255 on the net's device -> (N, 128) float32, as
 * face-api's forwardInput on the same pixels. Differentiable w.r.t. x. */
int nn_face_descriptor_forward(const nn_face_descriptor *net, const ct_tensor *x,
                               ct_tensor **out);

#endif
