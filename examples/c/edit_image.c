/* Edit one photo with a fine-tuned model: invert it with the base model (deterministic DDIM
 * to t0), then generate it back with the fine-tuned model.
 *
 * usage: edit_image BASE FINETUNED IMAGE OUT.png [T0]
 *   BASE       the diffusion model, e.g. celeba_hq.ckpt
 *   FINETUNED  fine-tuned weights of BASE: a state dict (human_neanderthal_t601.pth) or a
 *              .delta file written by dc_finetuner_save (see finetune.c)
 *   IMAGE      a PNG or JPEG photo, centre-cropped and resized to the model's resolution
 *   T0         the edit's t0 (default 500; the released models name theirs: _t601 is 601)
 */
#include <diffclip.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: %s BASE FINETUNED IMAGE OUT.png [T0]\n", argv[0]);
        return 2;
    }
    dc_model *base = NULL, *finetuned = NULL;
    dc_sampler *sampler = NULL;
    dc_model_info info;
    dc_image photo = {0}, edited = {0};
    dc_tensor x0 = {0}, out = {0};

    /* The edit: every step of the generation uses the fine-tuned model's noise alone. */
    const double weights[2] = {0.0, 1.0};
    dc_edit_options options;
    dc_edit_options_init(&options, DC_EDIT_OPTIONS_VERSION);
    if (argc == 6)
        options.t0 = atoi(argv[5]);

    /* Each call returns DC_OK (0) or a negative status, so the chain stops at the first
     * failure; dc_last_error() then names the file or argument that failed. */
    dc_status status = DC_OK;
    if ((status = dc_model_load(&base, argv[1], NULL)) ||
        (status = dc_model_load_finetuned(&finetuned, base, argv[2], NULL)) ||
        (status = dc_model_get_info(base, &info)) ||
        (status = dc_image_read(argv[3], &photo)) ||
        (status = dc_image_to_tensor(&photo, info.image_size, &x0)) ||
        (status = dc_sampler_new(&sampler, (dc_model *[]){base, finetuned}, 2)) ||
        (status = dc_sampler_set_weights(sampler, weights)) ||
        (status = dc_sampler_edit(sampler, &x0, &options, &out)) ||
        (status = dc_tensor_to_image(&out, 0, &edited)) ||
        (status = dc_image_write(argv[4], &edited)))
        fprintf(stderr, "edit_image: %s\n", dc_last_error());
    else
        printf("wrote %s (%dx%d)\n", argv[4], edited.width, edited.height);

    dc_image_free(&edited);
    dc_tensor_free(&out);
    dc_tensor_free(&x0);
    dc_image_free(&photo);
    dc_sampler_free(sampler);
    dc_model_free(finetuned);
    dc_model_free(base);
    return status == DC_OK ? 0 : 1;
}
