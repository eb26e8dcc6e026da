/* Several attributes at once: mix the noise of two fine-tuned models while generating, with
 * constant weights or, by default, a piecewise schedule over the timesteps (the published
 * hybrid config): FT1 alone while t >= 300, where the coarse structure forms, then FT1 0.3
 * and FT2 0.7 for the details. The base model inverts the photo and gets weight 0 here.
 *
 * usage: multi_attribute BASE FT1 FT2 IMAGE OUT.png [W1 W2]
 *   BASE      the diffusion model, e.g. celeba_hq.ckpt
 *   FT1, FT2  two fine-tuned versions of BASE (state dicts or .delta files)
 *   W1 W2     constant weights of FT1 and FT2 instead of the schedule; the base model gets
 *             1 - W1 - W2 (every weight vector sums to 1; weights may be negative)
 */
#include <diffclip.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 8) {
        fprintf(stderr, "usage: %s BASE FT1 FT2 IMAGE OUT.png [W1 W2]\n", argv[0]);
        return 2;
    }
    dc_model *models[3] = {NULL, NULL, NULL};  /* base, FT1, FT2 */
    dc_sampler *sampler = NULL;
    dc_model_info info;
    dc_image photo = {0}, edited = {0};
    dc_tensor x0 = {0}, out = {0};
    dc_edit_options options;
    dc_edit_options_init(&options, DC_EDIT_OPTIONS_VERSION);

    dc_status status = DC_OK;
    if ((status = dc_model_load(&models[0], argv[1], NULL)) ||
        (status = dc_model_load_finetuned(&models[1], models[0], argv[2], NULL)) ||
        (status = dc_model_load_finetuned(&models[2], models[0], argv[3], NULL)) ||
        (status = dc_model_get_info(models[0], &info)) ||
        (status = dc_image_read(argv[4], &photo)) ||
        (status = dc_image_to_tensor(&photo, info.image_size, &x0)) ||
        (status = dc_sampler_new(&sampler, models, 3)))
        goto done;

    if (argc == 8) {
        double w1 = atof(argv[6]), w2 = atof(argv[7]);
        const double weights[3] = {1.0 - w1 - w2, w1, w2};
        status = dc_sampler_set_weights(sampler, weights);
    } else {
        /* Row k applies from thresholds[k] down to the next lower threshold. */
        const int thresholds[2] = {300, 0};
        const double weights[2 * 3] = {0.0, 1.0, 0.0,   /* t >= 300 */
                                       0.0, 0.3, 0.7};  /* t < 300 */
        status = dc_sampler_set_piecewise(sampler, thresholds, weights, 2);
    }
    double at_t0[3];
    if (status || (status = dc_sampler_weights_at(sampler, options.t0, at_t0)))
        goto done;
    printf("weights at t0 = %d: base %g, FT1 %g, FT2 %g\n", options.t0, at_t0[0], at_t0[1],
           at_t0[2]);

    if ((status = dc_sampler_edit(sampler, &x0, &options, &out)) ||
        (status = dc_tensor_to_image(&out, 0, &edited)) ||
        (status = dc_image_write(argv[5], &edited)))
        goto done;
    printf("wrote %s (%dx%d)\n", argv[5], edited.width, edited.height);

done:
    if (status != DC_OK)
        fprintf(stderr, "multi_attribute: %s\n", dc_last_error());
    dc_image_free(&edited);
    dc_tensor_free(&out);
    dc_tensor_free(&x0);
    dc_image_free(&photo);
    dc_sampler_free(sampler);
    for (int i = 2; i >= 0; i--)
        dc_model_free(models[i]);
    return status == DC_OK ? 0 : 1;
}
