/* A continuous transition from the original photo to the edit: the photo is inverted once,
 * then generated K times with the fine-tuned model's weight going 0, 1/(K-1), ..., 1; the K
 * images are written side by side as one strip.
 *
 * usage: transition BASE FINETUNED IMAGE K STRIP.png
 *   BASE       the diffusion model, e.g. celeba_hq.ckpt
 *   FINETUNED  fine-tuned weights of BASE (a state dict or a .delta file)
 *   K          the number of images, >= 2
 */
#include <diffclip.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 6 || atoi(argv[4]) < 2) {
        fprintf(stderr, "usage: %s BASE FINETUNED IMAGE K STRIP.png (K >= 2)\n", argv[0]);
        return 2;
    }
    int count = atoi(argv[4]);
    dc_model *base = NULL, *finetuned = NULL;
    dc_sampler *sampler = NULL;
    dc_model_info info;
    dc_image photo = {0}, frame = {0}, strip = {0};
    dc_tensor x0 = {0}, out = {0};
    const double edit[2] = {0.0, 1.0};   /* the end of the transition: the fine-tuned model */
    dc_edit_options options;
    dc_edit_options_init(&options, DC_EDIT_OPTIONS_VERSION);

    dc_status status = DC_OK;
    if ((status = dc_model_load(&base, argv[1], NULL)) ||
        (status = dc_model_load_finetuned(&finetuned, base, argv[2], NULL)) ||
        (status = dc_model_get_info(base, &info)) ||
        (status = dc_image_read(argv[3], &photo)) ||
        (status = dc_image_to_tensor(&photo, info.image_size, &x0)) ||
        (status = dc_sampler_new(&sampler, (dc_model *[]){base, finetuned}, 2)) ||
        (status = dc_sampler_set_weights(sampler, edit)) ||
        (status = dc_sampler_transition(sampler, &x0, count, &options, &out)))
        goto done;

    /* out holds the K images (K, 3, S, S); copy each into its column of the strip. */
    int side = info.image_size;
    strip = (dc_image){.width = count * side, .height = side, .channels = 3};
    if (!(strip.data = malloc((size_t)strip.width * side * 3))) {
        fprintf(stderr, "transition: out of memory\n");
        status = DC_ENOMEM;
        goto release;
    }
    for (int k = 0; k < count; k++) {
        if ((status = dc_tensor_to_image(&out, k, &frame)))
            goto done;
        for (int y = 0; y < side; y++)
            memcpy(strip.data + ((size_t)y * strip.width + (size_t)k * side) * 3,
                   frame.data + (size_t)y * side * 3, (size_t)side * 3);
        dc_image_free(&frame);
    }
    if ((status = dc_image_write(argv[5], &strip)))
        goto done;
    printf("wrote %s (%dx%d)\n", argv[5], strip.width, strip.height);

done:
    if (status != DC_OK)
        fprintf(stderr, "transition: %s\n", dc_last_error());
release:
    free(strip.data);            /* our buffer, not the library's: plain free */
    dc_image_free(&frame);
    dc_tensor_free(&out);
    dc_tensor_free(&x0);
    dc_image_free(&photo);
    dc_sampler_free(sampler);
    dc_model_free(finetuned);
    dc_model_free(base);
    return status == DC_OK ? 0 : 1;
}
