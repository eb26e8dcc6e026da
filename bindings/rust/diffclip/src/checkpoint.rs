//! Checkpoints: every tensor of a file, read without executing anything; state dicts written.
use std::ffi::CStr;
use std::path::Path;

use crate::error::{check, Result};
use crate::handle::{c_path, c_text, handle, open};
use crate::sys;
use crate::tensor::TensorView;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    TorchZip,
    TorchLegacy,
    TorchScript,
    Safetensors,
    Npy,
    /// A container this binding does not know (a newer library).
    Other(i32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckpointFormat {
    /// By extension: .safetensors, else torch.save zip.
    Auto,
    TorchZip,
    Safetensors,
}

handle!(
    /// The tensors of a torch.save zip or legacy file, a TorchScript archive, safetensors or
    /// .npy, in memory; its tensors are views borrowed from it.
    Checkpoint,
    sys::dc_checkpoint,
    sys::dc_checkpoint_free
);

impl Checkpoint {
    pub fn open(path: impl AsRef<Path>) -> Result<Checkpoint> {
        let path = c_path(path.as_ref())?;
        let ptr = open(|out| unsafe { sys::dc_checkpoint_open(out, path.as_ptr()) })?;
        Ok(Checkpoint { ptr })
    }

    pub fn container(&self) -> Container {
        match unsafe { sys::dc_checkpoint_container(self.raw()) } {
            sys::DC_CONTAINER_TORCH_ZIP => Container::TorchZip,
            sys::DC_CONTAINER_TORCH_LEGACY => Container::TorchLegacy,
            sys::DC_CONTAINER_TORCHSCRIPT => Container::TorchScript,
            sys::DC_CONTAINER_SAFETENSORS => Container::Safetensors,
            sys::DC_CONTAINER_NPY => Container::Npy,
            other => Container::Other(other),
        }
    }

    pub fn len(&self) -> usize {
        unsafe { sys::dc_checkpoint_count(self.raw()) }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Name of tensor `index` (invalid UTF-8 replaced); `None` out of range.
    pub fn name(&self, index: usize) -> Option<String> {
        let name = unsafe { sys::dc_checkpoint_name(self.raw(), index) };
        // SAFETY: a NUL-terminated string owned by the checkpoint, or NULL.
        (!name.is_null()).then(|| {
            unsafe { CStr::from_ptr(name) }
                .to_string_lossy()
                .into_owned()
        })
    }

    pub fn names(&self) -> Vec<String> {
        (0..self.len()).filter_map(|i| self.name(i)).collect()
    }

    /// Index of the tensor called `name` (an InvalidArgument error if there is none).
    pub fn find(&self, name: &str) -> Result<usize> {
        let name = c_text(name, "the tensor name")?;
        let mut index = 0;
        check(unsafe { sys::dc_checkpoint_find(self.raw(), name.as_ptr(), &mut index) })?;
        Ok(index)
    }

    /// Tensor `index` as stored (its dtype), borrowed from the checkpoint.
    pub fn tensor(&self, index: usize) -> Result<TensorView<'_>> {
        let mut raw = unsafe { std::mem::zeroed() };
        check(unsafe { sys::dc_checkpoint_tensor(self.raw(), index, &mut raw) })?;
        // SAFETY: the data is owned by the checkpoint, which the view borrows.
        unsafe { TensorView::from_raw(raw) }
    }

    pub fn get(&self, name: &str) -> Result<TensorView<'_>> {
        self.tensor(self.find(name)?)
    }
}

/// Writes `tensors` as a state dict (in this order), replacing `path` atomically.
pub fn write_checkpoint(
    path: impl AsRef<Path>,
    format: CheckpointFormat,
    tensors: &[(&str, TensorView<'_>)],
) -> Result<()> {
    let path = c_path(path.as_ref())?;
    let names = tensors
        .iter()
        .map(|(name, _)| c_text(name, "a tensor name"))
        .collect::<Result<Vec<_>>>()?;
    let table: Vec<sys::dc_named_tensor> = names
        .iter()
        .zip(tensors)
        .map(|(name, (_, view))| sys::dc_named_tensor {
            name: name.as_ptr(),
            tensor: unsafe { *view.raw() },
        })
        .collect();
    let format = match format {
        CheckpointFormat::Auto => sys::DC_FORMAT_AUTO,
        CheckpointFormat::TorchZip => sys::DC_FORMAT_TORCH_ZIP,
        CheckpointFormat::Safetensors => sys::DC_FORMAT_SAFETENSORS,
    };
    check(unsafe { sys::dc_checkpoint_write(path.as_ptr(), format, table.as_ptr(), table.len()) })
}
