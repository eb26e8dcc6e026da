/* Unseen-domain translation (and stroke-to-image): a picture from outside the base model's
 * domain (a painting, a stroke drawing, a photo of another kind) is first projected into it
 * (noised to t0 and denoised with the base model, repeatedly), then edited with the
 * fine-tuned model. Optionally writes the projection too.
 *
 * usage: translate BASE FINETUNED IMAGE OUT.png [PROJECTED.png]
 *   BASE       the diffusion model of the target domain, e.g. celeba_hq.ckpt
 *   FINETUNED  fine-tuned weights of BASE (a state dict or a .delta file)
 *   IMAGE      the picture to translate (PNG or JPEG)
 */
#include <diffclip.h>
#include <stdio.h>

/* Writes image 0 of an NCHW tensor in [-1, 1] as a PNG or JPEG and says so. */
static dc_status write_image(const dc_tensor *t, const char *path)
{
    dc_image img = {0};
    dc_status status = dc_tensor_to_image(t, 0, &img);
    if (status == DC_OK && (status = dc_image_write(path, &img)) == DC_OK)
        printf("wrote %s (%dx%d)\n", path, img.width, img.height);
    dc_image_free(&img);
    return status;
}

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: %s BASE FINETUNED IMAGE OUT.png [PROJECTED.png]\n", argv[0]);
        return 2;
    }
    const char *projected_path = argc == 6 ? argv[5] : NULL;
    dc_model *base = NULL, *finetuned = NULL;
    dc_sampler *sampler = NULL;
    dc_model_info info;
    dc_image picture = {0};
    dc_tensor x0 = {0}, out = {0}, projected = {0};
    const double weights[2] = {0.0, 1.0};
    dc_edit_options options;
    dc_edit_options_init(&options, DC_EDIT_OPTIONS_VERSION);
    options.repeats = 10;            /* projections (the published README advises > 8) */

    dc_status status = DC_OK;
    if ((status = dc_model_load(&base, argv[1], NULL)) ||
        (status = dc_model_load_finetuned(&finetuned, base, argv[2], NULL)) ||
        (status = dc_model_get_info(base, &info)) ||
        (status = dc_image_read(argv[3], &picture)) ||
        (status = dc_image_to_tensor(&picture, info.image_size, &x0)) ||
        (status = dc_sampler_new(&sampler, (dc_model *[]){base, finetuned}, 2)) ||
        (status = dc_sampler_set_weights(sampler, weights)) ||
        (status = dc_sampler_translate(sampler, &x0, &options, &out,
                                       projected_path ? &projected : NULL)) ||
        (status = write_image(&out, argv[4])) ||
        (projected_path && (status = write_image(&projected, projected_path))))
        fprintf(stderr, "translate: %s\n", dc_last_error());

    dc_tensor_free(&projected);
    dc_tensor_free(&out);
    dc_tensor_free(&x0);
    dc_image_free(&picture);
    dc_sampler_free(sampler);
    dc_model_free(finetuned);
    dc_model_free(base);
    return status == DC_OK ? 0 : 1;
}
