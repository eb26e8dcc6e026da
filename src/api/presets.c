/* Fine-tuning presets: the published README's settings per dataset, and the source/target
 * texts of DiffusionCLIP's utils/text_dic.py with the t_0 of the released fine-tuned models
 * (the `_t601` of human_pixar_t601.pth, from the Replicate demo's predict.py). */
#include <string.h>

#include "../core/error.h"
#include "../core/options.h"

/* README: --n_train_img 50 --n_iter 5 --t_0 500 --n_inv_step 40 --n_train_step 6
 * --n_test_step 40 --lr_clip_finetune 8e-6 --id_loss_w 0 --l1_loss_w 1, the CLIP weight 3
 * (main.py's default), sch_gamma 1.3. The same settings are published for every dataset;
 * ImageNet's 512 x 512 model needs the GPU-efficient mode (clip_finetune refuses ImageNet). */
#define README_SETTINGS 500, 40, 6, 40, 8e-6, 1.3, 5, 50, 3.0, 1.0, 0.0

/* The demo's own models (examples/fashion-mnist, trained by tools/train/): settings measured
 * to work for them (README, "A real edit"), not published ones. */
#define FASHION_SETTINGS 500, 40, 6, 40, 1e-4, 1.0, 1, 50, 3.0, 0.6, 0.0

static const dc_dataset_preset dataset_presets[] = {
    {"celeba", "CelebA-HQ faces (celeba.yml)", "celeba_hq.ckpt", 256, README_SETTINGS,
     DC_GRAD_FULL, "celeba.yml"},
    {"afhq", "AFHQ dog faces (afhq.yml)", "afhq_dog_4m.pt", 256, README_SETTINGS,
     DC_GRAD_FULL, "afhq.yml"},
    {"church", "LSUN church (church.yml)", "church_outdoor.ckpt", 256, README_SETTINGS,
     DC_GRAD_FULL, "church.yml"},
    {"bedroom", "LSUN bedroom (bedroom.yml)", "bedroom.ckpt", 256, README_SETTINGS,
     DC_GRAD_FULL, "bedroom.yml"},
    {"imagenet", "ImageNet 512x512 (imagenet.yml)", "512x512_diffusion.pt", 512,
     README_SETTINGS, DC_GRAD_PER_STEP, "imagenet.yml"},
    {"fashion", "Fashion-MNIST 32x32, the demo's model (examples/fashion-mnist/ddpm.yml)",
     "ddpm.pt", 32, FASHION_SETTINGS, DC_GRAD_FULL, "ddpm.yml"},
};

/* text_dic.py, in its order. grey_hair's published target is "person with red hair" (a
 * copy-paste slip, docs/deviations.md); here it is grey hair. */
static const dc_edit_preset edit_presets[] = {
    {"tanned", "celeba", "face", "tanned face", 201},
    {"pale", "celeba", "face", "pale face", 0},
    {"makeup", "celeba", "person", "person with makeup", 301},
    {"no_makeup", "celeba", "person", "person without makeup", 301},
    {"old", "celeba", "person", "old person", 0},
    {"young", "celeba", "person", "young person", 0},
    {"beards", "celeba", "person", "person with beards", 0},
    {"angry", "celeba", "face", "angry face", 0},
    {"surprised", "celeba", "face", "surprised face", 0},
    {"smiling", "celeba", "face", "smiling face", 0},
    {"blond_hair", "celeba", "person", "person with blond hair", 0},
    {"red_hair", "celeba", "person", "person with red hair", 0},
    {"grey_hair", "celeba", "person", "person with grey hair", 0},
    {"curly_hair", "celeba", "person", "person with curly hair", 0},
    {"nicolas", "celeba", "Person", "Nicolas Cage", 0},
    {"zuckerberg", "celeba", "Person", "Mark Zuckerberg", 0},
    {"benedict", "celeba", "Person", "Benedict Cumberbatch", 0},
    {"gogh", "celeba", "photo", "painting by Gogh", 601},
    {"frida", "celeba", "photo", "self-portrait by Frida Kahlo", 0},
    {"modigliani", "celeba", "photo", "Painting in Modigliani style", 0},
    {"sketch", "celeba", "photo", "sketch", 601},
    {"watercolor", "celeba", "photo", "Watercolor Art with Thick Brushstrokes", 0},
    {"elf", "celeba", "Human", "Tolkien elf", 0},
    {"super_saiyan", "celeba", "Human", "Super saiyan", 0},
    {"pixar", "celeba", "Human", "3D render in the style of Pixar", 601},
    {"neanderthal", "celeba", "Human", "Neanderthal", 601},
    {"zombie", "celeba", "Human", "Zombie", 0},
    {"jocker", "celeba", "Human", "The Jocker", 0},
    {"dog_nicolas", "afhq", "Dog", "Nicolas Cage", 601},
    {"dog_yorkshire", "afhq", "Dog", "Yorkshire Terrier", 601},
    {"dog_smiling", "afhq", "Dog", "Smiling Dog", 0},
    {"dog_zombie", "afhq", "Dog", "Zombie", 601},
    {"dog_super_saiyan", "afhq", "Dog", "Super saiyan", 0},
    {"dog_venom", "afhq", "Dog", "Venom", 601},
    {"dog_bear", "afhq", "Dog", "Bear", 500},
    {"dog_fox", "afhq", "Dog", "Fox", 0},
    {"dog_wolf", "afhq", "Dog", "Wolf", 0},
    {"dog_hamster", "afhq", "Dog", "Hamster", 601},
    {"church_snow", "church", "Church", "Snow Coverd Church", 0},
    {"church_night", "church", "Church", "Church at night", 0},
    {"church_red_brick", "church", "Church", "Red brick wall Church", 0},
    {"church_golden", "church", "Church", "Golden Church", 0},
    {"church_wooden_house", "church", "Church", "Wooden House", 0},
    {"church_gothic", "church", "Church", "Gothic Church", 0},
    {"church_ancient_tower", "church", "Church", "Ancient traditional Asian tower", 0},
    {"church_temple", "church", "Church", "Temple", 0},
    {"church_factory", "church", "church", "factory with chimneys", 0},
    {"church_department_store", "church", "church", "department store", 0},
    {"bedroom_blue", "bedroom", "Bedroom", "Blue tone Bedroom", 0},
    {"bedroom_green", "bedroom", "Bedroom", "Green tone Bedroom", 0},
    {"bedroom_golden", "bedroom", "Bedroom", "Golden Bedroom", 0},
    {"bedroom_princess", "bedroom", "Bedroom", "Princess Bedroom", 0},
    {"bedroom_palace", "bedroom", "Bedroom", "Palace Bedroom", 0},
    {"bedroom_wooden", "bedroom", "Bedroom", "Wooden Bedroom", 0},
    /* the demo's (not published) */
    {"fashion_ankle_boot", "fashion", "a photo of a sneaker", "a photo of an ankle boot", 0},
    {"fashion_sandal", "fashion", "a photo of a sneaker", "a photo of a sandal", 0},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

DC_API const dc_dataset_preset *dc_dataset_preset_at(size_t i)
{
    return i < COUNT(dataset_presets) ? &dataset_presets[i] : NULL;
}

DC_API const dc_dataset_preset *dc_dataset_preset_find(const char *name)
{
    for (size_t i = 0; name && i < COUNT(dataset_presets); i++)
        if (strcmp(dataset_presets[i].name, name) == 0)
            return &dataset_presets[i];
    return NULL;
}

DC_API const dc_edit_preset *dc_edit_preset_at(size_t i)
{
    return i < COUNT(edit_presets) ? &edit_presets[i] : NULL;
}

DC_API const dc_edit_preset *dc_edit_preset_find(const char *name)
{
    for (size_t i = 0; name && i < COUNT(edit_presets); i++)
        if (strcmp(edit_presets[i].name, name) == 0)
            return &edit_presets[i];
    return NULL;
}

static void apply_dataset(dc_finetune_options *o, const dc_dataset_preset *d)
{
    o->t0 = d->t0;
    o->inv_steps = d->inv_steps;
    o->train_steps = d->train_steps;
    o->learning_rate = d->learning_rate;
    o->lr_gamma = d->lr_gamma;
    o->epochs = d->epochs;
    o->images = d->images;
    o->clip_weight = d->clip_weight;
    o->l1_weight = d->l1_weight;
    o->id_weight = d->id_weight;
    o->grad_mode = d->grad_mode;
}

DC_API dc_status dc_finetune_options_apply_preset(dc_finetune_options *options,
                                                  const char *name)
{
    if (!options || !name)
        return dci_err(DC_EINVAL, "dc_finetune_options_apply_preset: NULL argument");
    /* The caller's struct may be an older, smaller version: work on a whole one. */
    dc_finetune_options o;
    DCI_TRY(api_options_read(&o, options, &api_finetune_options));
    const dc_dataset_preset *dataset = dc_dataset_preset_find(name);
    const dc_edit_preset *edit = dataset ? NULL : dc_edit_preset_find(name);
    if (!dataset && !edit)
        return dci_err(DC_EINVAL, "no preset called '%s' (dataset presets: celeba, afhq, "
                       "church, bedroom, imagenet, fashion; edit presets as in DiffusionCLIP's "
                       "text_dic.py: neanderthal, pixar, angry, makeup, ...)", name);
    apply_dataset(&o, dataset ? dataset : dc_dataset_preset_find(edit->dataset));
    if (edit) {
        o.source_texts = &edit->source;
        o.target_texts = &edit->target;
        o.text_pairs = 1;
        if (edit->t0)
            o.t0 = edit->t0;
    }
    return (dc_status)api_options_write(options, &o, &api_finetune_options);
}
