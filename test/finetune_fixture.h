/* Shared by the fine-tuning tests: the tiny golden DDPM UNet and CLIP, the CLIP vocabulary,
 * and a latent cache of two 32 x 32 training images (the finetune_step case's x0 and its
 * mirror image) in the test's temporary directory. Included by one test file each. */
#ifndef DC_TEST_FINETUNE_FIXTURE_H
#define DC_TEST_FINETUNE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

typedef struct ft_fixture {
    char golden[1024];
    char model_path[1200];
    dc_model *base;
    dc_clip *clip;
    dc_tokenizer *tokenizer;
    dc_latent_cache *cache;
    dc_finetune_options options;
} ft_fixture;

static const char *const fixture_sources[] = {"face"};
static const char *const fixture_targets[] = {"angry face"};

static void fixture_free(ft_fixture *f)
{
    dc_latent_cache_free(f->cache);
    dc_tokenizer_free(f->tokenizer);
    dc_clip_free(f->clip);
    dc_model_free(f->base);
    memset(f, 0, sizeof *f);
}

/* Loads everything and caches the two images at `cache_name` in the temporary directory
 * (t0 300, 4 inversion steps); the options train 3 steps for 2 epochs of 2 images at lr 1e-3.
 * 0 when the golden data is missing (the test is then skipped) or something failed (the
 * test is then failed). */
static int fixture_init(ft_fixture *f, const char *cache_name)
{
    memset(f, 0, sizeof *f);
    char path[1300], vocab[1024];
    if (!golden_case("ddpm_unet", f->golden, sizeof f->golden) ||
        !clip_data_path("bpe_simple_vocab_16e6.txt.gz", vocab, sizeof vocab))
        return 0;
    char *slash = strrchr(f->golden, '/');
    if (slash)
        *slash = '\0';                       /* the golden root */
    dc_set_num_threads(1);                   /* tiny models: threads only add overhead */
    dc_model_options mo;
    dc_model_options_init(&mo, DC_MODEL_OPTIONS_VERSION);
    mo.device = "cpu";
    snprintf(f->model_path, sizeof f->model_path, "%s/ddpm_unet/model.pt", f->golden);
    dc_diffusion_options d;
    dc_diffusion_options_init(&d, DC_DIFFUSION_OPTIONS_VERSION);
    d.t0 = 300;
    d.steps = 4;
    dc_tensor x0 = {0};
    size_t index;
    int ok = dc_model_load(&f->base, f->model_path, &mo) == DC_OK &&
             dc_clip_load(&f->clip,
                          path_join(path, sizeof path, f->golden, "clip_vit/clip_state_dict.pt"),
                          NULL) == DC_OK &&
             dc_tokenizer_new(&f->tokenizer, vocab) == DC_OK &&
             dc_latent_cache_open(&f->cache,
                                  path_join(path, sizeof path, test_tmpdir(), cache_name),
                                  f->base, &d, 4) == DC_OK &&
             dc_npy_read(path_join(path, sizeof path, f->golden, "finetune_step/x0.npy"),
                         &x0) == DC_OK &&
             dc_latent_cache_add(f->cache, &x0, &index) == DC_OK;
    if (ok) {
        float *v = x0.data;                  /* mirror each row */
        int64_t w = x0.shape[3], rows = x0.shape[1] * x0.shape[2];
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < w / 2; c++) {
                float t = v[r * w + c];
                v[r * w + c] = v[r * w + w - 1 - c];
                v[r * w + w - 1 - c] = t;
            }
        ok = dc_latent_cache_add(f->cache, &x0, &index) == DC_OK;
    }
    dc_tensor_free(&x0);
    if (!ok) {
        test_fail_at(__FILE__, __LINE__, "fixture: %s", dc_last_error());
        fixture_free(f);
        return 0;
    }
    dc_finetune_options *o = &f->options;
    dc_finetune_options_init(o, DC_FINETUNE_OPTIONS_VERSION);
    o->source_texts = fixture_sources;
    o->target_texts = fixture_targets;
    o->text_pairs = 1;
    o->t0 = 300;
    o->inv_steps = 4;
    o->train_steps = 3;
    o->epochs = 2;
    o->images = 2;
    o->learning_rate = 1e-3;
    return 1;
}

#endif
