//! Shared by the integration tests: golden data, tolerances, scratch directories.
#![allow(dead_code)]

use std::env;
use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use diffclip::{read_npy, Tensor};

fn data_dir(variable: &str, default: &str) -> PathBuf {
    env::var_os(variable).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../..")
            .join("shared")
            .join(default)
    })
}

/// A golden case folder, or None after printing a skip marker (bindings' test runner counts
/// the test as skipped); under CI=true a missing case fails.
pub fn golden(case: &str) -> Option<PathBuf> {
    let dir = data_dir("DC_GOLDEN", "golden").join(case);
    if dir.is_dir() {
        return Some(dir);
    }
    let why = format!("golden case {} missing", dir.display());
    assert!(
        env::var("CI").as_deref() != Ok("true"),
        "{why}: required under CI=true"
    );
    skip(&why);
    None
}

pub fn vocabulary() -> Option<PathBuf> {
    let file = data_dir("DC_CLIP_DATA", "clip").join("bpe_simple_vocab_16e6.txt.gz");
    if file.is_file() {
        return Some(file);
    }
    let why = format!("{} missing", file.display());
    assert!(
        env::var("CI").as_deref() != Ok("true"),
        "{why}: required under CI=true"
    );
    skip(&why);
    None
}

/// "diffclip-test-skip: <test>: why" on stdout (run with --nocapture to be seen).
pub fn skip(why: &str) {
    println!(
        "diffclip-test-skip: {}: {}",
        std::thread::current().name().unwrap_or("?"),
        why
    );
}

pub fn npy(dir: &Path, name: &str) -> Tensor {
    read_npy(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn floats(t: &Tensor) -> &[f32] {
    t.as_slice::<f32>().expect("a float32 array")
}

/// max|ours - golden| <= 1e-4 * (1 + max|golden|), with equal shapes.
pub fn assert_golden(ours: &Tensor, golden: &Tensor, what: &str) {
    assert_close(ours, golden, 1e-4, what);
}

/// max|a - b| <= relative * (1 + max|b|), with equal shapes. (Runs of one computation on
/// concurrent threads may differ in the last bits: LibTorch splits its work by load.)
pub fn assert_close(a: &Tensor, b: &Tensor, relative: f32, what: &str) {
    assert_eq!(a.shape(), b.shape(), "{what}: shape");
    let (a, b) = (floats(a), floats(b));
    let error = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    let tolerance = relative * (1.0 + b.iter().map(|y| y.abs()).fold(0.0f32, f32::max));
    assert!(
        error <= tolerance,
        "{what}: max abs error {error} > {tolerance}"
    );
}

/// |a - b| / |b| in L2 norms.
pub fn relative_l2(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den).sqrt()
}

/// A fresh directory for one test, removed (with what the test wrote) when dropped, also
/// when the test panics.
pub struct Scratch(PathBuf);

pub fn scratch(test: &str) -> Scratch {
    let dir = env::temp_dir().join(format!("diffclip-rs-{}-{test}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

impl Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
