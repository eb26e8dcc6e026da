//! Conformance through the safe binding with ../shared/golden: the DDPM UNet's eps for both
//! checkpoint containers, DDIM inversion and generation, the stochastic forward, CLIP's text
//! features and loss, the tokenizer, the sampler's mix of two models. Tolerance: max|ours - golden| <= 1e-4 (1 + max|golden|).
mod common;

use common::{assert_golden, floats, golden, npy, scratch, vocabulary};
use diffclip::{
    add_noise, Checkpoint, Clip, ClipOptions, Container, DiffusionOptions, Model, ModelFamily,
    ModelOptions, Sampler, SizeSource, Tokenizer, VarType,
};

fn cpu() -> ModelOptions {
    ModelOptions::new().device("cpu")
}

#[test]
fn checkpoint_containers_hold_the_same_tensors() {
    let dir = match golden("ddpm_unet") {
        Some(dir) => dir,
        None => return,
    };
    let zip = Checkpoint::open(dir.join("model.pt")).unwrap();
    let legacy = Checkpoint::open(dir.join("model_legacy.pt")).unwrap();
    assert_eq!(zip.container(), Container::TorchZip);
    assert_eq!(legacy.container(), Container::TorchLegacy);
    assert_eq!(zip.len(), legacy.len());
    for name in zip.names() {
        let (a, b) = (zip.get(&name).unwrap(), legacy.get(&name).unwrap());
        assert_eq!((a.dtype(), a.shape()), (b.dtype(), b.shape()), "{name}");
        assert_eq!(a.as_bytes(), b.as_bytes(), "{name}");
    }
}

#[test]
fn ddpm_eps_matches_golden() {
    let dir = match golden("ddpm_unet") {
        Some(dir) => dir,
        None => return,
    };
    let (x, t, want) = (npy(&dir, "x.npy"), npy(&dir, "t.npy"), npy(&dir, "eps.npy"));
    for file in ["model.pt", "model_legacy.pt"] {
        let mut model = Model::load(dir.join(file), &cpu()).unwrap();
        let info = model.info().unwrap();
        assert_eq!(
            (
                info.family,
                info.image_size,
                info.channel_mult.len(),
                info.out_channels
            ),
            (ModelFamily::Ddpm, 32, 3, 3)
        );
        let eps = model.eps(&x.view(), &t.view()).unwrap();
        assert_golden(&eps, &want, file);
    }
}

#[test]
fn ddim_inversion_generation_and_forward_match_golden() {
    let dir = match golden("ddpm_unet") {
        Some(dir) => dir,
        None => return,
    };
    let mut model = Model::load(dir.join("model.pt"), &cpu()).unwrap();
    let x0 = npy(&dir, "x0.npy");
    let latent = model
        .invert(&x0.view(), &mut DiffusionOptions::new().t0(300).steps(8))
        .unwrap();
    assert_golden(&latent, &npy(&dir, "lat.npy"), "inversion");
    let lat = npy(&dir, "lat.npy");
    let rec = model
        .generate(
            &lat.view(),
            &mut DiffusionOptions::new().t0(300).steps(4).eta(0.0),
        )
        .unwrap();
    assert_golden(&rec, &npy(&dir, "rec.npy"), "generation");
    let noise = npy(&dir, "noise.npy");
    let xt = add_noise(
        &x0.view(),
        Some(&noise.view()),
        &DiffusionOptions::new().t0(300),
    )
    .unwrap();
    assert_golden(&xt, &npy(&dir, "xt_ddpm.npy"), "stochastic forward");
}

#[test]
fn clip_text_features_and_loss_match_golden() {
    let (dir, vocab) = match (golden("clip_vit"), vocabulary()) {
        (Some(dir), Some(vocab)) => (dir, vocab),
        _ => return,
    };
    let mut clip = Clip::load(dir.join("clip_torchscript.pt"), &ClipOptions::new()).unwrap();
    assert_eq!((clip.input_size(), clip.embed_dim()), (224, 32));
    let photo = vec![128u8; 300 * 200 * 3];
    let preprocessed = clip
        .preprocess_image(&diffclip::ImageView::new(&photo, 300, 200).unwrap())
        .unwrap();
    assert_eq!(preprocessed.shape(), vec![1, 3, 224, 224]);
    let features = clip.encode_text(&npy(&dir, "tokens.npy").view()).unwrap();
    assert_golden(&features, &npy(&dir, "text_features.npy"), "text features");

    let mut tok = Tokenizer::new(vocab).unwrap();
    let tokens = tok.tokenize(&["face", "angry face"], 77, false).unwrap();
    let want = npy(&dir, "tokens.npy");
    assert_eq!(
        tokens.as_slice::<i64>().unwrap(),
        &want.as_slice::<i64>().unwrap()[..2 * 77]
    );

    let (x_src, x_trg) = (npy(&dir, "x_src.npy"), npy(&dir, "x_trg.npy"));
    let loss = clip
        .loss(
            &mut tok,
            "face",
            "angry face",
            &x_src.view(),
            &x_trg.view(),
            true,
        )
        .unwrap();
    let want = npy(&dir, "loss.npy");
    let want = floats(&want);
    let tolerance = 1e-4 * (1.0 + want[0].abs().max(want[1].abs()) as f64);
    assert!((loss.direction - want[0] as f64).abs() <= tolerance);
    assert!((loss.log - want[1] as f64).abs() <= tolerance);
    let grad = loss.grad.expect("asked for");
    let error = common::relative_l2(floats(&grad), floats(&npy(&dir, "grad_x_trg.npy")));
    assert!(error <= 1e-3, "gradient relative L2 {error}");
}

/// max|out - want| <= 1e-4 * (1 + max|want|) for a (1, 3, 32, 32) output.
fn assert_row(out: &diffclip::Tensor, want: &[f32], what: &str) {
    assert_eq!(out.shape(), vec![1, 3, 32, 32], "{what}");
    let error = floats(out)
        .iter()
        .zip(want)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    let tolerance = 1e-4 * (1.0 + want.iter().map(|y| y.abs()).fold(0.0f32, f32::max));
    assert!(
        error <= tolerance,
        "{what}: max abs error {error} > {tolerance}"
    );
}

/// The sampler on the noise_combination case: DDIM generation with eps = 0.65 eps_A +
/// 0.35 eps_B against row 1 of mixed.npy (gammas of model B: 0, 0.35, 1).
#[test]
fn sampler_mix_matches_the_golden_row() {
    let dir = match golden("noise_combination") {
        Some(dir) => dir,
        None => return,
    };
    let mut a = Model::load(dir.join("../ddpm_unet/model.pt"), &cpu()).unwrap();
    let mut b = Model::load(dir.join("model_b.pt"), &cpu()).unwrap();
    let (lat, mixed) = (npy(&dir, "lat.npy"), npy(&dir, "mixed.npy"));
    assert_eq!(mixed.shape(), vec![3, 1, 3, 32, 32]);
    let n = 3 * 32 * 32;
    let want = &floats(&mixed)[n..2 * n];
    let mut sampler = Sampler::new([&mut a, &mut b]).unwrap();
    assert_eq!(sampler.len(), 2);
    assert_eq!(sampler.weights_at(500).unwrap(), vec![1.0, 0.0]);
    sampler.set_weights(&[0.65, 0.35]).unwrap();
    let mut steps = Vec::new();
    let out = sampler
        .generate(
            &lat.view(),
            &mut DiffusionOptions::new().t0(300).steps(4).progress(|p| {
                steps.push(p.step);
                true
            }),
        )
        .unwrap();
    assert_row(&out, want, "gamma 0.35");
    assert_eq!(steps, vec![1, 2, 3, 4]);

    // the same mix as a schedule; weights not summing to 1 are refused and leave no trace
    sampler
        .set_piecewise(&[(300, [0.65, 0.35]), (0, [0.65, 0.35])])
        .unwrap();
    let out = sampler
        .generate(&lat.view(), &mut DiffusionOptions::new().t0(300).steps(4))
        .unwrap();
    assert_row(&out, want, "piecewise");
    let refused = sampler.set_weights(&[0.5, 0.6]).unwrap_err();
    assert_eq!(refused.status(), diffclip::Status::InvalidArgument);
    assert!(refused.message().contains("sum to 1.1"), "{refused}");
    assert_eq!(
        sampler.set_weights(&[1.0]).unwrap_err().status(),
        diffclip::Status::InvalidArgument
    );
    sampler
        .set_ramp(100, &[1.0, 0.0], 700, &[0.0, 1.0])
        .unwrap();
    assert!((sampler.weights_at(400).unwrap()[1] - 0.5).abs() < 1e-12);
}

/// Editing over the mix: the transition's last image is the edit, translate's output is the
/// edit of its projection, and a closure returning false cancels.
#[test]
fn sampler_edit_transition_and_translate() {
    let dir = match golden("noise_combination") {
        Some(dir) => dir,
        None => return,
    };
    let mut a = Model::load(dir.join("../ddpm_unet/model.pt"), &cpu()).unwrap();
    let mut b = Model::load(dir.join("model_b.pt"), &cpu()).unwrap();
    let lat = npy(&dir, "lat.npy");
    let x0 = a
        .generate(&lat.view(), &mut DiffusionOptions::new().t0(300).steps(4))
        .unwrap();
    let options = || {
        diffclip::EditOptions::new()
            .t0(300)
            .inv_steps(6)
            .gen_steps(4)
            .repeats(2)
    };
    let mut sampler = Sampler::new([&mut a, &mut b]).unwrap();
    sampler.set_weights(&[0.0, 1.0]).unwrap();
    let edit = sampler.edit(&x0.view(), None, &mut options()).unwrap();
    assert_eq!(edit.shape(), vec![1, 3, 32, 32]);
    let strip = sampler
        .transition(&x0.view(), 3, None, &mut options())
        .unwrap();
    assert_eq!(strip.shape(), vec![3, 3, 32, 32]);
    assert_eq!(&floats(&strip)[2 * 3 * 32 * 32..], floats(&edit));
    let (out, projected) = sampler.translate(&x0.view(), &mut options()).unwrap();
    let again = sampler
        .edit(&projected.view(), None, &mut options())
        .unwrap();
    assert_eq!(floats(&out), floats(&again));
    let mut calls = 0;
    let error = sampler
        .edit(
            &x0.view(),
            None,
            &mut options().progress(|_| {
                calls += 1;
                false
            }),
        )
        .unwrap_err();
    assert_eq!((error.status(), calls), (diffclip::Status::Cancelled, 1));
}

#[test]
fn config_gives_size_var_type_and_schedule() {
    let dir = match golden("ddpm_unet") {
        Some(dir) => dir,
        None => return,
    };
    let tmp = scratch("config");
    let good = tmp.join("mine.yml");
    std::fs::write(
        &good,
        "data:\n    image_size: 32\nmodel:\n    ch: 32\n    ch_mult: [1, 2, 2]\n\
         \x20   attn_resolutions: [16, ]\n    var_type: fixedlarge\n\
         diffusion:\n    beta_end: 0.015\n",
    )
    .unwrap();
    let mut model = Model::load(dir.join("model.pt"), &cpu().config(&good)).unwrap();
    let c = model.config().unwrap();
    assert_eq!(c.image_size, 32);
    assert_eq!(c.image_size_source, SizeSource::Config);
    assert_eq!(c.var_type, VarType::FixedLarge);
    assert_eq!((c.num_timesteps, c.beta_end), (1000, 0.015));
    assert_eq!(c.config_path.as_deref(), good.to_str());
    let mut plain = Model::load(dir.join("model.pt"), &cpu()).unwrap();
    assert_eq!(plain.config().unwrap().image_size_source, SizeSource::Weights);
    let x0 = npy(&dir, "x0.npy");
    let ours = model
        .invert(&x0.view(), &mut DiffusionOptions::new().t0(300).steps(3))
        .unwrap();
    let explicit = plain
        .invert(
            &x0.view(),
            &mut DiffusionOptions::new().t0(300).steps(3).betas(1e-4, 0.015),
        )
        .unwrap();
    assert_eq!(floats(&ours), floats(&explicit));
    let bad = tmp.join("bad.yml");
    std::fs::write(&bad, "model:\n    ch: 128\n").unwrap();
    let err = Model::load(dir.join("model.pt"), &cpu().config(&bad)).unwrap_err();
    assert!(err.to_string().contains("model.ch is 128, but the weights have 32"), "{err}");
}
