/* Conformance of the IR-SE identity network and the identity loss against
 * ../shared/golden/arcface_irse (float16 weights, one unit per stage): max|ours - golden| <=
 * 1e-4 (1 + max|golden|). */
#include <stdio.h>
#include <stdlib.h>

#include "finetune/losses.h"
#include "harness.h"
#include "io/checkpoint.h"
#include "io/npy.h"
#include "nn/idnet.h"

static int read_npy(const char *dir, const char *file, dc_tensor *t)
{
    char path[1024];
    return io_npy_read_file(path_join(path, sizeof path, dir, file), t);
}

static int read_ct(const char *dir, const char *file, ct_tensor **out)
{
    dc_tensor t = {0};
    int st = read_npy(dir, file, &t);
    if (st == DC_OK)
        st = ct_from_host(out, t.data, t.dtype, t.ndim, t.shape, test_device());
    dc_tensor_free(&t);
    return st;
}

/* max error of `got` against golden `file`, checked against the case tolerance */
static int close_to(const char *dir, const char *file, const ct_tensor *got)
{
    dc_tensor want = {0};
    if (read_npy(dir, file, &want) != DC_OK || ct_numel(got) != dc_tensor_numel(&want)) {
        test_fail_at(__FILE__, __LINE__, "%s: missing or of another size", file);
        dc_tensor_free(&want);
        return 0;
    }
    size_t n = (size_t)ct_numel(got);
    float *v = malloc(n * sizeof *v);
    int ok = v && ct_to_host(got, v, n * sizeof *v) == DC_OK;
    double err = ok ? max_abs_diff(v, want.data, n) : 1e30;
    double tol = golden_tolerance(want.data, n);
    printf("  %s: max error %.3g (tolerance %.3g)\n", file, err, tol);
    free(v);
    dc_tensor_free(&want);
    if (!(err <= tol)) {
        test_fail_at(__FILE__, __LINE__, "%s: error %.3g over %.3g", file, err, tol);
        return 0;
    }
    return 1;
}

TEST(irse_features_and_identity_loss)
{
    char dir[1024], path[1024];
    if (!golden_case("arcface_irse", dir, sizeof dir))
        return;
    io_state_dict sd = {0};
    nn_idnet *net = NULL;
    CHECK_OK(io_checkpoint_read_file(path_join(path, sizeof path, dir, "irse_fp16.pt"), &sd));
    int st = nn_idnet_load(&net, &sd, path, test_device());
    io_state_dict_free(&sd);
    CHECK_OK(st);
    CHECK(nn_idnet_input_size(net) == 112 && nn_idnet_feature_dim(net) == 512);
    ct_tensor *x = NULL, *x_hat = NULL, *f = NULL, *f_hat = NULL, *losses = NULL;
    CHECK_OK(read_ct(dir, "x.npy", &x));
    CHECK_OK(read_ct(dir, "x_hat.npy", &x_hat));
    CHECK_OK(ft_id_features(net, x, &f));
    CHECK_OK(ft_id_features(net, x_hat, &f_hat));
    CHECK_OK(ft_id_loss_per_sample(net, x, x_hat, &losses));
    if (close_to(dir, "features.npy", f) && close_to(dir, "features_hat.npy", f_hat))
        close_to(dir, "id_loss.npy", losses);
    ct_free(x), ct_free(x_hat), ct_free(f), ct_free(f_hat), ct_free(losses);
    nn_idnet_free(net);
}

TEST(irse_public_api)
{
    char dir[1024], path[1024];
    if (!golden_case("arcface_irse", dir, sizeof dir))
        return;
    dc_idnet *net = NULL;
    CHECK_OK(dc_idnet_load(&net, path_join(path, sizeof path, dir, "irse_fp16.pt"), NULL));
    dc_tensor x = {0}, x_hat = {0}, want = {0}, features = {0}, per_sample = {0}, grad = {0};
    CHECK_OK(read_npy(dir, "x.npy", &x));
    CHECK_OK(read_npy(dir, "x_hat.npy", &x_hat));
    CHECK_OK(read_npy(dir, "features.npy", &want));
    CHECK_OK(dc_idnet_features(net, &x, &features));
    CHECK(features.ndim == 2 && features.shape[0] == 2 && features.shape[1] == 512);
    CHECK(max_abs_diff(features.data, want.data, 1024) <= golden_tolerance(want.data, 1024));
    dc_tensor_free(&want);
    CHECK_OK(read_npy(dir, "id_loss.npy", &want));
    double loss = 0;
    CHECK_OK(dc_idnet_id_loss(net, &x, &x_hat, &loss, &per_sample, &grad));
    const float *w = want.data;
    CHECK(per_sample.ndim == 1 && per_sample.shape[0] == 2);
    CHECK(max_abs_diff(per_sample.data, w, 2) <= golden_tolerance(w, 2));
    CHECK_NEAR(loss, (w[0] + w[1]) / 2, golden_tolerance(w, 2));
    CHECK(grad.ndim == 4 && dc_tensor_numel(&grad) == dc_tensor_numel(&x_hat));
    dc_tensor_free(&x), dc_tensor_free(&x_hat), dc_tensor_free(&want);
    dc_tensor_free(&features), dc_tensor_free(&per_sample), dc_tensor_free(&grad);
    dc_idnet_free(net);
}
