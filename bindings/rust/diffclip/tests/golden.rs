//! Conformance through the safe binding with ../shared/golden: the DDPM UNet's eps for both
//! checkpoint containers, DDIM inversion and generation, the stochastic forward, CLIP's text
//! features and loss, the tokenizer. Tolerance: max|ours - golden| <= 1e-4 (1 + max|golden|).
mod common;

use common::{assert_golden, floats, golden, npy, vocabulary};
use diffclip::{
    add_noise, Checkpoint, Clip, ClipOptions, Container, DiffusionOptions, Model, ModelFamily,
    ModelOptions, Tokenizer,
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
