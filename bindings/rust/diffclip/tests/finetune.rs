//! The fine-tuner on the tiny golden models (DDPM UNet, CLIP ViT, one training image):
//! progress, cancelling from the closure, saved weights loading back on their base, presets.
mod common;

use common::{floats, golden, npy, scratch, vocabulary};
use diffclip::{
    Clip, ClipOptions, DatasetPreset, DiffusionOptions, EditPreset, FinetuneOptions, Finetuner,
    GradMode, LatentCache, Model, ModelOptions, Status, Tensor, TensorView, Tokenizer,
};

fn eps(model: &mut Model, x0: &Tensor) -> Vec<f32> {
    let t = TensorView::new(&[300.0f32], &[1]).unwrap();
    floats(&model.eps(&x0.view(), &t).unwrap()).to_vec()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn finetune_reports_cancels_and_saves_weights_that_load_back() {
    let (root, vocab) = match (golden("ddpm_unet"), vocabulary()) {
        (Some(dir), Some(vocab)) => (dir.join(".."), vocab),
        _ => return,
    };
    let dir = scratch("finetune");
    let cpu = ModelOptions::new().device("cpu");
    let mut base = Model::load(root.join("ddpm_unet/model.pt"), &cpu).unwrap();
    let mut clip = Clip::load(
        root.join("clip_vit/clip_state_dict.pt"),
        &ClipOptions::new(),
    )
    .unwrap();
    let mut tokenizer = Tokenizer::new(vocab).unwrap();
    let x0 = npy(&root, "finetune_step/x0.npy");
    let base_eps = eps(&mut base, &x0);
    let mut cache = LatentCache::open(
        dir.join("train.cache"),
        &mut base,
        DiffusionOptions::new().t0(300).steps(4),
        2,
    )
    .unwrap();
    assert_eq!(cache.add(&x0.view()).unwrap(), 0);

    // 1 epoch of 1 image, 2 generation steps; the closure cancels the first run at its
    // first report and lets the second one through
    let mut seen = Vec::new();
    let mut epoch_reports = Vec::new();
    let mut runs = 0;
    let options = FinetuneOptions::new()
        .texts(&[("face", "angry face")])
        .t0(300)
        .inv_steps(4)
        .train_steps(2)
        .epochs(1)
        .images(1)
        .learning_rate(1e-3)
        .recompute(true)
        .progress(|p| {
            if p.stage == "finetune-epoch" {
                epoch_reports.push((p.epoch, p.epoch_loss_total, p.test_grid.is_some()));
                return true;
            }
            if p.step == 1 {
                runs += 1;
            }
            seen.push((p.stage.to_string(), p.epoch, p.step, p.steps, p.loss_clip));
            runs > 1
        });
    let mut ft = Finetuner::new(&mut cache, &mut clip, &mut tokenizer, None, options).unwrap();
    assert_eq!(ft.text_pairs(), 1);
    let full = dir.join("ft.pt");
    let error = ft.train(0, &full).unwrap_err();
    assert_eq!(error.status(), Status::Cancelled);
    assert!(!full.exists());
    ft.train(0, &full).unwrap();
    assert!(full.exists());
    let delta = dir.join("ft.delta");
    ft.save(&delta).unwrap();
    assert_eq!(
        ft.train(1, dir.join("x.pt")).unwrap_err().status(),
        Status::InvalidArgument
    );
    drop(ft);
    drop(cache);
    assert_eq!(seen.len(), 3);
    assert!(seen
        .iter()
        .all(|(stage, epoch, _, steps, _)| stage == "finetune" && *epoch == 1 && *steps == 2));
    assert_eq!(seen.iter().map(|s| s.2).collect::<Vec<_>>(), vec![1, 1, 2]);
    assert!(seen[2].4 > 0.0);
    // epoch 0 of both runs, then epoch 1 of the second; no test images, so no grid
    assert_eq!(
        epoch_reports.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![0, 0, 1]
    );
    assert!(epoch_reports[2].1 > 0.0 && epoch_reports.iter().all(|r| !r.2));

    // the weights load on top of the base, which is unchanged
    assert_eq!(eps(&mut base, &x0), base_eps);
    let mut tuned = Model::load_finetuned(&base, &full, None).unwrap();
    let mut from_delta = Model::load_finetuned(&base, &delta, Some(&cpu)).unwrap();
    let tuned_eps = eps(&mut tuned, &x0);
    let moved = max_abs_diff(&tuned_eps, &base_eps);
    assert!(moved > 1e-3, "fine-tuning moved eps by {moved}");
    assert!(max_abs_diff(&eps(&mut from_delta, &x0), &tuned_eps) < 1e-3 * moved);
    let again = dir.join("again.delta");
    from_delta.save_delta(&base, &again).unwrap();
    let mut reloaded = Model::load_finetuned(&base, &again, None).unwrap();
    assert_eq!(eps(&mut reloaded, &x0), eps(&mut from_delta, &x0));
}

#[test]
fn presets_hold_the_published_settings() {
    let datasets = DatasetPreset::all();
    assert_eq!(
        datasets.iter().map(|p| p.name).collect::<Vec<_>>(),
        vec!["celeba", "afhq", "church", "bedroom", "imagenet", "fashion"]
    );
    let imagenet = DatasetPreset::find("imagenet").unwrap();
    assert_eq!(
        (imagenet.image_size, imagenet.grad_mode),
        (512, GradMode::PerStep)
    );
    assert_eq!(imagenet.config_file, "imagenet.yml");
    assert_eq!(DatasetPreset::find("celeba").unwrap().config_file, "celeba.yml");
    assert!(DatasetPreset::find("nope").is_none());
    let edits = EditPreset::all();
    assert_eq!(edits.len(), 56);
    assert!(edits
        .iter()
        .all(|e| DatasetPreset::find(e.dataset).is_some()));
    assert_eq!(
        EditPreset::find("grey_hair").unwrap().target,
        "person with grey hair"
    );
    assert!(EditPreset::find("nope").is_none());
    assert!(FinetuneOptions::new().preset("neanderthal").is_ok());
    assert_eq!(
        FinetuneOptions::new()
            .preset("no-such-preset")
            .err()
            .map(|e| e.status()),
        Some(Status::InvalidArgument)
    );
}
