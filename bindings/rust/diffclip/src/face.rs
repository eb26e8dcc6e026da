//! The face descriptor (dlib's ResNet as face-api's faceRecognitionNet): 128 floats per face;
//! descriptors less than `FACE_SAME_PERSON_DISTANCE` apart are taken to be the same person.
use std::os::raw::c_int;
use std::path::Path;
use std::ptr;

use crate::error::{check, invalid, Result};
use crate::handle::{c_path, c_text, handle, open};
use crate::image::{Image, ImageView};
use crate::sys;

pub const FACE_DESCRIPTOR_SIZE: usize = sys::DC_FACE_DESCRIPTOR_SIZE;
pub const FACE_INPUT_SIZE: usize = sys::DC_FACE_INPUT_SIZE as usize;
pub const FACE_SAME_PERSON_DISTANCE: f64 = sys::DC_FACE_SAME_PERSON_DISTANCE;

pub type FaceDescriptorValues = [f32; FACE_DESCRIPTOR_SIZE];

/// A square of an image in pixels: left column, top row, side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaceBox {
    pub x: i32,
    pub y: i32,
    pub size: i32,
}

fn raw_box(face: &Option<FaceBox>) -> Option<sys::dc_face_box> {
    face.map(|f| sys::dc_face_box {
        x: f.x,
        y: f.y,
        size: f.size,
    })
}

fn box_ptr(raw: &Option<sys::dc_face_box>) -> *const sys::dc_face_box {
    raw.as_ref()
        .map_or(ptr::null(), |b| b as *const sys::dc_face_box)
}

handle!(
    /// face-api's face recognition network, from its tfjs weights manifest.
    FaceDescriptor,
    sys::dc_face_descriptor,
    sys::dc_face_descriptor_free
);

impl FaceDescriptor {
    /// `weights`: None reads the file(s) the manifest names, beside it. `device`: "cpu",
    /// "cuda", "cuda:N" or "auto" (None: "auto").
    pub fn load(
        manifest: impl AsRef<Path>,
        weights: Option<&Path>,
        device: Option<&str>,
    ) -> Result<FaceDescriptor> {
        let manifest = c_path(manifest.as_ref())?;
        let weights = weights.map(c_path).transpose()?;
        let device = device.map(|d| c_text(d, "the device")).transpose()?;
        let ptr = open(|out| unsafe {
            sys::dc_face_descriptor_load(
                out,
                manifest.as_ptr(),
                weights.as_ref().map_or(ptr::null(), |w| w.as_ptr()),
                device.as_ref().map_or(ptr::null(), |d| d.as_ptr()),
            )
        })?;
        Ok(FaceDescriptor { ptr })
    }

    /// The descriptor of the face in `face` (None: the centred largest square), cropped and
    /// resized to 150x150.
    pub fn compute(
        &mut self,
        image: &ImageView<'_>,
        face: Option<FaceBox>,
    ) -> Result<FaceDescriptorValues> {
        let mut descriptor = [0.0f32; FACE_DESCRIPTOR_SIZE];
        let face = raw_box(&face);
        check(unsafe {
            sys::dc_face_descriptor_compute(
                self.raw(),
                image.raw(),
                box_ptr(&face),
                descriptor.as_mut_ptr(),
            )
        })?;
        Ok(descriptor)
    }
}

/// The square `face` of an image (None: the centred largest square) resized to size x size.
pub fn face_crop(image: &ImageView<'_>, face: Option<FaceBox>, size: usize) -> Result<Image> {
    let size = c_int::try_from(size).map_err(|_| invalid("crop size too large"))?;
    let face = raw_box(&face);
    Image::from_call(|out| unsafe { sys::dc_face_crop(image.raw(), box_ptr(&face), size, out) })
}

/// Euclidean distance between two descriptors.
pub fn face_distance(a: &FaceDescriptorValues, b: &FaceDescriptorValues) -> Result<f64> {
    let mut distance = 0.0;
    check(unsafe { sys::dc_face_distance(a.as_ptr(), b.as_ptr(), &mut distance) })?;
    Ok(distance)
}

// ---- face alignment ----

pub const FACE_LANDMARK_COUNT: usize = sys::DC_FACE_LANDMARK_COUNT;
pub const FACE_DEFAULT_PREDICTOR: &str = sys::DC_FACE_DEFAULT_PREDICTOR;

/// The 68 iBUG landmarks, (x, y) in pixels: the published get_landmark's (68, 2) array.
pub type Landmarks = [[i64; 2]; FACE_LANDMARK_COUNT];

/// A detected face: dlib's rectangle (right and bottom inclusive) and its landmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Face {
    pub left: i64,
    pub top: i64,
    pub right: i64,
    pub bottom: i64,
    pub landmarks: Landmarks,
}

impl Face {
    fn from_raw(f: &sys::dc_face) -> Face {
        let mut landmarks = [[0i64; 2]; FACE_LANDMARK_COUNT];
        for (i, point) in landmarks.iter_mut().enumerate() {
            *point = [f.points[2 * i], f.points[2 * i + 1]];
        }
        Face {
            left: f.left,
            top: f.top,
            right: f.right,
            bottom: f.bottom,
            landmarks,
        }
    }
}

/// How the aligner detects faces (None: the library's defaults; see dc_face_aligner_options).
#[derive(Debug, Clone, Default)]
pub struct FaceAlignerOptions {
    pub predictor: Option<std::path::PathBuf>,
    pub upsample: Option<i32>,
    pub adjust_threshold: Option<f64>,
    pub max_detect_pixels: Option<i64>,
}

handle!(
    /// dlib's frontal face detector and 68-landmark shape predictor, loaded once, and the
    /// published FFHQ-style alignment.
    FaceAligner,
    sys::dc_face_aligner,
    sys::dc_face_aligner_free
);

impl FaceAligner {
    /// Debian's predictor file (libdlib-data) unless `options.predictor` names another.
    pub fn new(options: &FaceAlignerOptions) -> Result<FaceAligner> {
        // SAFETY: plain data, filled by the initialiser.
        let mut o: sys::dc_face_aligner_options = unsafe { std::mem::zeroed() };
        unsafe { sys::dc_face_aligner_options_init(&mut o, sys::DC_FACE_ALIGNER_OPTIONS_VERSION) };
        let path = options.predictor.as_deref().map(c_path).transpose()?;
        if let Some(p) = &path {
            o.predictor_path = p.as_ptr();
        }
        if let Some(u) = options.upsample {
            o.upsample = u;
        }
        if let Some(t) = options.adjust_threshold {
            o.adjust_threshold = t;
        }
        if let Some(m) = options.max_detect_pixels {
            o.max_detect_pixels = m;
        }
        let ptr = open(|out| unsafe { sys::dc_face_aligner_new(out, &o) })?;
        Ok(FaceAligner { ptr })
    }

    /// Every face in the image, in the detector's order (the published code aligns the last).
    pub fn detect(&mut self, image: &ImageView<'_>) -> Result<Vec<Face>> {
        let mut faces: *mut sys::dc_face = ptr::null_mut();
        let mut count = 0usize;
        check(unsafe { sys::dc_face_detect(self.raw(), image.raw(), &mut faces, &mut count) })?;
        let list = (0..count)
            .map(|i| Face::from_raw(unsafe { &*faces.add(i) }))
            .collect();
        unsafe { sys::dc_faces_free(faces) };
        Ok(list)
    }

    /// The aligned face of the last detection, size x size, with that detection; an error of
    /// Status::NotFound when there is no face.
    pub fn align(&mut self, image: &ImageView<'_>, size: usize) -> Result<(Image, Face)> {
        let size = c_int::try_from(size).map_err(|_| invalid("aligned size too large"))?;
        // SAFETY: plain data the call fills.
        let mut face: sys::dc_face = unsafe { std::mem::zeroed() };
        let image = Image::from_call(|out| unsafe {
            sys::dc_face_align(self.raw(), image.raw(), size, out, &mut face)
        })?;
        Ok((image, Face::from_raw(&face)))
    }
}

/// The published align_face with given landmarks: the quad transform to `transform_size`
/// (0: `size`), then resized to `size`.
pub fn face_align_landmarks(
    image: &ImageView<'_>,
    landmarks: &Landmarks,
    size: usize,
    transform_size: usize,
) -> Result<Image> {
    let size = c_int::try_from(size).map_err(|_| invalid("aligned size too large"))?;
    let transform = c_int::try_from(transform_size).map_err(|_| invalid("size too large"))?;
    let flat: Vec<i64> = landmarks.iter().flatten().copied().collect();
    Image::from_call(|out| unsafe {
        sys::dc_face_align_landmarks(image.raw(), flat.as_ptr(), size, transform, out)
    })
}
