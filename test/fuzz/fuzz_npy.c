/* .npy arrays (io_npy_read_buffer). */
#include "fuzz.h"
#include "io/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dc_tensor t;
    if (io_npy_read_buffer(data, size, "fuzz.npy", &t) == DC_OK) {
        fuzz_touch_tensor(&t);
        dc_tensor_free(&t);
    }
    return 0;
}
