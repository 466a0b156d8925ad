//! The raw-pointer edge of the API: C's pointer arguments turned into Rust references, slices
//! and strings, each under the contract the header states for it. The other files dereference
//! a pointer themselves only where it is their own (a box they made with `Box::into_raw`, the
//! connection behind a `kp_conn` token), each with its `// SAFETY:` comment.

use std::ffi::{c_char, CStr};

/// `ptr` as a shared reference, or `None` if NULL.
///
/// # Safety
/// `ptr` is NULL or points to a live, properly aligned `T` that nothing mutates for the
/// reference's lifetime.
pub(crate) unsafe fn as_ref<'a, T>(ptr: *const T) -> Option<&'a T> {
    // SAFETY: the caller's contract; `as_ref` maps NULL to `None`.
    unsafe { ptr.as_ref() }
}

/// `ptr` as an exclusive reference, or `None` if NULL.
///
/// # Safety
/// `ptr` is NULL or points to a live, properly aligned `T` that nothing else uses for the
/// reference's lifetime.
pub(crate) unsafe fn as_mut<'a, T>(ptr: *mut T) -> Option<&'a mut T> {
    // SAFETY: the caller's contract; `as_mut` maps NULL to `None`.
    unsafe { ptr.as_mut() }
}

/// The `len` bytes at `data`; an empty slice when `len` is 0 (whatever `data` is).
///
/// # Safety
/// When `len > 0`, `data` points to `len` readable bytes that stay unchanged for the slice's
/// lifetime.
pub(crate) unsafe fn bytes<'a>(data: *const u8, len: usize) -> Result<&'a [u8], &'static str> {
    if len == 0 {
        Ok(&[])
    } else if data.is_null() {
        Err("data is NULL but len is not 0")
    } else {
        // SAFETY: non-NULL, and the caller guarantees `len` readable bytes.
        Ok(unsafe { std::slice::from_raw_parts(data, len) })
    }
}

/// A NUL-terminated string argument as UTF-8.
///
/// # Safety
/// `s` is NULL or points to a NUL-terminated string that stays unchanged meanwhile.
pub(crate) unsafe fn str_arg<'a>(s: *const c_char) -> Result<&'a str, &'static str> {
    if s.is_null() {
        return Err("string is NULL");
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    unsafe { CStr::from_ptr(s) }.to_str().map_err(|_| "string is not UTF-8")
}

/// A NUL-terminated string argument as text, bytes that are not UTF-8 replaced by U+FFFD (for
/// messages, which should not be lost to another locale's encoding).
///
/// # Safety
/// `s` is NULL or points to a NUL-terminated string that stays unchanged meanwhile.
pub(crate) unsafe fn str_lossy<'a>(s: *const c_char) -> Result<std::borrow::Cow<'a, str>, &'static str> {
    if s.is_null() {
        return Err("string is NULL");
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    Ok(unsafe { CStr::from_ptr(s) }.to_string_lossy())
}

/// Writes `text` into the caller's buffer `buf` of `len` bytes, NUL-terminated, truncated to
/// fit. Returns the length of the whole text (without the NUL), as `snprintf` does.
///
/// # Safety
/// `buf` is NULL (then `len` must be 0) or points to `len` writable bytes.
pub(crate) unsafe fn write_str(text: &str, buf: *mut c_char, len: usize) -> usize {
    if !buf.is_null() && len > 0 {
        let n = text.len().min(len - 1);
        // SAFETY: `buf` has `len` writable bytes and `n + 1 <= len`; `text` does not overlap
        // the caller's buffer (it is ours).
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    text.len()
}
