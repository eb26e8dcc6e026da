//! The face descriptor (dlib's ResNet as face-api's faceRecognitionNet): 128 floats per face;
//! descriptors less than `FACE_SAME_PERSON_DISTANCE` apart are taken to be the same person.
use std::os::raw::c_int;
use std::path::Path;
use std::ptr;

use crate::error::{check, invalid, Result};
use crate::handle::{c_path, handle, open, with_device};
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
        // SAFETY: all-zero is a valid value of the plain C struct, which _init then sets.
        let mut raw: sys::dc_face_descriptor_options = unsafe { std::mem::zeroed() };
        check(unsafe {
            sys::dc_face_descriptor_options_init(&mut raw, sys::DC_FACE_DESCRIPTOR_OPTIONS_VERSION)
        })?;
        let (raw, _device) = with_device(raw, device)?;
        let ptr = open(|out| unsafe {
            sys::dc_face_descriptor_load(
                out,
                manifest.as_ptr(),
                weights.as_ref().map_or(ptr::null(), |w| w.as_ptr()),
                &raw,
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
