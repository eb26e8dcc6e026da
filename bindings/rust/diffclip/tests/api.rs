//! The safe API: errors, arrays in and out, files, handles, progress closures, threads.
mod common;

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;

use common::{golden, npy, scratch, vocabulary};
use diffclip::{
    read_image, read_npy, write_checkpoint, write_image, write_npy, Checkpoint, CheckpointFormat,
    Container, DType, DiffusionOptions, ImageView, LatentCache, Model, ModelOptions, Status,
    TensorView, Tokenizer,
};

fn assert_send<T: Send>() {}

#[test]
fn handles_and_arrays_are_send() {
    assert_send::<Model>();
    assert_send::<diffclip::Clip>();
    assert_send::<diffclip::IdNet>();
    assert_send::<Tokenizer>();
    assert_send::<Checkpoint>();
    assert_send::<LatentCache<'static>>();
    assert_send::<diffclip::Sampler<'static>>();
    assert_send::<diffclip::Finetuner<'static>>();
    assert_send::<diffclip::Tensor>();
    assert_send::<diffclip::Image>();
}

#[test]
fn version_and_runtime() {
    assert_eq!(diffclip::version(), diffclip::sys::DC_VERSION_STRING);
    let before = diffclip::num_threads();
    diffclip::set_num_threads(1).unwrap();
    assert_eq!(diffclip::num_threads(), 1);
    diffclip::set_num_threads(before).unwrap();
    assert!(!diffclip::cuda_available() || diffclip::cuda_available());
    assert_eq!(
        (DType::BFloat16.name(), DType::Float64.size()),
        ("bfloat16", 8)
    );
}

#[test]
fn errors_carry_status_and_message() {
    let dir = scratch("errors");
    let missing = dir.join("missing.npy");
    let error = read_npy(&missing).unwrap_err();
    assert_eq!(error.status(), Status::Io);
    assert!(
        error.message().contains(missing.to_str().unwrap()),
        "{error}"
    );
    assert!(error.to_string().ends_with("(DC_EIO)"), "{error}");
    fs::write(dir.join("bad.npy"), b"\x93NUMPY\x01\x00garbage").unwrap();
    assert_eq!(
        read_npy(dir.join("bad.npy")).unwrap_err().status(),
        Status::Format
    );
    assert_eq!(Status::from_code(-99), Status::Other(-99));
    assert_eq!(Status::Cancelled.name(), "DC_ECANCELLED");
}

#[test]
fn tensor_views_check_their_shape() {
    let data = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let view = TensorView::new(&data, &[2, 3]).unwrap();
    assert_eq!(
        (view.dtype(), view.shape(), view.len()),
        (DType::Float32, vec![2, 3], 6)
    );
    assert_eq!(view.as_slice::<f32>(), Some(&data[..]));
    assert_eq!(view.as_slice::<i32>(), None);
    assert_eq!(
        TensorView::new(&data, &[4, 2]).unwrap_err().status(),
        Status::InvalidArgument
    );
    assert!(TensorView::new(&data[..1], &[1; 9]).is_err());
    let scalar = TensorView::new(&data[..1], &[]).unwrap();
    assert_eq!((scalar.shape(), scalar.len()), (vec![], 1));
}

#[test]
fn npy_roundtrip_keeps_dtype_and_values() {
    let dir = scratch("npy");
    let ints = [i64::MIN, -1, 0, 7];
    write_npy(dir.join("i.npy"), &TensorView::new(&ints, &[2, 2]).unwrap()).unwrap();
    let back = read_npy(dir.join("i.npy")).unwrap();
    assert_eq!((back.dtype(), back.shape()), (DType::Int64, vec![2, 2]));
    assert_eq!(back.as_slice::<i64>().unwrap(), &ints);
    let bytes = [0u8, 255, 3];
    write_npy(dir.join("b.npy"), &TensorView::new(&bytes, &[3]).unwrap()).unwrap();
    assert_eq!(read_npy(dir.join("b.npy")).unwrap().as_bytes(), &bytes);
    let empty: [f32; 0] = [];
    write_npy(
        dir.join("e.npy"),
        &TensorView::new(&empty, &[0, 4]).unwrap(),
    )
    .unwrap();
    let back = read_npy(dir.join("e.npy")).unwrap();
    assert_eq!(
        (back.shape(), back.as_slice::<f32>().unwrap().len()),
        (vec![0, 4], 0)
    );
}

#[test]
fn images_roundtrip_and_convert() {
    let dir = scratch("images");
    let rgb: Vec<u8> = (0..5 * 7 * 3).map(|i| (i * 7 % 256) as u8).collect();
    let view = ImageView::new(&rgb, 7, 5).unwrap();
    write_image(dir.join("i.png"), &view).unwrap();
    let back = read_image(dir.join("i.png")).unwrap();
    assert_eq!((back.width(), back.height(), back.channels()), (7, 5, 3));
    assert_eq!(back.data(), &rgb[..]);
    let t = diffclip::image_to_tensor(&back.view(), 4).unwrap();
    assert_eq!(t.shape(), vec![1, 3, 4, 4]);
    assert!(t
        .as_slice::<f32>()
        .unwrap()
        .iter()
        .all(|v| (-1.0..=1.0).contains(v)));
    let image = diffclip::tensor_to_image(&t.view(), 0).unwrap();
    assert_eq!((image.width(), image.height()), (4, 4));
    assert!(ImageView::new(&rgb, 7, 4).is_err());
    assert_eq!(
        write_image(dir.join("i.bmp"), &view).unwrap_err().status(),
        Status::InvalidArgument
    );
}

#[test]
fn checkpoints_roundtrip() {
    let dir = scratch("checkpoints");
    let weight = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let steps = [7i64];
    let tensors = [
        ("b.weight", TensorView::new(&weight, &[2, 3]).unwrap()),
        ("a.steps", TensorView::new(&steps, &[1]).unwrap()),
    ];
    for (file, format, container) in [
        ("c.pt", CheckpointFormat::Auto, Container::TorchZip),
        (
            "c.safetensors",
            CheckpointFormat::Auto,
            Container::Safetensors,
        ),
        (
            "c.bin",
            CheckpointFormat::Safetensors,
            Container::Safetensors,
        ),
    ] {
        write_checkpoint(dir.join(file), format, &tensors).unwrap();
        let ckpt = Checkpoint::open(dir.join(file)).unwrap();
        assert_eq!((ckpt.container(), ckpt.len()), (container, 2), "{file}");
        let mut names = ckpt.names();
        names.sort();
        assert_eq!(names, ["a.steps", "b.weight"]);
        assert_eq!(
            ckpt.get("b.weight").unwrap().as_slice::<f32>().unwrap(),
            &weight
        );
        assert_eq!(
            ckpt.get("a.steps").unwrap().as_slice::<i64>().unwrap(),
            &steps
        );
        assert_eq!(
            ckpt.find("missing").unwrap_err().status(),
            Status::InvalidArgument
        );
        assert_eq!(ckpt.name(2), None);
    }
}

#[test]
fn tokenizer_refuses_nul_and_long_texts() {
    let vocab = match vocabulary() {
        Some(vocab) => vocab,
        None => return,
    };
    let mut tok = Tokenizer::new(vocab).unwrap();
    let tokens = tok.tokenize(&["a face"], 8, false).unwrap();
    assert_eq!(
        tokens.as_slice::<i64>().unwrap(),
        &[49406, 320, 1710, 49407, 0, 0, 0, 0]
    );
    assert_eq!(
        tok.tokenize(&["nul\0inside"], 77, false)
            .unwrap_err()
            .status(),
        Status::InvalidArgument
    );
    let long = "word ".repeat(20);
    assert_eq!(
        tok.tokenize(&[&long], 8, false).unwrap_err().status(),
        Status::InvalidArgument
    );
    assert_eq!(
        tok.tokenize(&[&long], 8, true)
            .unwrap()
            .as_slice::<i64>()
            .unwrap()[7],
        49407
    );
}

fn golden_model() -> Option<(Model, diffclip::Tensor)> {
    let dir = golden("ddpm_unet")?;
    let model = Model::load(dir.join("model.pt"), &ModelOptions::new().device("cpu")).unwrap();
    Some((model, npy(&dir, "x0.npy")))
}

#[test]
fn progress_closures_see_every_step_and_can_cancel() {
    let (mut model, x0) = match golden_model() {
        Some(found) => found,
        None => return,
    };
    let mut steps = Vec::new();
    let mut options = DiffusionOptions::new().t0(300).steps(8).progress(|p| {
        steps.push((p.stage.to_string(), p.step, p.steps));
        true
    });
    let full = model.invert(&x0.view(), &mut options).unwrap();
    drop(options);
    assert!(!steps.is_empty());
    assert!(steps
        .iter()
        .all(|(stage, _, n)| stage == "invert" && *n == steps[0].2));
    assert_eq!(steps.last().unwrap().1, steps[0].2);

    let mut calls = 0;
    let mut cancelling = DiffusionOptions::new().t0(300).steps(8).progress(|_| {
        calls += 1;
        calls < 2
    });
    let error = model.invert(&x0.view(), &mut cancelling).unwrap_err();
    drop(cancelling);
    assert_eq!((error.status(), calls), (Status::Cancelled, 2));

    // the handle stays usable and gives the same result
    let again = model
        .invert(&x0.view(), &mut DiffusionOptions::new().t0(300).steps(8))
        .unwrap();
    common::assert_close(&again, &full, 1e-6, "after a cancelled run");
}

#[test]
fn a_panic_in_a_progress_closure_resumes_after_the_call() {
    let (mut model, x0) = match golden_model() {
        Some(found) => found,
        None => return,
    };
    let mut options = DiffusionOptions::new().t0(300).steps(4).progress(|p| {
        assert!(p.step < 2, "stop at step {}", p.step);
        true
    });
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        model.generate(&x0.view(), &mut options)
    }));
    let payload = caught.expect_err("the closure's panic");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert_eq!(message, "stop at step 2");
    drop(options);
    assert!(model
        .generate(&x0.view(), &mut DiffusionOptions::new().t0(300).steps(4))
        .is_ok());
}

#[test]
fn a_model_moves_to_another_thread() {
    let (mut model, x0) = match golden_model() {
        Some(found) => found,
        None => return,
    };
    let here = model
        .invert(&x0.view(), &mut DiffusionOptions::new().t0(300).steps(4))
        .unwrap();
    let there = std::thread::spawn(move || {
        model.invert(&x0.view(), &mut DiffusionOptions::new().t0(300).steps(4))
    })
    .join()
    .unwrap()
    .unwrap();
    common::assert_close(&there, &here, 1e-6, "on another thread");
}

#[test]
fn latent_cache_adds_finds_and_reports_progress() {
    let (mut model, x0) = match golden_model() {
        Some(found) => found,
        None => return,
    };
    let dir = scratch("cache");
    let first = TensorView::new(
        &x0.as_slice::<f32>().unwrap()[..3 * 32 * 32],
        &[1, 3, 32, 32],
    )
    .unwrap();
    let mut stages = Vec::new();
    {
        let options = DiffusionOptions::new().t0(300).steps(4).progress(|p| {
            stages.push(p.stage.to_string());
            true
        });
        let mut cache = LatentCache::open(dir.join("c.cache"), &mut model, options, 2).unwrap();
        assert!(cache.is_empty());
        assert_eq!(cache.add(&first).unwrap(), 0);
        assert_eq!(cache.add(&first).unwrap(), 0);
        let (x, rec, lat) = cache.get(0).unwrap();
        assert_eq!(
            x.as_slice::<f32>().unwrap(),
            first.as_slice::<f32>().unwrap()
        );
        assert_eq!(
            (rec.shape(), lat.shape()),
            (vec![1, 3, 32, 32], vec![1, 3, 32, 32])
        );
    }
    assert!(stages.iter().any(|s| s == "invert"), "{stages:?}");
    let reopened = LatentCache::open(
        dir.join("c.cache"),
        &mut model,
        DiffusionOptions::new().t0(300).steps(4),
        2,
    );
    assert_eq!(reopened.unwrap().len(), 1);
    let refused = LatentCache::open(
        dir.join("c.cache"),
        &mut model,
        DiffusionOptions::new().t0(200).steps(4),
        2,
    );
    assert_eq!(refused.unwrap_err().status(), Status::InvalidArgument);
}

#[test]
fn face_crops_and_distances() {
    let zeros = [0.0f32; diffclip::FACE_DESCRIPTOR_SIZE];
    let ones = [1.0f32; diffclip::FACE_DESCRIPTOR_SIZE];
    let d = diffclip::face_distance(&zeros, &ones).unwrap();
    assert!(
        (d - (diffclip::FACE_DESCRIPTOR_SIZE as f64).sqrt()).abs() < 1e-6,
        "{d}"
    );
    assert_eq!(diffclip::face_distance(&ones, &ones).unwrap(), 0.0);

    let rgb: Vec<u8> = (0..40 * 60 * 3).map(|i| (i * 7 % 256) as u8).collect();
    let image = ImageView::new(&rgb, 60, 40).unwrap();
    let face = diffclip::FaceBox {
        x: 10,
        y: 0,
        size: 40,
    };
    let crop = diffclip::face_crop(&image, Some(face), 40).unwrap();
    let centred = diffclip::face_crop(&image, None, 40).unwrap();
    assert_eq!((crop.width(), crop.height()), (40, 40));
    assert_eq!(crop.data(), centred.data());
    let outside = diffclip::FaceBox {
        x: 50,
        y: 0,
        size: 30,
    };
    assert_eq!(
        diffclip::face_crop(&image, Some(outside), 40)
            .unwrap_err()
            .status(),
        Status::InvalidArgument
    );
}

#[test]
fn face_descriptors_with_face_api_weights() {
    let dir = std::env::var_os("DC_FACEAPI")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../third_party/face-api")
        });
    let manifest = dir.join("face_recognition_model-weights_manifest.json");
    if !manifest.exists() {
        let why = format!("{} is missing (make deps installs it)", manifest.display());
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        return common::skip(&why);
    }
    let mut net = diffclip::FaceDescriptor::load(&manifest, None, Some("cpu")).unwrap();
    let face: Vec<u8> = (0..150 * 150 * 3)
        .map(|i| (i * 7 + i / 3 * 13) as u8)
        .collect();
    let other: Vec<u8> = face.iter().map(|v| v.wrapping_add(90)).collect();
    let a = net
        .compute(&ImageView::new(&face, 150, 150).unwrap(), None)
        .unwrap();
    let boxed = diffclip::FaceBox {
        x: 0,
        y: 0,
        size: 150,
    };
    assert_eq!(
        net.compute(&ImageView::new(&face, 150, 150).unwrap(), Some(boxed))
            .unwrap(),
        a
    );
    let b = net
        .compute(&ImageView::new(&other, 150, 150).unwrap(), None)
        .unwrap();
    assert!(diffclip::face_distance(&a, &b).unwrap() > 0.0);
}

const ASTRONAUT: &str = "/usr/lib/python3/dist-packages/skimage/data/astronaut.png";

/// The aligner over Debian's predictor, or None (skipped; a failure under CI=true).
fn face_aligner() -> Option<diffclip::FaceAligner> {
    for path in [diffclip::FACE_DEFAULT_PREDICTOR, ASTRONAUT] {
        if !std::path::Path::new(path).exists() {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{path} missing under CI=true");
            common::skip(&format!("{path} missing (make deps)"));
            return None;
        }
    }
    Some(diffclip::FaceAligner::new(&diffclip::FaceAlignerOptions::default()).unwrap())
}

#[test]
fn face_aligner_detects_aligns_and_reports_no_face() {
    let Some(mut aligner) = face_aligner() else { return };
    let photo = diffclip::read_image(ASTRONAUT).unwrap();
    let faces = aligner.detect(&photo.view()).unwrap();
    assert_eq!(faces.len(), 1);
    let (aligned, face) = aligner.align(&photo.view(), 64).unwrap();
    assert_eq!((aligned.width(), aligned.height()), (64, 64));
    assert_eq!(face, faces[0]);
    let again = diffclip::face_align_landmarks(&photo.view(), &face.landmarks, 64, 0).unwrap();
    assert_eq!(again.data(), aligned.data());
    let grey = vec![128u8; 80 * 60 * 3];
    let view = diffclip::ImageView::new(&grey, 80, 60).unwrap();
    assert!(aligner.detect(&view).unwrap().is_empty());
    let err = aligner.align(&view, 64).unwrap_err();
    assert_eq!(err.status(), Status::NotFound);
    assert!(err.message().contains("no face was found"), "{}", err.message());
    let degenerate = [[0i64; 2]; diffclip::FACE_LANDMARK_COUNT];
    let err = diffclip::face_align_landmarks(&view, &degenerate, 32, 0).unwrap_err();
    assert_eq!(err.status(), Status::InvalidArgument);
    let bad = diffclip::FaceAlignerOptions {
        predictor: Some(ASTRONAUT.into()),
        ..Default::default()
    };
    assert_eq!(diffclip::FaceAligner::new(&bad).unwrap_err().status(), Status::Format);
}
