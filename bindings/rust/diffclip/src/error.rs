use std::ffi::CStr;
use std::fmt;
use std::os::raw::c_int;

use crate::sys;

/// What kind of failure a call had (the header's dc_status codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    InvalidArgument,
    Io,
    Format,
    OutOfMemory,
    Device,
    Cancelled,
    Internal,
    /// Not there: no face in a photo.
    NotFound,
    /// A code this binding does not know (a newer library).
    Other(i32),
}

impl Status {
    pub fn from_code(code: c_int) -> Status {
        match code {
            sys::DC_EINVAL => Status::InvalidArgument,
            sys::DC_EIO => Status::Io,
            sys::DC_EFORMAT => Status::Format,
            sys::DC_ENOMEM => Status::OutOfMemory,
            sys::DC_EDEVICE => Status::Device,
            sys::DC_ECANCELLED => Status::Cancelled,
            sys::DC_EINTERNAL => Status::Internal,
            sys::DC_ENOTFOUND => Status::NotFound,
            other => Status::Other(other),
        }
    }

    pub fn code(self) -> c_int {
        match self {
            Status::InvalidArgument => sys::DC_EINVAL,
            Status::Io => sys::DC_EIO,
            Status::Format => sys::DC_EFORMAT,
            Status::OutOfMemory => sys::DC_ENOMEM,
            Status::Device => sys::DC_EDEVICE,
            Status::Cancelled => sys::DC_ECANCELLED,
            Status::Internal => sys::DC_EINTERNAL,
            Status::NotFound => sys::DC_ENOTFOUND,
            Status::Other(code) => code,
        }
    }

    /// The library's name of the code ("DC_EFORMAT").
    pub fn name(self) -> String {
        // SAFETY: dc_status_name returns a static string for any code.
        unsafe { CStr::from_ptr(sys::dc_status_name(self.code())) }
            .to_string_lossy()
            .into_owned()
    }
}

/// A failed call: its status and the library's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    status: Status,
    message: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error found by the binding itself (before calling the library).
    pub fn new(status: Status, message: impl Into<String>) -> Error {
        Error {
            status,
            message: message.into(),
        }
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.status.name())
    }
}

impl std::error::Error for Error {}

/// Ok for DC_OK, else the error with dc_last_error() (read on this thread, right after the
/// call, as the header asks).
pub(crate) fn check(code: c_int) -> Result<()> {
    if code == sys::DC_OK {
        return Ok(());
    }
    // SAFETY: dc_last_error never returns NULL.
    let message = unsafe { CStr::from_ptr(sys::dc_last_error()) }
        .to_string_lossy()
        .into_owned();
    Err(Error {
        status: Status::from_code(code),
        message,
    })
}

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::new(Status::InvalidArgument, message)
}
