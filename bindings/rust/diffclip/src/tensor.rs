//! Arrays across the boundary: `TensorView` borrows a slice (inputs) or a buffer the library
//! owns (a checkpoint's tensors); `Tensor` owns a buffer the library allocated (outputs).
use std::ffi::CStr;
use std::marker::PhantomData;
use std::os::raw::{c_int, c_void};
use std::path::Path;
use std::{mem, slice};

use crate::error::{check, invalid, Error, Result, Status};
use crate::handle::c_path;
use crate::sys;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    Float32,
    Float16,
    BFloat16,
    Float64,
    Int64,
    Int32,
    UInt8,
    Bool,
}

impl DType {
    pub fn from_raw(code: sys::dc_dtype) -> Option<DType> {
        Some(match code {
            sys::DC_FLOAT32 => DType::Float32,
            sys::DC_FLOAT16 => DType::Float16,
            sys::DC_BFLOAT16 => DType::BFloat16,
            sys::DC_FLOAT64 => DType::Float64,
            sys::DC_INT64 => DType::Int64,
            sys::DC_INT32 => DType::Int32,
            sys::DC_UINT8 => DType::UInt8,
            sys::DC_BOOL => DType::Bool,
            _ => return None,
        })
    }

    pub fn raw(self) -> sys::dc_dtype {
        match self {
            DType::Float32 => sys::DC_FLOAT32,
            DType::Float16 => sys::DC_FLOAT16,
            DType::BFloat16 => sys::DC_BFLOAT16,
            DType::Float64 => sys::DC_FLOAT64,
            DType::Int64 => sys::DC_INT64,
            DType::Int32 => sys::DC_INT32,
            DType::UInt8 => sys::DC_UINT8,
            DType::Bool => sys::DC_BOOL,
        }
    }

    /// "float32", as `diffclip inspect` prints it.
    pub fn name(self) -> &'static str {
        // SAFETY: a static string for every known dtype.
        unsafe { CStr::from_ptr(sys::dc_dtype_name(self.raw())) }
            .to_str()
            .unwrap_or("")
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        unsafe { sys::dc_dtype_size(self.raw()) }
    }
}

/// Element types whose arrays cross the boundary as they are.
///
/// # Safety
/// Every bit pattern of `DTYPE`'s elements must be a valid `Self` of the same size.
pub unsafe trait Element: Copy + 'static {
    const DTYPE: DType;
}
unsafe impl Element for f32 {
    const DTYPE: DType = DType::Float32;
}
unsafe impl Element for f64 {
    const DTYPE: DType = DType::Float64;
}
unsafe impl Element for i64 {
    const DTYPE: DType = DType::Int64;
}
unsafe impl Element for i32 {
    const DTYPE: DType = DType::Int32;
}
unsafe impl Element for u8 {
    const DTYPE: DType = DType::UInt8;
}

/// A C-ordered array borrowed for `'a`: the caller's slice, or memory the library owns.
#[derive(Clone, Copy)]
pub struct TensorView<'a> {
    raw: sys::dc_tensor,
    _data: PhantomData<&'a [u8]>,
}

// SAFETY: a shared borrow of plain bytes.
unsafe impl Send for TensorView<'_> {}
unsafe impl Sync for TensorView<'_> {}

impl<'a> TensorView<'a> {
    /// `data` seen with `shape` (C order; `&[]` for a scalar).
    pub fn new<T: Element>(data: &'a [T], shape: &[usize]) -> Result<TensorView<'a>> {
        if shape.len() > sys::DC_MAX_DIMS {
            return Err(invalid(format!(
                "{} dimensions, at most {}",
                shape.len(),
                sys::DC_MAX_DIMS
            )));
        }
        let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if numel != Some(data.len()) {
            return Err(invalid(format!(
                "{} elements do not make shape {:?}",
                data.len(),
                shape
            )));
        }
        // SAFETY: dc_tensor is plain data; zero is a valid value of every field.
        let mut raw: sys::dc_tensor = unsafe { mem::zeroed() };
        raw.dtype = T::DTYPE.raw();
        raw.ndim = shape.len() as c_int;
        for (dim, &n) in raw.shape.iter_mut().zip(shape) {
            *dim = i64::try_from(n).map_err(|_| invalid(format!("dimension {n} is too large")))?;
        }
        raw.data = data.as_ptr() as *mut c_void; // the library only reads inputs
        Ok(TensorView {
            raw,
            _data: PhantomData,
        })
    }

    /// A view of a dc_tensor the library filled, valid for `'a`.
    ///
    /// # Safety
    /// `raw` must describe memory that stays valid and unchanged for `'a`.
    pub(crate) unsafe fn from_raw(raw: sys::dc_tensor) -> Result<TensorView<'a>> {
        if DType::from_raw(raw.dtype).is_none()
            || !(0..=sys::DC_MAX_DIMS as c_int).contains(&raw.ndim)
        {
            return Err(Error::new(
                Status::Internal,
                "the library returned a malformed array",
            ));
        }
        Ok(TensorView {
            raw,
            _data: PhantomData,
        })
    }

    pub fn dtype(&self) -> DType {
        DType::from_raw(self.raw.dtype).expect("checked when the view was made")
    }

    pub fn shape(&self) -> Vec<usize> {
        self.raw.shape[..self.raw.ndim as usize]
            .iter()
            .map(|&n| n as usize)
            .collect()
    }

    /// Number of elements (1 for a scalar).
    pub fn len(&self) -> usize {
        unsafe { sys::dc_tensor_numel(&self.raw) as usize }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        let size = self.len() * self.dtype().size();
        if size == 0 {
            return &[];
        }
        // SAFETY: the view describes `size` readable bytes that live for 'a.
        unsafe { slice::from_raw_parts(self.raw.data as *const u8, size) }
    }

    /// The elements as `T`; `None` if `T` is not the dtype (or the data is misaligned).
    pub fn as_slice<T: Element>(&self) -> Option<&'a [T]> {
        if self.dtype() != T::DTYPE || self.raw.data as usize % mem::align_of::<T>() != 0 {
            return None;
        }
        if self.is_empty() {
            return Some(&[]);
        }
        // SAFETY: dtype, size and alignment checked; Element guarantees valid values.
        Some(unsafe { slice::from_raw_parts(self.raw.data as *const T, self.len()) })
    }

    pub(crate) fn raw(&self) -> *const sys::dc_tensor {
        &self.raw
    }
}

impl std::fmt::Debug for TensorView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TensorView({} {:?})", self.dtype().name(), self.shape())
    }
}

/// An array the library allocated; freed on drop.
pub struct Tensor {
    raw: sys::dc_tensor,
}

// SAFETY: owns a plain host buffer; dc_tensor_free may run on any thread.
unsafe impl Send for Tensor {}
unsafe impl Sync for Tensor {}

impl Tensor {
    /// An empty output argument.
    pub(crate) fn zeroed() -> Tensor {
        // SAFETY: plain data; dc_tensor_free accepts a zeroed tensor.
        Tensor {
            raw: unsafe { mem::zeroed() },
        }
    }

    pub(crate) fn out(&mut self) -> *mut sys::dc_tensor {
        &mut self.raw
    }

    /// Checks what the library filled in.
    pub(crate) fn validated(self) -> Result<Tensor> {
        // SAFETY: the buffer is owned by self.
        unsafe { TensorView::from_raw(self.raw) }?;
        Ok(self)
    }

    /// Runs a call that fills one output array.
    pub(crate) fn from_call(call: impl FnOnce(*mut sys::dc_tensor) -> c_int) -> Result<Tensor> {
        let mut t = Tensor::zeroed();
        check(call(t.out()))?;
        t.validated()
    }

    pub fn view(&self) -> TensorView<'_> {
        TensorView {
            raw: self.raw,
            _data: PhantomData,
        }
    }

    pub fn dtype(&self) -> DType {
        self.view().dtype()
    }

    pub fn shape(&self) -> Vec<usize> {
        self.view().shape()
    }

    pub fn len(&self) -> usize {
        self.view().len()
    }

    pub fn is_empty(&self) -> bool {
        self.view().is_empty()
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.view().as_bytes()
    }

    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        self.view().as_slice()
    }
}

impl Drop for Tensor {
    fn drop(&mut self) {
        unsafe { sys::dc_tensor_free(&mut self.raw) }
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({} {:?})", self.dtype().name(), self.shape())
    }
}

/// A .npy file's array (float16 files become float32).
pub fn read_npy(path: impl AsRef<Path>) -> Result<Tensor> {
    let path = c_path(path.as_ref())?;
    Tensor::from_call(|out| unsafe { sys::dc_npy_read(path.as_ptr(), out) })
}

/// Writes an array as .npy, replacing `path` atomically.
pub fn write_npy(path: impl AsRef<Path>, array: &TensorView<'_>) -> Result<()> {
    let path = c_path(path.as_ref())?;
    check(unsafe { sys::dc_npy_write(path.as_ptr(), array.raw()) })
}
