/* The diffusion commands of the CLI on the golden DDPM model: results equal the golden
 * arrays, usage errors exit 2, failures exit 1 naming the file. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "io/npy.h"

static int close_to_golden(const char *ours_path, const char *dir, const char *file)
{
    char path[1200];
    dc_tensor ours, golden;
    if (io_npy_read_file(ours_path, &ours) != DC_OK)
        return 0;
    if (io_npy_read_file(path_join(path, sizeof path, dir, file), &golden) != DC_OK) {
        dc_tensor_free(&ours);
        return 0;
    }
    size_t n = (size_t)dc_tensor_numel(&golden);
    int ok = dc_tensor_numel(&ours) == (int64_t)n &&
             max_abs_diff(ours.data, golden.data, n) <= golden_tolerance(golden.data, n);
    dc_tensor_free(&ours), dc_tensor_free(&golden);
    return ok;
}

TEST(cli_eps_invert_generate_noise_match_golden)
{
    char dir[1024], args[8192], out[8192], e[1200], l[1200], r[1200], xt[1200];
    if (!golden_case("ddpm_unet", dir, sizeof dir))
        return;
    const char *tmp = test_tmpdir();
    path_join(e, sizeof e, tmp, "eps.npy");
    path_join(l, sizeof l, tmp, "lat.npy");
    path_join(r, sizeof r, tmp, "rec.npy");
    path_join(xt, sizeof xt, tmp, "xt.npy");
    snprintf(args, sizeof args, "eps --model '%s/model.pt' --x '%s/x.npy' --t '%s/t.npy' "
             "--out '%s' --device cpu --threads 2", dir, dir, dir, e);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    CHECK(close_to_golden(e, dir, "eps.npy"));
    snprintf(args, sizeof args, "invert --model '%s/model_legacy.pt' --x '%s/x0.npy' --t0 300 "
             "--steps 8 --out '%s'", dir, dir, l);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    CHECK(close_to_golden(l, dir, "lat.npy"));
    snprintf(args, sizeof args, "generate --model '%s/model.pt' --latent '%s/lat.npy' "
             "--t0 300 --steps 4 -o '%s'", dir, dir, r);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    CHECK(close_to_golden(r, dir, "rec.npy"));
    snprintf(args, sizeof args, "noise --x '%s/x0.npy' --t0 300 --noise '%s/noise.npy' "
             "--out '%s'", dir, dir, xt);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    CHECK(close_to_golden(xt, dir, "xt_ddpm.npy"));
}

TEST(cli_reconstruct_writes_an_image_and_prints_measures)
{
    char dir[1024], args[4096], out[8192], png[1200];
    if (!golden_case("ddpm_unet", dir, sizeof dir))
        return;
    path_join(png, sizeof png, test_tmpdir(), "rec.png");
    snprintf(args, sizeof args, "generate --model '%s/model.pt' --latent '%s/lat.npy' "
             "--t0 300 --steps 4 --out '%s'", dir, dir, png);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    dc_image img;
    CHECK_OK(dc_image_read(png, &img));
    CHECK(img.width == 2 * 32 && img.height == 32);   /* the two images side by side */
    dc_image_free(&img);
    snprintf(args, sizeof args, "reconstruct --model '%s/model.pt' --image '%s' --t0 300 "
             "--inv-steps 8 --gen-steps 4 -o '%s'", dir, png, png);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    double mae, psnr, ssim;
    CHECKF(sscanf(out, "MAE %lf\nPSNR %lf dB\nSSIM %lf", &mae, &psnr, &ssim) == 3, "%s", out);
    CHECK(mae > 0 && mae < 0.5 && psnr > 5 && ssim > 0 && ssim <= 1);
    CHECK_OK(dc_image_read(png, &img));
    CHECK(img.width == 32 && img.height == 32);
    dc_image_free(&img);
}

TEST(cli_inspect_model_prints_the_inferred_architecture)
{
    char dir[1024], args[2048], out[8192];
    if (!golden_case("adm_unet", dir, sizeof dir))
        return;
    /* channel_mult 1,2,2 is none of guided-diffusion's defaults: the size is not known, and
     * attention can only be placed by level */
    snprintf(args, sizeof args, "inspect --model --head-channels 16 '%s/model.pt'", dir);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    CHECK(strstr(out, "family adm") && strstr(out, "out_channels 6") &&
          strstr(out, "channel_mult 1,2,2") && strstr(out, "attention_levels 1,2") &&
          strstr(out, "head_channels 16") && strstr(out, "image_size unknown"));
    snprintf(args, sizeof args,
             "inspect --model --head-channels 16 --image-size 32 '%s/model.pt'", dir);
    CHECKF(run_cli(args, out, sizeof out, NULL, 0) == 0, "%s", out);
    CHECK(strstr(out, "image_size 32 (from the image-size option)") &&
          strstr(out, "attention_resolutions 16,8"));
}

TEST(cli_diffusion_usage_and_file_errors)
{
    char out[8192];
    CHECK(run_cli("invert --model m.pt --out x.npy", out, sizeof out, NULL, 0) == 2);
    CHECK(strstr(out, "--x is required") && strstr(out, "usage: diffclip invert"));
    CHECK(run_cli("generate --latent l.npy --out o.npy --bogus 1", out, sizeof out, NULL, 0) == 2);
    CHECK(run_cli("noise --x x.npy --t0 300 --out o.npy", out, sizeof out, NULL, 0) == 2);
    CHECK(run_cli("eps --model /nonexistent/model.pt --x x.npy --t t.npy --out o.npy "
                  "--device cpu", out, sizeof out, NULL, 0) == 1);
    CHECK(strstr(out, "diffclip: /nonexistent/model.pt") != NULL);
    CHECK(run_cli("invert --model /nonexistent/m.pt --x x.npy --out o.npy --threads x", out, sizeof out, NULL, 0) == 2);
}
