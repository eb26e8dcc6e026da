/* Fine-tune a diffusion model on one photo for one epoch, from "face" to "angry face" (or
 * the texts given), and save the result as a compact delta from the base model.
 *
 * usage: finetune BASE CLIP VOCAB IMAGE CACHE.dclat OUT.delta [SOURCE TARGET]
 *   BASE   the diffusion model, e.g. celeba_hq.ckpt
 *   CLIP   CLIP's weights (ViT-B-16.pt); VOCAB its vocabulary, bpe_simple_vocab_16e6.txt.gz
 *   IMAGE  the training photo (real runs use 30 to 50 of them)
 *   CACHE  the latent cache of the training photos (made on the first run, then reused)
 * The other settings are the published CelebA-HQ run's (dc_finetune_options_init).
 * Load the result with dc_model_load_finetuned (see edit_image.c).
 */
#include <diffclip.h>
#include <stdio.h>

/* Called after every generation step of training; one line per trained image. */
static int show_progress(void *user, const dc_progress *p)
{
    (void)user;
    if (p->step == p->steps)
        printf("epoch %d/%d image %d/%d: loss %.4f (clip %.4f, l1 %.4f)\n", p->epoch,
               p->epochs, p->image, p->images, p->loss_total, p->loss_clip, p->loss_l1);
    return 0;                    /* non-zero would stop the training with DC_ECANCELLED */
}

int main(int argc, char **argv)
{
    if (argc != 7 && argc != 9) {
        fprintf(stderr, "usage: %s BASE CLIP VOCAB IMAGE CACHE.dclat OUT.delta [SOURCE TARGET]\n",
                argv[0]);
        return 2;
    }
    const char *source = argc == 9 ? argv[7] : "face";
    const char *target = argc == 9 ? argv[8] : "angry face";

    dc_finetune_options options;
    dc_finetune_options_init(&options, DC_FINETUNE_OPTIONS_VERSION);
    options.source_texts = &source;
    options.target_texts = &target;
    options.text_pairs = 1;
    options.epochs = 1;
    options.progress = show_progress;

    /* The cache inverts with the t0 and step count the training uses. */
    dc_diffusion_options inversion;
    dc_diffusion_options_init(&inversion, DC_DIFFUSION_OPTIONS_VERSION);
    inversion.t0 = options.t0;
    inversion.steps = options.inv_steps;

    dc_model *base = NULL;
    dc_clip *clip = NULL;
    dc_tokenizer *tokenizer = NULL;
    dc_latent_cache *cache = NULL;
    dc_finetuner *ft = NULL;
    dc_model_info info;
    dc_image photo = {0};
    dc_tensor x0 = {0};
    size_t entry;

    dc_status status = DC_OK;
    if ((status = dc_model_load(&base, argv[1], NULL)) ||
        (status = dc_clip_load(&clip, argv[2], NULL)) ||
        (status = dc_tokenizer_new(&tokenizer, argv[3])) ||
        (status = dc_model_get_info(base, &info)) ||
        (status = dc_image_read(argv[4], &photo)) ||
        (status = dc_image_to_tensor(&photo, info.image_size, &x0)) ||
        (status = dc_latent_cache_open(&cache, argv[5], base, &inversion, options.inv_steps)) ||
        (status = dc_latent_cache_add(cache, &x0, &entry)))
        goto done;

    options.image_indices = &entry;  /* train on the photo's cache entry */
    options.image_count = 1;
    printf("fine-tuning '%s' -> '%s'\n", source, target);
    if ((status = dc_finetuner_new(&ft, base, clip, tokenizer, NULL, cache, &options)) ||
        (status = dc_finetuner_train(ft, 0, argv[6])))
        goto done;
    printf("wrote %s\n", argv[6]);

done:
    if (status != DC_OK)
        fprintf(stderr, "finetune: %s\n", dc_last_error());
    dc_finetuner_free(ft);
    dc_latent_cache_free(cache);
    dc_tensor_free(&x0);
    dc_image_free(&photo);
    dc_tokenizer_free(tokenizer);
    dc_clip_free(clip);
    dc_model_free(base);
    return status == DC_OK ? 0 : 1;
}
