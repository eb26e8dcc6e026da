/* Reusing a latent cache: inverting a photo (deterministic DDIM, 39 model calls by default)
 * is the slow part of editing and fine-tuning, so its latent is kept in a file and found
 * again the next time the same photo comes with the same model and parameters. Run this
 * twice: the first run inverts the photos, the second finds them in the cache.
 *
 * usage: latent_cache MODEL CACHE.dclat IMAGE...
 *   MODEL  the diffusion model, e.g. celeba_hq.ckpt
 *   CACHE  the cache file; a cache made with another model or other parameters is refused
 * Prints, per image, its entry and how faithful the latent is (inversion then generation).
 */
#include <diffclip.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL CACHE.dclat IMAGE...\n", argv[0]);
        return 2;
    }
    dc_model *model = NULL;
    dc_latent_cache *cache = NULL;
    dc_model_info info;
    dc_diffusion_options inversion;  /* t0 500, 40 steps: the published defaults */
    dc_diffusion_options_init(&inversion, DC_DIFFUSION_OPTIONS_VERSION);

    dc_status status = DC_OK;
    if ((status = dc_model_load(&model, argv[1], NULL)) ||
        (status = dc_model_get_info(model, &info)) ||
        (status = dc_latent_cache_open(&cache, argv[2], model, &inversion, inversion.steps)))
        goto done;
    printf("%s: %zu entries\n", argv[2], dc_latent_cache_count(cache));

    for (int i = 3; i < argc && status == DC_OK; i++) {
        dc_image photo = {0};
        dc_tensor x0 = {0}, x_rec = {0}, x_lat = {0};
        dc_image_metrics fidelity;
        size_t before = dc_latent_cache_count(cache), entry;
        if ((status = dc_image_read(argv[i], &photo)) == DC_OK &&
            (status = dc_image_to_tensor(&photo, info.image_size, &x0)) == DC_OK &&
            (status = dc_latent_cache_add(cache, &x0, &entry)) == DC_OK &&
            (status = dc_latent_cache_get(cache, entry, NULL, &x_rec, &x_lat)) == DC_OK &&
            (status = dc_compare_images(&x0, &x_rec, &fidelity)) == DC_OK)
            printf("%s: entry %zu, %s; latent %lldx%lldx%lld, reconstruction PSNR %.2f dB\n",
                   argv[i], entry,
                   dc_latent_cache_count(cache) > before ? "inverted" : "found in the cache",
                   (long long)x_lat.shape[1], (long long)x_lat.shape[2],
                   (long long)x_lat.shape[3], fidelity.psnr);
        dc_tensor_free(&x_lat);
        dc_tensor_free(&x_rec);
        dc_tensor_free(&x0);
        dc_image_free(&photo);
    }

done:
    if (status != DC_OK)
        fprintf(stderr, "latent_cache: %s\n", dc_last_error());
    dc_latent_cache_free(cache);
    dc_model_free(model);
    return status == DC_OK ? 0 : 1;
}
