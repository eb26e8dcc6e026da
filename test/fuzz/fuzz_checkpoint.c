/* The checkpoint loader (io_checkpoint_read_buffer): container detection, torch.save zip and
 * legacy files, TorchScript archives, safetensors and .npy, down to the dense tensor copies. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    io_state_dict sd;
    if (io_checkpoint_read_buffer(data, size, "fuzz.pt", &sd) == DC_OK) {
        fuzz_touch_state_dict(&sd);
        io_state_dict_free(&sd);
    }
    return 0;
}
