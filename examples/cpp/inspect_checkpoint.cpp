// Lists the tensors of a checkpoint: container, then one line per tensor (name, dtype,
// shape).  Usage: inspect_checkpoint FILE
#include <cstdio>
#include <exception>

#include "diffclip.hpp"

static const char *container_name(dc_container c)
{
    switch (c) {
    case DC_CONTAINER_TORCH_ZIP: return "torch zip";
    case DC_CONTAINER_TORCH_LEGACY: return "torch legacy";
    case DC_CONTAINER_TORCHSCRIPT: return "TorchScript";
    case DC_CONTAINER_SAFETENSORS: return "safetensors";
    case DC_CONTAINER_NPY: return "npy";
    }
    return "unknown";
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    try {
        auto ckpt = diffclip::make<diffclip::Checkpoint>(dc_checkpoint_open, argv[1]);
        size_t count = dc_checkpoint_count(ckpt.get());
        std::printf("%s: %s, %zu tensors\n", argv[1],
                    container_name(dc_checkpoint_container(ckpt.get())), count);
        for (size_t i = 0; i < count; i++) {
            dc_tensor view;  // owned by the checkpoint: not freed here
            diffclip::check(dc_checkpoint_tensor(ckpt.get(), i, &view));
            std::printf("%s %s [", dc_checkpoint_name(ckpt.get(), i),
                        dc_dtype_name(view.dtype));
            for (int d = 0; d < view.ndim; d++)
                std::printf("%s%lld", d ? ", " : "", static_cast<long long>(view.shape[d]));
            std::printf("]\n");
        }
    } catch (const std::exception &e) {
        std::fprintf(stderr, "inspect_checkpoint: %s\n", e.what());
        return 1;
    }
    return 0;
}
