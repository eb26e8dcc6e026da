//! What the handle types share: C strings for paths and texts, constructors, and the
//! `handle!` macro that makes a handle type (one line per new handle).
use std::ffi::CString;
use std::os::raw::{c_char, c_int};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::{self, NonNull};

use crate::error::{check, invalid, Error, Result, Status};
use crate::sys;

pub(crate) fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| invalid(format!("{}: the path contains a NUL byte", path.display())))
}

pub(crate) fn c_text(text: &str, what: &str) -> Result<CString> {
    CString::new(text).map_err(|_| invalid(format!("{what} contains a NUL character")))
}

/// The options structs that name a device.
pub(crate) trait DeviceSlot {
    fn set_device(&mut self, device: *const c_char);
}

macro_rules! device_slot {
    ($($options:ty),*) => {$(
        impl DeviceSlot for $options {
            fn set_device(&mut self, device: *const c_char) {
                self.device = device;
            }
        }
    )*};
}
device_slot!(
    sys::dc_model_options,
    sys::dc_clip_options,
    sys::dc_idnet_options,
    sys::dc_face_descriptor_options
);

/// `raw` with its device set to `device` (as initialised for None), and the C string it then
/// points into: keep that alive while `raw` is used.
pub(crate) fn with_device<O: DeviceSlot>(
    mut raw: O,
    device: Option<&str>,
) -> Result<(O, Option<CString>)> {
    let device = device.map(|d| c_text(d, "the device")).transpose()?;
    if let Some(device) = &device {
        raw.set_device(device.as_ptr());
    }
    Ok((raw, device))
}

/// Runs a constructor that stores a new handle through its argument, once the library is
/// known to be one this crate can use (`crate::check_library_version`).
pub(crate) fn open<T>(construct: impl FnOnce(*mut *mut T) -> c_int) -> Result<NonNull<T>> {
    crate::check_library_version()?;
    let mut raw = ptr::null_mut();
    check(construct(&mut raw))?;
    NonNull::new(raw).ok_or_else(|| Error::new(Status::Internal, "the library returned no handle"))
}

/// A handle type over an opaque C handle: freed on drop; `Send` (the header lets a handle
/// move between threads, used by one at a time) and not `Sync`.
macro_rules! handle {
    ($(#[$doc:meta])* $name:ident, $raw:ty, $free:path) => {
        $(#[$doc])*
        pub struct $name {
            ptr: std::ptr::NonNull<$raw>,
        }

        impl $name {
            #[allow(dead_code)]
            pub(crate) fn raw(&self) -> *mut $raw {
                self.ptr.as_ptr()
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                // SAFETY: the handle came from its constructor and is freed once.
                unsafe { $free(self.ptr.as_ptr()) }
            }
        }

        // SAFETY: see the macro's documentation; &mut self methods keep one user at a time.
        unsafe impl Send for $name {}

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({:p})"), self.ptr)
            }
        }
    };
}
pub(crate) use handle;
