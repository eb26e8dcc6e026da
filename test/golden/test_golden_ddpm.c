/* Conformance of the DDPM UNet and the diffusion maths with golden/ddpm_unet (case.json):
 * eps for t = 0 and 637, DDIM inversion (t_0 300, 8 steps), DDIM generation (4 steps) and
 * the stochastic forward, for the zip and the legacy checkpoint. */
#include "unet_golden.h"

static void check_checkpoint(const char *file)
{
    char dir[1024];
    if (!golden_case("ddpm_unet", dir, sizeof dir))
        return;
    nn_unet *m = NULL;
    CHECK_OK(load_golden_unet(dir, file, NULL, &m));
    const nn_unet_info *info = nn_unet_get_info(m);
    CHECK(info->kind == NN_UNET_DDPM && info->base_channels == 32 && info->levels == 3 &&
          info->num_res_blocks == 1 && info->image_size == 32);
    CHECK(info->attention_count == 1 && info->attention_resolutions[0] == 16);
    int failures = check_unet_case(dir, file, m, "eps.npy", 300, 8, 4);
    nn_unet_free(m);
    CHECKF(failures == 0, "%d outputs of %s outside the tolerance", failures, file);
}

TEST(ddpm_zip_checkpoint_matches_golden) { check_checkpoint("model.pt"); }

TEST(ddpm_legacy_checkpoint_matches_golden) { check_checkpoint("model_legacy.pt"); }

TEST(stochastic_forward_matches_golden)
{
    char dir[1024];
    if (!golden_case("ddpm_unet", dir, sizeof dir))
        return;
    df_schedule s;
    CHECK_OK(df_schedule_init_default(&s));
    ct_tensor *x0 = golden_tensor(dir, "x0.npy"), *noise = golden_tensor(dir, "noise.npy");
    ct_tensor *xt = NULL;
    int status = x0 && noise ? df_ddpm_forward(&s, x0, 300, noise, 0, 0, &xt) : DC_EIO;
    int ok = status == DC_OK && matches_golden("xt_ddpm.npy", xt, dir, "xt_ddpm.npy");
    ct_free(x0);
    ct_free(noise);
    ct_free(xt);
    df_schedule_free(&s);
    CHECK_OK(status);
    CHECK(ok);
}
