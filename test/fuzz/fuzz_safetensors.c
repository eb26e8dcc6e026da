/* The safetensors reader (io_safetensors_read): its JSON header and the tensor data. */
#include "fuzz.h"
#include "io/containers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    io_state_dict sd = {0};
    if (io_safetensors_read(data, size, "fuzz.safetensors", &sd) == DC_OK)
        fuzz_touch_state_dict(&sd);
    io_state_dict_free(&sd);   /* the reader leaves the caller to free a partial result */
    return 0;
}
