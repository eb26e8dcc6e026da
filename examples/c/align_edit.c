/* Align the face of a photo as the CelebA-HQ and FFHQ models expect (dlib's landmarks, the
 * published FFHQ-style crop), then edit the aligned face with a fine-tuned model; a photo
 * without a face is edited as given, as the published edit_one_image does.
 *
 * usage: align_edit BASE FINETUNED PHOTO OUT.png [ALIGNED.png [PREDICTOR]]
 *   BASE       the diffusion model, e.g. celeba_hq.ckpt
 *   FINETUNED  fine-tuned weights of BASE (a state dict or a .delta file)
 *   PHOTO      a PNG or JPEG portrait
 *   ALIGNED    also write the aligned face there
 *   PREDICTOR  dlib's shape_predictor_68_face_landmarks.dat (default: Debian's
 *              libdlib-data file, DC_FACE_DEFAULT_PREDICTOR)
 */
#include <diffclip.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 7) {
        fprintf(stderr, "usage: %s BASE FINETUNED PHOTO OUT.png [ALIGNED.png [PREDICTOR]]\n",
                argv[0]);
        return 2;
    }
    dc_model *base = NULL, *finetuned = NULL;
    dc_sampler *sampler = NULL;
    dc_face_aligner *aligner = NULL;
    dc_model_info info;
    dc_image photo = {0}, aligned = {0}, edited = {0};
    dc_tensor x0 = {0}, out = {0};
    dc_face face;
    const double weights[2] = {0.0, 1.0};   /* the fine-tuned model's noise alone */
    dc_edit_options options;
    dc_edit_options_init(&options, DC_EDIT_OPTIONS_VERSION);
    dc_face_aligner_options align_options;
    dc_face_aligner_options_init(&align_options, DC_FACE_ALIGNER_OPTIONS_VERSION);
    if (argc == 7)
        align_options.predictor_path = argv[6];

    dc_status status = DC_OK;
    if ((status = dc_model_load(&base, argv[1], NULL)) ||
        (status = dc_model_load_finetuned(&finetuned, base, argv[2], NULL)) ||
        (status = dc_model_get_info(base, &info)) ||
        (status = dc_face_aligner_new(&aligner, &align_options)) ||
        (status = dc_image_read(argv[3], &photo)))
        goto done;
    /* The face at the model's resolution; no face: the photo as given. */
    status = dc_face_align(aligner, &photo, info.image_size, &aligned, &face);
    if (status == DC_ENOTFOUND) {
        fprintf(stderr, "align_edit: warning: %s; editing the photo as given\n",
                dc_last_error());
        status = dc_image_to_tensor(&photo, info.image_size, &x0);
    } else if (status == DC_OK) {
        printf("face at (%lld, %lld)-(%lld, %lld), eyes at (%lld, %lld) and (%lld, %lld)\n",
               (long long)face.left, (long long)face.top, (long long)face.right,
               (long long)face.bottom, (long long)face.points[2 * 36],
               (long long)face.points[2 * 36 + 1], (long long)face.points[2 * 45],
               (long long)face.points[2 * 45 + 1]);
        if (argc >= 6 && (status = dc_image_write(argv[5], &aligned)) == DC_OK)
            printf("wrote %s (%dx%d)\n", argv[5], aligned.width, aligned.height);
        if (status == DC_OK)
            status = dc_image_to_tensor(&aligned, info.image_size, &x0);
    }
    if (status ||
        (status = dc_sampler_new(&sampler, (dc_model *[]){base, finetuned}, 2)) ||
        (status = dc_sampler_set_weights(sampler, weights)) ||
        (status = dc_sampler_edit(sampler, &x0, &options, &out)) ||
        (status = dc_tensor_to_image(&out, 0, &edited)) ||
        (status = dc_image_write(argv[4], &edited)))
        goto done;
    printf("wrote %s (%dx%d)\n", argv[4], edited.width, edited.height);
done:
    if (status != DC_OK)
        fprintf(stderr, "align_edit: %s\n", dc_last_error());
    dc_image_free(&edited);
    dc_tensor_free(&out);
    dc_tensor_free(&x0);
    dc_image_free(&aligned);
    dc_image_free(&photo);
    dc_face_aligner_free(aligner);
    dc_sampler_free(sampler);
    dc_model_free(finetuned);
    dc_model_free(base);
    return status == DC_OK ? 0 : 1;
}
