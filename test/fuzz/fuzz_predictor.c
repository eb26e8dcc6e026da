/* dlib shape predictor files (face_predictor_check, which guards dlib's deserializer). */
#include "face/face.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    face_predictor_check(data, size, "fuzz.dat", DC_FACE_LANDMARK_COUNT);
    return 0;
}
