/* The public fine-tuner on the tiny golden models: progress reports, per-epoch saving,
 * cancellation and resuming, the per-step mode's identity gradient, the delta format and
 * fine-tuned model loading (also by Debian's python3-torch), presets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "finetune_fixture.h"

typedef struct progress_log {
    int calls, optimised_steps;
    int epoch_reports, epoch_fields_ok;  /* stage "finetune-epoch" */
    dc_progress last_epoch;
    char last_grid[1300];
    int cancel_at_epoch;             /* > 0: cancel at the first report of that epoch */
    int first_epoch_report;          /* the epoch of the first "finetune-epoch" report */
    int first_epoch;
    double first_lr, last_lr;
    dc_progress last;
    int fields_ok;
} progress_log;

static int log_progress(void *user, const dc_progress *p)
{
    progress_log *l = user;
    if (strcmp(p->stage, "finetune-epoch") == 0) {
        /* epoch 0 before training, then 1, 2, ...; losses from the epoch's Adam steps */
        if (l->epoch_reports == 0)
            l->epoch_fields_ok = 1;
        l->epoch_fields_ok &= p->version == DC_PROGRESS_VERSION &&
                              p->epoch == l->first_epoch_report + l->epoch_reports &&
                              (p->epoch == 0) == (p->epoch_loss_total == 0) &&
                              fabs(p->test_direction) <= 1;
        snprintf(l->last_grid, sizeof l->last_grid, "%s", p->test_grid ? p->test_grid : "");
        l->epoch_reports++;
        l->last_epoch = *p;
        return 0;
    }
    if (l->calls++ == 0) {
        l->first_epoch = p->epoch;
        l->first_lr = p->learning_rate;
        l->fields_ok = 1;
    }
    l->fields_ok &= p->version == DC_PROGRESS_VERSION && strcmp(p->stage, "finetune") == 0 &&
                    p->step >= 1 && p->step <= p->steps && p->image >= 1 &&
                    p->image <= p->images && p->epoch >= 1 && p->epoch <= p->epochs &&
                    p->seconds_per_image > 0 && p->eta_seconds >= 0;
    if (p->grad_norm > 0 && (p->step == p->steps || l->last.grad_norm != p->grad_norm))
        l->optimised_steps++;
    l->last_lr = p->learning_rate;
    l->last = *p;
    return l->cancel_at_epoch > 0 && p->epoch == l->cancel_at_epoch;
}

static const char *tmp_path(char *buf, size_t size, const char *name)
{
    return path_join(buf, size, test_tmpdir(), name);
}

static double eps_distance(dc_model *a, dc_model *b, const ft_fixture *f)
{
    dc_tensor x0 = {0}, ea = {0}, eb = {0};
    float t_value = 300;
    dc_tensor t = {.dtype = DC_FLOAT32, .ndim = 1, .shape = {1}, .data = &t_value};
    double d = -1;
    if (dc_latent_cache_get(f->cache, 0, &x0, NULL, NULL) == DC_OK &&
        dc_model_eps(a, &x0, &t, &ea) == DC_OK && dc_model_eps(b, &x0, &t, &eb) == DC_OK) {
        size_t n = (size_t)dc_tensor_numel(&ea);
        d = max_abs_diff(ea.data, eb.data, n);
    }
    dc_tensor_free(&x0), dc_tensor_free(&ea), dc_tensor_free(&eb);
    return d;
}

static dc_model *load_copy_of_base(const ft_fixture *f)
{
    dc_model_options mo;
    dc_model_options_init(&mo, DC_MODEL_OPTIONS_VERSION);
    mo.device = "cpu";
    dc_model *m = NULL;
    return dc_model_load(&m, f->model_path, &mo) == DC_OK ? m : NULL;
}

TEST(full_mode_trains_saves_every_epoch_and_leaves_the_base_alone)
{
    ft_fixture f;
    if (!fixture_init(&f, "full.dclat"))
        return;
    progress_log log = {0};
    f.options.progress = log_progress;
    f.options.progress_user = &log;
    dc_model *reference = load_copy_of_base(&f);
    CHECK(reference);
    dc_finetuner *ft = NULL;
    CHECK_OK(dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, NULL, f.cache, &f.options));
    char out[1300], epoch1[1300];
    tmp_path(out, sizeof out, "full.pt");
    tmp_path(epoch1, sizeof epoch1, "full.epoch1.pt");
    CHECK_OK(dc_finetuner_train(ft, 0, out));
    /* 2 epochs x 2 images x 3 steps, one Adam step per image */
    CHECK(log.calls == 12);
    CHECK(log.fields_ok);
    CHECK(log.optimised_steps == 4);
    CHECK(log.last.epochs == 2 && log.last.images == 2 && log.last.steps == 3);
    CHECK(log.last.loss_clip > 0 && log.last.loss_l1 > 0 && log.last.loss_id == 0);
    CHECK_NEAR(log.last.loss_total, 3 * log.last.loss_clip + log.last.loss_l1, 1e-6);
    CHECK_NEAR(log.first_lr, 1e-3, 1e-12);
    CHECK_NEAR(log.last_lr, 1.3e-3, 1e-12);
    CHECK(access(out, F_OK) == 0 && access(epoch1, F_OK) != 0);

    /* The base is untouched; the saved weights differ from it and load on top of it. */
    CHECK(eps_distance(f.base, reference, &f) == 0);
    dc_model *tuned = NULL;
    CHECK_OK(dc_model_load_finetuned(&tuned, f.base, out, NULL));
    double moved = eps_distance(tuned, f.base, &f);
    CHECK(moved > 1e-3);
    /* The same weights as the fine-tuner holds: saving again gives an identical model. */
    char again[1300];
    CHECK_OK(dc_finetuner_save(ft, tmp_path(again, sizeof again, "again.safetensors")));
    dc_model *tuned2 = NULL;
    CHECK_OK(dc_model_load_finetuned(&tuned2, f.base, again, NULL));
    CHECK(eps_distance(tuned, tuned2, &f) == 0);

    dc_model_free(tuned2);
    dc_model_free(tuned);
    dc_model_free(reference);
    dc_finetuner_free(ft);
    fixture_free(&f);
}

/* A fine-tuner over the fixture with its current options, trained into the temporary file
 * `name` (its path in `path`), then freed. */
static void train_into(ft_fixture *f, const char *name, char *path, size_t size)
{
    dc_finetuner *ft = NULL;
    CHECK_OK(dc_finetuner_new(&ft, f->base, f->clip, f->tokenizer, NULL, f->cache, &f->options));
    int status = dc_finetuner_train(ft, 0, tmp_path(path, size, name));
    dc_finetuner_free(ft);
    CHECK_OK(status);
}

/* The published do_test: a grid per epoch (and one before training) of the test images. */
TEST(test_images_make_a_grid_per_epoch_and_epoch_reports)
{
    ft_fixture f;
    if (!fixture_init(&f, "tests.dclat"))
        return;
    progress_log log = {0};
    f.options.progress = log_progress;
    f.options.progress_user = &log;
    f.options.test_images = 5;               /* more than the cache holds: its 2 */
    f.options.test_steps = 3;
    dc_finetuner *ft = NULL;
    CHECK_OK(dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, NULL, f.cache, &f.options));
    char out[1300], grid[1300];
    CHECK_OK(dc_finetuner_train(ft, 0, tmp_path(out, sizeof out, "tests.pt")));
    CHECK(log.epoch_reports == 3 && log.epoch_fields_ok);
    CHECK(log.calls == 12);
    CHECK(log.last_epoch.epoch_loss_clip > 0 && log.last_epoch.epoch_loss_l1 > 0);
    CHECK(log.last_epoch.test_direction != 0);
    CHECK(strcmp(log.last_grid, tmp_path(grid, sizeof grid, "tests.epoch2.test.png")) == 0);
    for (int e = 0; e <= 2; e++) {
        char name[64];
        snprintf(name, sizeof name, "tests.epoch%d.test.png", e);
        dc_image img = {0};
        CHECK_OK(dc_image_read(tmp_path(grid, sizeof grid, name), &img));
        /* 2 rows and 3 columns of 32 x 32 with 2-pixel gaps */
        CHECKF(img.width == 3 * 32 + 4 && img.height == 2 * 32 + 2, "%s is %d x %d", name,
               img.width, img.height);
        dc_image_free(&img);
    }
    dc_finetuner_free(ft);

    /* Without test images: the epoch reports still come, without a grid. */
    progress_log plain = {0};
    f.options.progress_user = &plain;
    f.options.test_images = 0;
    train_into(&f, "plain.pt", out, sizeof out);
    CHECK(plain.epoch_reports == 3 && plain.epoch_fields_ok && plain.last_grid[0] == 0);
    CHECK(access(tmp_path(grid, sizeof grid, "plain.epoch0.test.png"), F_OK) != 0);

    /* A program built against version 1 of the options never sees the new stage. */
    progress_log old = {0};
    f.options.progress_user = &old;
    f.options.version = 1;
    train_into(&f, "old.pt", out, sizeof out);
    CHECK(old.epoch_reports == 0 && old.calls == 12 && old.fields_ok);
    fixture_free(&f);
}

/* Recomputation and bfloat16 through the public options: both train and save; the
 * recomputed run's weights equal the stored-graph run's. */
TEST(recompute_and_bfloat16_fine_tuning_through_the_options)
{
    ft_fixture f;
    if (!fixture_init(&f, "modes.dclat"))
        return;
    char stored[1300], recomputed[1300], half[1300];
    dc_finetuner *ft = NULL;
    train_into(&f, "stored.pt", stored, sizeof stored);
    f.options.recompute = 1;
    train_into(&f, "re.pt", recomputed, sizeof recomputed);
    f.options.recompute = 0;
    f.options.dtype = DC_BFLOAT16;
    train_into(&f, "half.pt", half, sizeof half);
    dc_model *a = NULL, *b = NULL, *c = NULL;
    CHECK_OK(dc_model_load_finetuned(&a, f.base, stored, NULL));
    CHECK_OK(dc_model_load_finetuned(&b, f.base, recomputed, NULL));
    CHECK_OK(dc_model_load_finetuned(&c, f.base, half, NULL));
    double same = eps_distance(a, b, &f), moved = eps_distance(c, f.base, &f);
    double apart = eps_distance(c, a, &f);
    printf("  recomputed vs stored: max |eps difference| %.3g; bfloat16 vs base %.3g, vs "
           "float32 %.3g\n", same, moved, apart);
    CHECK(same <= 1e-5);
    CHECK(moved > 1e-3 && apart < moved);
    dc_model_free(a), dc_model_free(b), dc_model_free(c);

    /* Settings that cannot work are refused up front. */
    f.options.dtype = DC_FLOAT16;            /* CUDA only */
    CHECK_STATUS(dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, NULL, f.cache, &f.options),
                 DC_EINVAL);
    f.options.dtype = DC_FLOAT32;
    f.options.recompute = 1;
    f.options.grad_mode = DC_GRAD_PER_STEP;
    CHECK_STATUS(dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, NULL, f.cache, &f.options),
                 DC_EINVAL);
    CHECK(strstr(dc_last_error(), "full-gradient") != NULL);
    f.options.recompute = 0;
    f.options.grad_mode = DC_GRAD_FULL;
    f.options.test_steps = 1;
    CHECK_STATUS(dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, NULL, f.cache, &f.options),
                 DC_EINVAL);
    fixture_free(&f);
}

TEST(saved_state_dict_loads_in_python_torch_with_the_base_keys)
{
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
        test_skip("Debian's python3-torch is not installed");
        return;
    }
    ft_fixture f;
    if (!fixture_init(&f, "python.dclat"))
        return;
    f.options.epochs = 1;
    f.options.images = 1;
    dc_finetuner *ft = NULL;
    CHECK_OK(dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, NULL, f.cache, &f.options));
    char out[1300], cmd[4096];
    CHECK_OK(dc_finetuner_train(ft, 0, tmp_path(out, sizeof out, "python.pt")));
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import sys, torch\n"
             "ft = torch.load(sys.argv[1]); base = torch.load(sys.argv[2])\n"
             "assert list(ft.keys()) == list(base.keys())\n"
             "assert all(ft[k].shape == base[k].shape and ft[k].dtype == torch.float32 "
             "for k in ft)\n"
             "assert sum(float((ft[k] - base[k]).abs().sum()) for k in ft) > 0\" '%s' '%s'",
             out, f.model_path);
    CHECK(system(cmd) == 0);
    dc_finetuner_free(ft);
    fixture_free(&f);
}

TEST(delta_files_are_small_and_load_only_on_their_base)
{
    ft_fixture f;
    if (!fixture_init(&f, "delta.dclat"))
        return;
    f.options.epochs = 1;
    dc_finetuner *ft = NULL;
    CHECK_OK(dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, NULL, f.cache, &f.options));
    char full[1300], delta[1300], delta2[1300];
    CHECK_OK(dc_finetuner_train(ft, 0, tmp_path(full, sizeof full, "d.pt")));
    CHECK_OK(dc_finetuner_save(ft, tmp_path(delta, sizeof delta, "d.delta")));
    FILE *a = fopen(full, "rb"), *b = fopen(delta, "rb");
    CHECK(a && b);
    fseek(a, 0, SEEK_END), fseek(b, 0, SEEK_END);
    long full_size = ftell(a), delta_size = ftell(b);
    fclose(a), fclose(b);
    printf("  full state dict %ld bytes, delta %ld bytes\n", full_size, delta_size);
    CHECK(delta_size < full_size / 2);

    dc_model *from_full = NULL, *from_delta = NULL, *resaved = NULL;
    CHECK_OK(dc_model_load_finetuned(&from_full, f.base, full, NULL));
    CHECK_OK(dc_model_load_finetuned(&from_delta, f.base, delta, NULL));
    double moved = eps_distance(from_full, f.base, &f);
    double err = eps_distance(from_full, from_delta, &f);
    printf("  eps: fine-tuning moved it by %.3g, the float16 delta is off by %.3g\n", moved,
           err);
    CHECK(err < 1e-3 * moved);
    /* dc_model_save_delta of the loaded model gives the same file content back. */
    CHECK_OK(dc_model_save_delta(from_delta, f.base, tmp_path(delta2, sizeof delta2, "d2.delta")));
    CHECK_OK(dc_model_load_finetuned(&resaved, f.base, delta2, NULL));
    CHECK(eps_distance(resaved, from_delta, &f) == 0);

    /* Another base (one weight changed) refuses the delta; a full state dict still loads. */
    dc_checkpoint *ck = NULL;
    CHECK_OK(dc_checkpoint_open(&ck, f.model_path));
    size_t n = dc_checkpoint_count(ck);
    dc_named_tensor *named = calloc(n, sizeof *named);
    CHECK(named);
    for (size_t i = 0; i < n; i++) {
        named[i].name = dc_checkpoint_name(ck, i);
        CHECK_OK(dc_checkpoint_tensor(ck, i, &named[i].tensor));
    }
    ((float *)named[0].tensor.data)[0] += 1.0f;
    char other_path[1300];
    CHECK_OK(dc_checkpoint_write(tmp_path(other_path, sizeof other_path, "other.pt"),
                                 DC_FORMAT_TORCH_ZIP, named, n));
    free(named);
    dc_checkpoint_free(ck);
    dc_model_options mo;
    dc_model_options_init(&mo, DC_MODEL_OPTIONS_VERSION);
    mo.device = "cpu";
    dc_model *other = NULL, *x = NULL;
    CHECK_OK(dc_model_load(&other, other_path, &mo));
    CHECK_STATUS(dc_model_load_finetuned(&x, other, delta, NULL), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "another base model") != NULL);
    CHECK_OK(dc_model_load_finetuned(&x, other, full, NULL));
    dc_model_free(x);
    x = NULL;
    /* A model of another architecture refuses the weights. */
    char adm_path[1300];
    dc_model *adm = NULL;
    mo.head_channels = 16;
    CHECK_OK(dc_model_load(&adm, path_join(adm_path, sizeof adm_path, f.golden,
                                           "adm_unet/model.pt"), &mo));
    CHECK_STATUS(dc_model_load_finetuned(&x, adm, full, NULL), DC_EFORMAT);
    CHECK_STATUS(dc_model_load_finetuned(&x, f.base, adm_path, NULL), DC_EFORMAT);
    CHECK(x == NULL);

    dc_model_free(adm);
    dc_model_free(other);
    dc_model_free(resaved);
    dc_model_free(from_delta);
    dc_model_free(from_full);
    dc_finetuner_free(ft);
    fixture_free(&f);
}

TEST(per_step_mode_steps_adam_every_step_and_the_identity_loss_has_a_gradient)
{
    ft_fixture f;
    if (!fixture_init(&f, "perstep.dclat"))
        return;
    char id_path[1300];
    dc_idnet *idnet = NULL;
    CHECK_OK(dc_idnet_load(&idnet, path_join(id_path, sizeof id_path, f.golden,
                                             "arcface_irse/irse_fp16.pt"), NULL));
    progress_log log = {0};
    f.options.progress = log_progress;
    f.options.progress_user = &log;
    f.options.grad_mode = DC_GRAD_PER_STEP;
    f.options.epochs = 1;
    /* Only the identity loss: the published eff mode would get no gradient at all. */
    f.options.clip_weight = 0;
    f.options.l1_weight = 0;
    f.options.id_weight = 1;
    dc_finetuner *ft = NULL;
    CHECK_OK(dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, idnet, f.cache, &f.options));
    char out[1300];
    CHECK_OK(dc_finetuner_train(ft, 0, tmp_path(out, sizeof out, "perstep.delta")));
    CHECK(log.calls == 6 && log.fields_ok);
    CHECK(log.optimised_steps == 6);
    CHECK(log.last.loss_id > 0 && log.last.grad_norm > 0);
    CHECK(log.last.loss_clip == 0 && log.last.loss_l1 == 0);
    dc_model *tuned = NULL;
    CHECK_OK(dc_model_load_finetuned(&tuned, f.base, out, NULL));
    CHECK(eps_distance(tuned, f.base, &f) > 0);

    /* Without an identity network an identity weight is refused. */
    dc_finetuner *bad = NULL;
    CHECK_STATUS(dc_finetuner_new(&bad, f.base, f.clip, f.tokenizer, NULL, f.cache, &f.options),
                 DC_EINVAL);
    dc_model_free(tuned);
    dc_finetuner_free(ft);
    dc_idnet_free(idnet);
    fixture_free(&f);
}

TEST(cancelling_keeps_the_last_epoch_and_resuming_continues_from_it)
{
    ft_fixture f;
    if (!fixture_init(&f, "resume.dclat"))
        return;
    progress_log log = {.cancel_at_epoch = 2};
    f.options.progress = log_progress;
    f.options.progress_user = &log;
    f.options.epochs = 3;
    dc_finetuner *ft = NULL;
    CHECK_OK(dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, NULL, f.cache, &f.options));
    char out[1300], epoch1[1300], epoch2[1300];
    tmp_path(out, sizeof out, "resume.pt");
    tmp_path(epoch1, sizeof epoch1, "resume.epoch1.pt");
    tmp_path(epoch2, sizeof epoch2, "resume.epoch2.pt");
    CHECK_STATUS(dc_finetuner_train(ft, 0, out), DC_ECANCELLED);
    CHECK(log.calls == 7);               /* epoch 1 (2 images x 3 steps), then the cancel */
    CHECK(access(epoch1, F_OK) == 0 && access(out, F_OK) != 0);
    dc_model *epoch1_model = NULL;
    CHECK_OK(dc_model_load_finetuned(&epoch1_model, f.base, epoch1, NULL));

    /* The handle is usable: resuming starts at epoch 2 with epoch 2's learning rate. */
    memset(&log, 0, sizeof log);
    dc_finetuner_free(ft);
    f.options.resume = 1;
    CHECK_OK(dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, NULL, f.cache, &f.options));
    CHECK_OK(dc_finetuner_train(ft, 0, out));
    CHECK(log.calls == 12 && log.first_epoch == 2);
    CHECK_NEAR(log.first_lr, 1.3e-3, 1e-12);
    CHECK_NEAR(log.last_lr, 1.69e-3, 1e-12);
    CHECK(access(out, F_OK) == 0 && access(epoch1, F_OK) != 0 && access(epoch2, F_OK) != 0);
    dc_model *final_model = NULL;
    CHECK_OK(dc_model_load_finetuned(&final_model, f.base, out, NULL));
    CHECK(eps_distance(final_model, epoch1_model, &f) > 0);

    /* A finished run resumes to nothing and holds the saved weights. */
    memset(&log, 0, sizeof log);
    CHECK_OK(dc_finetuner_train(ft, 0, out));
    CHECK(log.calls == 0);
    char again[1300];
    CHECK_OK(dc_finetuner_save(ft, tmp_path(again, sizeof again, "resume-again.pt")));
    dc_model *again_model = NULL;
    CHECK_OK(dc_model_load_finetuned(&again_model, f.base, again, NULL));
    CHECK(eps_distance(again_model, final_model, &f) == 0);

    /* The same handle trains a fresh run without resume (after a cancel too). */
    dc_finetuner_free(ft);
    f.options.resume = 0;
    f.options.epochs = 1;
    log.cancel_at_epoch = 1;
    CHECK_OK(dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, NULL, f.cache, &f.options));
    CHECK_STATUS(dc_finetuner_train(ft, 0, again), DC_ECANCELLED);
    log.cancel_at_epoch = 0;
    CHECK_OK(dc_finetuner_train(ft, 0, again));

    dc_model_free(again_model);
    dc_model_free(final_model);
    dc_model_free(epoch1_model);
    dc_finetuner_free(ft);
    fixture_free(&f);
}

TEST(options_are_checked_against_the_cache)
{
    ft_fixture f;
    if (!fixture_init(&f, "options.dclat"))
        return;
    dc_finetuner *ft = NULL;
    dc_finetune_options o = f.options;
    o.t0 = 301;
    CHECK_STATUS(dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, NULL, f.cache, &o),
                 DC_EINVAL);
    CHECK(strstr(dc_last_error(), "latent cache") != NULL);
    o = f.options;
    o.text_pairs = 0;
    CHECK_STATUS(dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, NULL, f.cache, &o),
                 DC_EINVAL);
    o = f.options;
    o.train_steps = 1;
    CHECK_STATUS(dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, NULL, f.cache, &o),
                 DC_EINVAL);
    o = f.options;
    size_t bad_index = 5;
    o.image_indices = &bad_index;
    o.image_count = 1;
    CHECK_STATUS(dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, NULL, f.cache, &o),
                 DC_EINVAL);
    o = f.options;
    o.version = 99;
    CHECK_STATUS(dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, NULL, f.cache, &o),
                 DC_EINVAL);
    CHECK(ft == NULL);
    CHECK_OK(dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, NULL, f.cache, &f.options));
    char out[1300];
    CHECK_STATUS(dc_finetuner_train(ft, 1, tmp_path(out, sizeof out, "x.pt")), DC_EINVAL);
    dc_finetuner_free(ft);
    fixture_free(&f);
}

TEST(presets_hold_the_published_settings)
{
    CHECK(dc_dataset_preset_find("celeba") && dc_dataset_preset_find("imagenet"));
    CHECK(dc_dataset_preset_find("nope") == NULL);
    size_t datasets = 0, edits = 0;
    while (dc_dataset_preset_at(datasets))
        datasets++;
    while (dc_edit_preset_at(edits))
        edits++;
    CHECK(datasets == 6 && edits == 56);         /* the published ones and the demo's */
    CHECK(dc_dataset_preset_find("fashion")->image_size == 32);
    CHECK(strcmp(dc_edit_preset_find("fashion_ankle_boot")->dataset, "fashion") == 0);
    for (size_t i = 0; i < edits; i++)
        CHECK(dc_dataset_preset_find(dc_edit_preset_at(i)->dataset) != NULL);
    CHECK(strcmp(dc_edit_preset_find("grey_hair")->target, "person with grey hair") == 0);
    CHECK(dc_dataset_preset_find("imagenet")->grad_mode == DC_GRAD_PER_STEP);
    CHECK(dc_dataset_preset_find("imagenet")->image_size == 512);

    dc_finetune_options o;
    dc_finetune_options_init(&o, DC_FINETUNE_OPTIONS_VERSION);
    o.learning_rate = 1;
    CHECK_OK(dc_finetune_options_apply_preset(&o, "neanderthal"));
    CHECK(o.text_pairs == 1 && strcmp(o.source_texts[0], "Human") == 0 &&
          strcmp(o.target_texts[0], "Neanderthal") == 0);
    CHECK(o.t0 == 601 && o.inv_steps == 40 && o.train_steps == 6 && o.epochs == 5 &&
          o.images == 50);
    CHECK_NEAR(o.learning_rate, 8e-6, 1e-15);
    CHECK_NEAR(o.lr_gamma, 1.3, 1e-15);
    CHECK(o.clip_weight == 3 && o.l1_weight == 1 && o.id_weight == 0);
    CHECK_OK(dc_finetune_options_apply_preset(&o, "angry"));
    CHECK(o.t0 == 500 && strcmp(o.target_texts[0], "angry face") == 0);
    CHECK_OK(dc_finetune_options_apply_preset(&o, "imagenet"));
    CHECK(o.grad_mode == DC_GRAD_PER_STEP && o.text_pairs == 1);
    CHECK_STATUS(dc_finetune_options_apply_preset(&o, "no-such-preset"), DC_EINVAL);
}
