// Runs a diffusion model's noise predictor on arrays from .npy files and writes its output;
// with a fourth file, compares the output with it (max|ours - reference| <= 1e-4 * (1 +
// max|reference|), the golden cases' tolerance) and fails when it is farther.
// Usage: model_eps MODEL X.npy T.npy OUT.npy [REFERENCE.npy]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>

#include "diffclip.hpp"

// max|a - b| and the tolerance for reference b.
static bool within_tolerance(const diffclip::Tensor &a, const diffclip::Tensor &b)
{
    if (a.shape() != b.shape())
        throw diffclip::Error(DC_EINVAL, "the output and the reference differ in shape");
    const float *x = a.data<float>(), *y = b.data<float>();
    double error = 0, largest = 0;
    for (int64_t i = 0; i < a.numel(); i++) {
        error = std::max(error, std::fabs(static_cast<double>(x[i]) - y[i]));
        largest = std::max(largest, std::fabs(static_cast<double>(y[i])));
    }
    double tolerance = 1e-4 * (1 + largest);
    std::printf("max|ours - reference| = %.3g (tolerance %.3g)\n", error, tolerance);
    return error <= tolerance;
}

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        std::fprintf(stderr, "usage: %s MODEL X.npy T.npy OUT.npy [REFERENCE.npy]\n", argv[0]);
        return 2;
    }
    try {
        dc_model_options options;
        dc_model_options_init(&options, DC_MODEL_OPTIONS_VERSION);
        options.device = "cpu";
        auto model = diffclip::make<diffclip::Model>(dc_model_load, argv[1], &options);
        char description[4096];
        diffclip::check(dc_model_describe(model.get(), description, sizeof description));
        std::printf("%s", description);

        diffclip::Tensor x = diffclip::read_npy(argv[2]), t = diffclip::read_npy(argv[3]), eps;
        diffclip::check(dc_model_eps(model.get(), x.get(), t.get(), eps.out()));
        diffclip::write_npy(argv[4], *eps.get());
        std::vector<int64_t> shape = eps.shape();
        std::printf("output [");
        for (size_t d = 0; d < shape.size(); d++)
            std::printf("%s%lld", d ? ", " : "", static_cast<long long>(shape[d]));
        std::printf("] -> %s\n", argv[4]);
        if (argc == 6 && !within_tolerance(eps, diffclip::read_npy(argv[5])))
            return 1;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "model_eps: %s\n", e.what());
        return 1;
    }
    return 0;
}
