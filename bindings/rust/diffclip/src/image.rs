//! 8-bit RGB images: files, and conversions to and from tensors.
use std::marker::PhantomData;
use std::os::raw::c_int;
use std::path::Path;
use std::{mem, slice};

use crate::error::{check, invalid, Result};
use crate::handle::c_path;
use crate::sys;
use crate::tensor::{Tensor, TensorView};

/// An RGB image the library allocated (rows top to bottom, pixels interleaved); freed on drop.
pub struct Image {
    raw: sys::dc_image,
}

// SAFETY: owns a plain host buffer.
unsafe impl Send for Image {}
unsafe impl Sync for Image {}

impl Image {
    pub(crate) fn from_call(call: impl FnOnce(*mut sys::dc_image) -> c_int) -> Result<Image> {
        // SAFETY: plain data; dc_image_free accepts a zeroed image.
        let mut image = Image {
            raw: unsafe { mem::zeroed() },
        };
        check(call(&mut image.raw))?;
        Ok(image)
    }

    pub fn width(&self) -> usize {
        self.raw.width as usize
    }

    pub fn height(&self) -> usize {
        self.raw.height as usize
    }

    pub fn channels(&self) -> usize {
        self.raw.channels as usize
    }

    pub fn data(&self) -> &[u8] {
        let size = self.width() * self.height() * self.channels();
        if size == 0 {
            return &[];
        }
        // SAFETY: the library allocated width * height * channels bytes.
        unsafe { slice::from_raw_parts(self.raw.data, size) }
    }

    pub fn view(&self) -> ImageView<'_> {
        ImageView {
            raw: self.raw,
            _data: PhantomData,
        }
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        unsafe { sys::dc_image_free(&mut self.raw) }
    }
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Image({}x{}x{})", self.width(), self.height(), self.channels())
    }
}

/// The caller's RGB pixels seen as an image (for inputs).
#[derive(Clone, Copy)]
pub struct ImageView<'a> {
    raw: sys::dc_image,
    _data: PhantomData<&'a [u8]>,
}

// SAFETY: a shared borrow of plain bytes.
unsafe impl Send for ImageView<'_> {}
unsafe impl Sync for ImageView<'_> {}

impl<'a> ImageView<'a> {
    /// `rgb` holds width * height * 3 bytes.
    pub fn new(rgb: &'a [u8], width: usize, height: usize) -> Result<ImageView<'a>> {
        let fits = |n: usize| c_int::try_from(n).is_ok();
        if !fits(width)
            || !fits(height)
            || width.checked_mul(height).and_then(|n| n.checked_mul(3)) != Some(rgb.len())
        {
            return Err(invalid(format!(
                "{} bytes are not a {width}x{height} RGB image",
                rgb.len()
            )));
        }
        let raw = sys::dc_image {
            width: width as c_int,
            height: height as c_int,
            channels: 3,
            data: rgb.as_ptr() as *mut u8, // the library only reads inputs
        };
        Ok(ImageView {
            raw,
            _data: PhantomData,
        })
    }

    pub(crate) fn raw(&self) -> *const sys::dc_image {
        &self.raw
    }
}

impl std::fmt::Debug for ImageView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImageView({}x{})", self.raw.width, self.raw.height)
    }
}

/// Reads a PNG or JPEG file as RGB.
pub fn read_image(path: impl AsRef<Path>) -> Result<Image> {
    let path = c_path(path.as_ref())?;
    Image::from_call(|out| unsafe { sys::dc_image_read(path.as_ptr(), out) })
}

/// Writes PNG or JPEG by the extension, replacing `path` atomically.
pub fn write_image(path: impl AsRef<Path>, image: &ImageView<'_>) -> Result<()> {
    let path = c_path(path.as_ref())?;
    check(unsafe { sys::dc_image_write(path.as_ptr(), image.raw()) })
}

/// Centre crop, Pillow-exact LANCZOS resize, [-1, 1]: a (1, 3, size, size) float32 tensor.
pub fn image_to_tensor(image: &ImageView<'_>, size: usize) -> Result<Tensor> {
    let size = c_int::try_from(size).map_err(|_| invalid("image size too large"))?;
    Tensor::from_call(|out| unsafe { sys::dc_image_to_tensor(image.raw(), size, out) })
}

/// Image `index` of an NCHW float32 tensor in [-1, 1], as torchvision's save_image makes it.
pub fn tensor_to_image(tensor: &TensorView<'_>, index: usize) -> Result<Image> {
    Image::from_call(|out| unsafe { sys::dc_tensor_to_image(tensor.raw(), index as i64, out) })
}
