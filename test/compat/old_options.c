/* A program written for an older header (test/scripts/test_options_compat.sh makes one: the
 * fields a later version appended removed, the versions lowered) run against the current
 * library. Each options struct lies at the very end of a page whose next page is
 * inaccessible: a library that read or wrote past what this program's header declares
 * would crash here. Prints PASS/FAIL lines and the closing count. Argument: the golden
 * folder's DDPM model (optional; without it the sampler's options are not exercised). */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "diffclip.h"

static int passed, failed;

static void verdict(int ok, const char *name)
{
    printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", name, ok ? "" : ": ", ok ? "" : dc_last_error());
    if (ok)
        passed++;
    else
        failed++;
}

/* `size` bytes that end where an inaccessible page begins. */
static void *at_page_end(size_t size)
{
    long page = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED || mprotect(p + page, (size_t)page, PROT_NONE) != 0) {
        perror("mmap");
        _exit(2);
    }
    return p + page - size;
}

#define GUARDED(type) ((type *)at_page_end(sizeof(type)))

int main(int argc, char **argv)
{
    const char *missing = "/nonexistent/diffclip-old-options";

    dc_model_options *mo = GUARDED(dc_model_options);
    verdict(dc_model_options_init(mo, DC_MODEL_OPTIONS_VERSION) == DC_OK &&
                mo->version == DC_MODEL_OPTIONS_VERSION, "model_options_init");
    dc_model *model = NULL;
    verdict(dc_model_load(&model, missing, mo) == DC_EIO, "model_load_reads_its_version");

    dc_clip_options *co = GUARDED(dc_clip_options);
    dc_clip *clip = NULL;
    verdict(dc_clip_options_init(co, DC_CLIP_OPTIONS_VERSION) == DC_OK &&
                dc_clip_load(&clip, missing, co) == DC_EIO, "clip_options");

    dc_idnet_options *io = GUARDED(dc_idnet_options);
    dc_idnet *idnet = NULL;
    verdict(dc_idnet_options_init(io, DC_IDNET_OPTIONS_VERSION) == DC_OK &&
                dc_idnet_load(&idnet, missing, io) == DC_EIO, "idnet_options");

    dc_face_descriptor_options *fo = GUARDED(dc_face_descriptor_options);
    dc_face_descriptor *face = NULL;
    verdict(dc_face_descriptor_options_init(fo, DC_FACE_DESCRIPTOR_OPTIONS_VERSION) == DC_OK &&
                dc_face_descriptor_load(&face, missing, NULL, fo) == DC_EIO,
            "face_descriptor_options");

    dc_diffusion_options *dopt = GUARDED(dc_diffusion_options);
    float x0_data[3 * 4 * 4] = {0}, xt_data[3 * 4 * 4];
    dc_tensor x0 = {DC_FLOAT32, 4, {1, 3, 4, 4}, x0_data}, xt = {0};
    int ok = dc_diffusion_options_init(dopt, DC_DIFFUSION_OPTIONS_VERSION) == DC_OK &&
             dc_add_noise(&x0, NULL, dopt, &xt) == DC_OK && xt.ndim == 4;
    if (ok)
        memcpy(xt_data, xt.data, sizeof xt_data);
    dc_tensor_free(&xt);
    verdict(ok, "diffusion_options");

    dc_finetune_options *ft = GUARDED(dc_finetune_options);
    verdict(dc_finetune_options_init(ft, DC_FINETUNE_OPTIONS_VERSION) == DC_OK &&
                dc_finetune_options_apply_preset(ft, "angry") == DC_OK && ft->text_pairs == 1,
            "finetune_options_and_preset");

    /* Unknown versions are refused, and nothing is written. */
    dc_model_options *future = GUARDED(dc_model_options);
    memset(future, 0x5a, sizeof *future);
    verdict(dc_model_options_init(future, DC_MODEL_OPTIONS_VERSION + 100) == DC_EINVAL &&
                dc_model_options_init(future, 0) == DC_EINVAL && future->version == 0x5a5a5a5au,
            "unknown_version_refused");
    verdict(dc_version_number() / 10000 == DC_VERSION_NUMBER / 10000 &&
                dc_version_number() >= DC_VERSION_NUMBER, "library_not_older_than_header");

    if (argc > 1) {
        int loaded = dc_model_load(&model, argv[1], NULL) == DC_OK;
        dc_sampler *sampler = NULL;
        loaded = loaded && dc_sampler_new(&sampler, &model, 1) == DC_OK;
        dc_edit_options *eo = GUARDED(dc_edit_options);
        float img[3 * 32 * 32] = {0};
        dc_tensor x = {DC_FLOAT32, 4, {1, 3, 32, 32}, img}, out = {0};
        ok = loaded && dc_edit_options_init(eo, DC_EDIT_OPTIONS_VERSION) == DC_OK;
        eo->t0 = 100;
        eo->inv_steps = eo->gen_steps = 2;
        ok = ok && dc_sampler_edit(sampler, &x, eo, &out) == DC_OK && out.ndim == 4;
        dc_tensor_free(&out);
        dc_sampler_free(sampler);
        dc_model_free(model);
        verdict(ok, "edit_options");
    }
    printf("%d passed, %d failed, 0 skipped\n", passed, failed);
    return failed != 0;
}
