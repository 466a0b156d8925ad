//! A growable byte buffer for socket input and output, in muduo's layout.
//!
//! One `Vec<u8>`, whose length is the buffer's total size, is split by two indices into three
//! regions:
//!
//! ```text
//! +-------------------+------------------+------------------+
//! | prependable bytes |  readable bytes  |  writable bytes  |
//! |                   |    (content)     |                  |
//! +-------------------+------------------+------------------+
//! 0        <=       read       <=      write      <=      vec.len()
//! ```
//!
//! - Reading (consuming) moves `read` forward; when the buffer becomes empty both indices go back
//!   to [`PREPEND`], so the space is reclaimed without moving a byte.
//! - Writing (producing) fills the writable region and moves `write` forward. When the writable
//!   region is too small the readable bytes are first moved back to [`PREPEND`] (compaction),
//!   and the vector grows (at least doubling) only when that is not enough.
//! - The first [`PREPEND`] bytes are kept free at the start, so a length header can be put in
//!   front of a message that is already in the buffer ([`Buffer::prepend`]) without a copy.
//!
//! The bytes of the vector are initialised once, when it is allocated or grows; clearing the
//! buffer only resets the indices.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, IoSliceMut};
use std::os::fd::BorrowedFd;

use crate::sys;

/// Bytes kept free in front of the readable bytes of a new or emptied buffer, for
/// [`Buffer::prepend`].
pub const PREPEND: usize = 8;

/// Readable plus writable bytes of [`Buffer::new`].
const DEFAULT_CAPACITY: usize = 4096;

/// Size of the spill array that [`Buffer::read_from`] reads into beyond the writable region.
const EXTRA_READ: usize = 64 * 1024;

thread_local! {
    /// The spill array of [`Buffer::read_from`], one per thread and zeroed once: a 64 KiB
    /// array on the stack would be zeroed on every read (a memset that cost ~15% of an echo
    /// server's CPU per message).
    static EXTRA: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; EXTRA_READ].into_boxed_slice());
}

/// Below this many writable bytes [`Buffer::read_from`] compacts first (when that frees space).
const MIN_READ_SPACE: usize = 512;

/// A growable byte buffer: `| prependable | readable | writable |` over one `Vec<u8>`.
///
/// Used for a connection's input and output. A `Buffer` is `Send` but not shared: it is owned
/// by one thread at a time (every method that changes it takes `&mut self`).
///
/// ```text
/// | prependable (>= PREPEND when new) | readable: as_slice() | writable: writable_mut() |
/// ```
///
/// # Examples
///
/// ```
/// use kingpin::Buffer;
///
/// let mut buf = Buffer::new();
/// buf.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
/// let end = buf.find_crlf().unwrap();
/// let line = buf.split_to(end);
/// assert_eq!(line, b"GET / HTTP/1.1");
/// buf.advance(2); // the "\r\n"
/// assert_eq!(buf.as_slice(), b"Host: x\r\n\r\n");
/// ```
#[derive(Clone)]
pub struct Buffer {
    /// Storage; its length is the total size (prependable + readable + writable).
    buf: Vec<u8>,
    /// Start of the readable bytes.
    read: usize,
    /// End of the readable bytes, start of the writable bytes.
    write: usize,
}

impl Buffer {
    /// Bytes kept free in front of the readable bytes of a new or emptied buffer (the same as
    /// the module constant `buffer::PREPEND`).
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::new();
    /// buf.extend_from_slice(b"x");
    /// buf.prepend(&[0; Buffer::PREPEND]);
    /// assert_eq!(buf.prependable_len(), 0);
    /// ```
    pub const PREPEND: usize = PREPEND;

    /// Creates an empty buffer with room for 4096 bytes (plus the
    /// [`PREPEND`](Self::PREPEND) area).
    ///
    /// May be called from any thread; the buffer is then owned by one thread at a time.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let buf = Buffer::new();
    /// assert!(buf.is_empty());
    /// assert_eq!(buf.capacity(), 4096);
    /// assert_eq!(buf.prependable_len(), Buffer::PREPEND);
    /// ```
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// Creates an empty buffer with room for `capacity` bytes (plus the
    /// [`PREPEND`](Self::PREPEND) area).
    ///
    /// May be called from any thread; the buffer is then owned by one thread at a time.
    ///
    /// # Panics
    ///
    /// Panics if `capacity + PREPEND` overflows `usize`.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let buf = Buffer::with_capacity(16);
    /// assert_eq!(buf.capacity(), 16);
    /// assert_eq!(buf.writable_len(), 16);
    /// ```
    pub fn with_capacity(capacity: usize) -> Self {
        let total = capacity.checked_add(PREPEND).expect("Buffer capacity overflow");
        Self { buf: vec![0; total], read: PREPEND, write: PREPEND }
    }

    // -----------------------------------------------------------------------------------------
    // Inspect
    // -----------------------------------------------------------------------------------------

    /// Returns the number of readable bytes.
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::new();
    /// buf.extend_from_slice(b"abc");
    /// assert_eq!(buf.len(), 3);
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        self.write - self.read
    }

    /// Returns `true` if there are no readable bytes.
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::new();
    /// assert!(buf.is_empty());
    /// buf.extend_from_slice(b"x");
    /// assert!(!buf.is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.write == self.read
    }

    /// Returns the size of the buffer without the [`PREPEND`](Self::PREPEND) area: the most
    /// bytes it can hold without growing (after compaction).
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::with_capacity(8);
    /// buf.extend_from_slice(b"0123456789");
    /// assert!(buf.capacity() >= 10);
    /// ```
    #[inline]
    pub fn capacity(&self) -> usize {
        self.buf.len() - PREPEND
    }

    /// Returns the number of bytes that can be written without compacting or growing.
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::with_capacity(16);
    /// buf.extend_from_slice(b"abcd");
    /// assert_eq!(buf.writable_len(), 12);
    /// ```
    #[inline]
    pub fn writable_len(&self) -> usize {
        self.buf.len() - self.write
    }

    /// Returns the number of bytes in front of the readable bytes: how much
    /// [`prepend`](Self::prepend) can take.
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::new();
    /// buf.extend_from_slice(b"abcd");
    /// buf.advance(1);
    /// assert_eq!(buf.prependable_len(), Buffer::PREPEND + 1);
    /// ```
    #[inline]
    pub fn prependable_len(&self) -> usize {
        self.read
    }

    /// Returns the readable bytes.
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::new();
    /// buf.extend_from_slice(b"hello");
    /// assert_eq!(buf.as_slice(), b"hello");
    /// ```
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.read..self.write]
    }

    /// Returns the readable bytes, mutably (to edit them in place).
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::new();
    /// buf.extend_from_slice(b"hello");
    /// buf.as_mut_slice().make_ascii_uppercase();
    /// assert_eq!(buf.as_slice(), b"HELLO");
    /// ```
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf[self.read..self.write]
    }

    // -----------------------------------------------------------------------------------------
    // Consume
    // -----------------------------------------------------------------------------------------

    /// Consumes the first `n` readable bytes.
    ///
    /// When this empties the buffer both indices go back to the start (after the
    /// [`PREPEND`](Self::PREPEND) area), so the whole buffer is writable again without moving
    /// a byte.
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Panics
    ///
    /// Panics if `n > self.len()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::new();
    /// buf.extend_from_slice(b"hello world");
    /// buf.advance(6);
    /// assert_eq!(buf.as_slice(), b"world");
    /// ```
    pub fn advance(&mut self, n: usize) {
        let len = self.len();
        assert!(n <= len, "Buffer::advance({n}) past the end of {len} readable bytes");
        if n == len {
            self.clear();
        } else {
            self.read += n;
        }
    }

    /// Discards all readable bytes in O(1) (no byte is overwritten); the capacity is kept.
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::new();
    /// buf.extend_from_slice(b"hello");
    /// buf.clear();
    /// assert!(buf.is_empty());
    /// assert_eq!(buf.writable_len(), buf.capacity());
    /// ```
    #[inline]
    pub fn clear(&mut self) {
        self.read = PREPEND;
        self.write = PREPEND;
    }

    /// Removes the first `n` readable bytes and returns them as a new `Vec`.
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Panics
    ///
    /// Panics if `n > self.len()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::new();
    /// buf.extend_from_slice(b"line one\nline two\n");
    /// let n = buf.find_eol().unwrap();
    /// assert_eq!(buf.split_to(n + 1), b"line one\n");
    /// assert_eq!(buf.as_slice(), b"line two\n");
    /// ```
    pub fn split_to(&mut self, n: usize) -> Vec<u8> {
        let len = self.len();
        assert!(n <= len, "Buffer::split_to({n}) past the end of {len} readable bytes");
        let out = self.buf[self.read..self.read + n].to_vec();
        self.advance(n);
        out
    }

    /// Keeps the first `n` readable bytes and discards the rest; does nothing if
    /// `n >= self.len()`.
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::new();
    /// buf.extend_from_slice(b"hello world");
    /// buf.truncate(5);
    /// assert_eq!(buf.as_slice(), b"hello");
    /// ```
    pub fn truncate(&mut self, n: usize) {
        if n == 0 {
            self.clear();
        } else if n < self.len() {
            self.write = self.read + n;
        }
    }

    // -----------------------------------------------------------------------------------------
    // Produce
    // -----------------------------------------------------------------------------------------

    /// Appends `data` after the readable bytes, compacting or growing as needed
    /// (see [`reserve`](Self::reserve)).
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Panics
    ///
    /// Panics if the needed capacity overflows `usize`.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::with_capacity(4);
    /// buf.extend_from_slice(b"hello ");
    /// buf.extend_from_slice(b"world");
    /// assert_eq!(buf.as_slice(), b"hello world");
    /// ```
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.reserve(data.len());
        self.buf[self.write..self.write + data.len()].copy_from_slice(data);
        self.write += data.len();
    }

    /// Makes room for at least `additional` more bytes: afterwards
    /// `self.writable_len() >= additional`.
    ///
    /// If the writable region is too small, the readable bytes are first moved back to the
    /// start (compaction); the buffer grows only if that is not enough, and then to at least
    /// double its size, so that growth is amortised O(1).
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Panics
    ///
    /// Panics if the needed capacity overflows `usize`.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::with_capacity(16);
    /// buf.extend_from_slice(b"0123456789abcdef");
    /// buf.advance(12);
    /// buf.reserve(12); // compaction is enough
    /// assert_eq!(buf.capacity(), 16);
    /// buf.reserve(100); // has to grow
    /// assert!(buf.writable_len() >= 100);
    /// assert_eq!(buf.as_slice(), b"cdef");
    /// ```
    pub fn reserve(&mut self, additional: usize) {
        if self.writable_len() >= additional {
            return;
        }
        let len = self.len();
        let needed =
            len.checked_add(additional).and_then(|n| n.checked_add(PREPEND)).expect("Buffer capacity overflow");
        if needed <= self.buf.len() {
            // Only possible when `read > PREPEND`: moving the bytes back frees enough space.
            self.compact();
        } else {
            let total = needed.max(self.buf.len().saturating_mul(2));
            self.reallocate(total);
        }
    }

    /// Returns the writable region, to be filled in place and then marked as written with
    /// [`commit`](Self::commit). Call [`reserve`](Self::reserve) first to make it big enough.
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::new();
    /// buf.reserve(3);
    /// buf.writable_mut()[..3].copy_from_slice(b"abc");
    /// buf.commit(3);
    /// assert_eq!(buf.as_slice(), b"abc");
    /// ```
    #[inline]
    pub fn writable_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.write..]
    }

    /// Marks the first `n` bytes of the writable region (filled through
    /// [`writable_mut`](Self::writable_mut)) as readable.
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Panics
    ///
    /// Panics if `n > self.writable_len()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::with_capacity(8);
    /// let region = buf.writable_mut();
    /// region[0] = b'x';
    /// buf.commit(1);
    /// assert_eq!(buf.as_slice(), b"x");
    /// ```
    pub fn commit(&mut self, n: usize) {
        let writable = self.writable_len();
        assert!(n <= writable, "Buffer::commit({n}) past the end of {writable} writable bytes");
        self.write += n;
    }

    /// Writes `data` just in front of the readable bytes (e.g. a length header for a message
    /// already in the buffer). A new or emptied buffer has [`PREPEND`](Self::PREPEND) bytes of
    /// room for this.
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Panics
    ///
    /// Panics if `data.len() > self.prependable_len()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::new();
    /// buf.extend_from_slice(b"payload");
    /// let len = buf.len() as u32;
    /// buf.prepend(&len.to_be_bytes());
    /// assert_eq!(buf.as_slice(), b"\0\0\0\x07payload");
    /// ```
    pub fn prepend(&mut self, data: &[u8]) {
        assert!(
            data.len() <= self.read,
            "Buffer::prepend of {} bytes with only {} prependable bytes",
            data.len(),
            self.read
        );
        self.read -= data.len();
        self.buf[self.read..self.read + data.len()].copy_from_slice(data);
    }

    // -----------------------------------------------------------------------------------------
    // Search
    // -----------------------------------------------------------------------------------------

    /// Returns the offset (into the readable bytes) of the first occurrence of `needle`, or
    /// `None`. An empty needle is found at offset 0.
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::new();
    /// buf.extend_from_slice(b"key: value\r\n\r\nbody");
    /// assert_eq!(buf.find(b"\r\n\r\n"), Some(10));
    /// assert_eq!(buf.find(b"nope"), None);
    /// ```
    pub fn find(&self, needle: &[u8]) -> Option<usize> {
        let hay = self.as_slice();
        let Some((&first, rest)) = needle.split_first() else {
            return Some(0);
        };
        let last_start = hay.len().checked_sub(needle.len())?;
        let mut start = 0;
        while start <= last_start {
            let i = start + hay[start..=last_start].iter().position(|&b| b == first)?;
            if &hay[i + 1..i + needle.len()] == rest {
                return Some(i);
            }
            start = i + 1;
        }
        None
    }

    /// Returns the offset (into the readable bytes) of the first `byte`, or `None`.
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::new();
    /// buf.extend_from_slice(b"a,b,c");
    /// assert_eq!(buf.find_byte(b','), Some(1));
    /// assert_eq!(buf.find_byte(b';'), None);
    /// ```
    #[inline]
    pub fn find_byte(&self, byte: u8) -> Option<usize> {
        self.as_slice().iter().position(|&b| b == byte)
    }

    /// Returns the offset (into the readable bytes) of the first `"\r\n"`, or `None`.
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::new();
    /// buf.extend_from_slice(b"PING\r\n");
    /// assert_eq!(buf.find_crlf(), Some(4));
    /// ```
    #[inline]
    pub fn find_crlf(&self) -> Option<usize> {
        self.find(b"\r\n")
    }

    /// Returns the offset (into the readable bytes) of the first `'\n'`, or `None`.
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::new();
    /// buf.extend_from_slice(b"hello\nworld");
    /// assert_eq!(buf.find_eol(), Some(5));
    /// ```
    #[inline]
    pub fn find_eol(&self) -> Option<usize> {
        self.find_byte(b'\n')
    }

    // -----------------------------------------------------------------------------------------
    // IO and memory
    // -----------------------------------------------------------------------------------------

    /// Reads from `fd` with one `readv` call and appends what was read; returns the number of
    /// bytes read, `0` meaning end of stream.
    ///
    /// The call reads into the writable region and into a 64 KiB per-thread array (zeroed
    /// once); what lands in the array is then appended (growing the buffer). So a small buffer
    /// takes a large read in one syscall, and an idle connection's buffer need not be large. If
    /// the writable region is small (under 512 bytes or under 1/8 of the capacity), the readable
    /// bytes are moved back to the start first when that frees space.
    ///
    /// Errors, `WouldBlock` included, are returned unchanged, and the readable bytes are then
    /// unchanged. `EINTR` is retried.
    ///
    /// Called by the thread that owns the buffer (normally the connection's loop thread).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::fd::AsFd;
    /// use std::os::unix::net::UnixStream;
    /// use kingpin::Buffer;
    ///
    /// let (mut a, b) = UnixStream::pair()?;
    /// a.write_all(b"hello")?;
    /// drop(a);
    /// let mut buf = Buffer::with_capacity(2);
    /// assert_eq!(buf.read_from(b.as_fd())?, 5);
    /// assert_eq!(buf.as_slice(), b"hello");
    /// assert_eq!(buf.read_from(b.as_fd())?, 0); // end of stream
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_from(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        let writable = self.writable_len();
        if (writable < MIN_READ_SPACE || writable < self.capacity() / 8) && self.read > PREPEND {
            self.compact();
        }
        // The thread's array, unless it is gone (thread exit) or in use (it never is: the read
        // calls nothing back); then a fresh one.
        match EXTRA.try_with(|cell| cell.try_borrow_mut().ok().map(|mut extra| self.read_with_extra(fd, &mut extra))) {
            Ok(Some(result)) => result,
            _ => self.read_with_extra(fd, &mut vec![0u8; EXTRA_READ]),
        }
    }

    /// One `readv` into the writable region and `extra`; appends what landed in `extra`.
    fn read_with_extra(&mut self, fd: BorrowedFd<'_>, extra: &mut [u8]) -> io::Result<usize> {
        let writable = self.writable_len();
        let n = {
            let (_, tail) = self.buf.split_at_mut(self.write);
            let mut iov = [IoSliceMut::new(tail), IoSliceMut::new(extra)];
            sys::readv(fd, &mut iov)?
        };
        if n <= writable {
            self.write += n;
        } else {
            self.write = self.buf.len();
            self.extend_from_slice(&extra[..n - writable]);
        }
        Ok(n)
    }

    /// Reallocates the buffer down to `max_capacity` (plus the [`PREPEND`](Self::PREPEND)
    /// area) if its capacity is larger and the readable bytes fit; otherwise does nothing.
    ///
    /// Used to keep one huge message from pinning memory after it has been handled.
    ///
    /// Called by the thread that owns the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::Buffer;
    ///
    /// let mut buf = Buffer::with_capacity(16);
    /// buf.reserve(1 << 20);
    /// buf.extend_from_slice(b"tail");
    /// buf.shrink_to(64);
    /// assert_eq!(buf.capacity(), 64);
    /// assert_eq!(buf.as_slice(), b"tail");
    /// ```
    pub fn shrink_to(&mut self, max_capacity: usize) {
        if self.capacity() > max_capacity && self.len() <= max_capacity {
            self.reallocate(max_capacity + PREPEND);
        }
    }

    /// Checks the index invariants; for tests.
    #[allow(dead_code)]
    pub(crate) fn check_invariants(&self) {
        assert!(self.read <= self.write, "read {} > write {}", self.read, self.write);
        assert!(self.write <= self.buf.len(), "write {} > total {}", self.write, self.buf.len());
        assert!(self.buf.len() >= PREPEND, "total {} < PREPEND", self.buf.len());
        if self.read == self.write {
            assert_eq!((self.read, self.write), (PREPEND, PREPEND), "empty buffer not reset");
        }
    }

    /// Moves the readable bytes to start at `PREPEND`.
    fn compact(&mut self) {
        let len = self.len();
        self.buf.copy_within(self.read..self.write, PREPEND);
        self.read = PREPEND;
        self.write = PREPEND + len;
    }

    /// Replaces the storage with a new vector of `total` bytes (which must hold `PREPEND` plus
    /// the readable bytes), the readable bytes moved to start at `PREPEND`.
    fn reallocate(&mut self, total: usize) {
        let len = self.len();
        debug_assert!(total >= PREPEND + len);
        let mut buf = vec![0; total];
        buf[PREPEND..PREPEND + len].copy_from_slice(self.as_slice());
        self.buf = buf;
        self.read = PREPEND;
        self.write = PREPEND + len;
    }
}

impl Default for Buffer {
    /// Same as [`Buffer::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Buffer {
    /// Shows the sizes, not the contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("prependable", &self.prependable_len())
            .field("writable", &self.writable_len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::{ErrorKind, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    fn filled(capacity: usize, data: &[u8]) -> Buffer {
        let mut b = Buffer::with_capacity(capacity);
        b.extend_from_slice(data);
        b.check_invariants();
        b
    }

    #[test]
    fn new_and_default() {
        for b in [Buffer::new(), Buffer::default()] {
            b.check_invariants();
            assert_eq!(b.len(), 0);
            assert!(b.is_empty());
            assert_eq!(b.capacity(), DEFAULT_CAPACITY);
            assert_eq!(b.writable_len(), DEFAULT_CAPACITY);
            assert_eq!(b.prependable_len(), PREPEND);
            assert_eq!(b.as_slice(), b"");
        }
    }

    #[test]
    fn with_capacity_zero_grows() {
        let mut b = Buffer::with_capacity(0);
        assert_eq!(b.capacity(), 0);
        assert_eq!(b.writable_len(), 0);
        b.extend_from_slice(b"");
        assert_eq!(b.capacity(), 0);
        b.extend_from_slice(b"abc");
        b.check_invariants();
        assert_eq!(b.as_slice(), b"abc");
        assert!(b.capacity() >= 3);
    }

    #[test]
    fn debug_shows_sizes_not_contents() {
        let b = filled(16, b"secret");
        let s = format!("{b:?}");
        assert!(s.contains("len: 6"), "{s}");
        assert!(s.contains("capacity: 16"), "{s}");
        assert!(!s.contains("secret") && !s.contains("115"), "{s}");
    }

    #[test]
    fn clone_is_independent() {
        let mut a = filled(16, b"hello");
        let b = a.clone();
        a.as_mut_slice()[0] = b'j';
        a.extend_from_slice(b"!");
        assert_eq!(a.as_slice(), b"jello!");
        assert_eq!(b.as_slice(), b"hello");
        assert_eq!(b.capacity(), 16);
        b.check_invariants();
    }

    #[test]
    fn as_mut_slice_edits_readable_only() {
        let mut b = filled(16, b"abc");
        b.advance(1);
        assert_eq!(b.as_mut_slice(), b"bc");
        b.as_mut_slice().copy_from_slice(b"XY");
        assert_eq!(b.as_slice(), b"XY");
        assert_eq!(b.writable_len(), 13);
    }

    #[test]
    fn advance_partial_and_full_reset() {
        let mut b = filled(16, b"hello world");
        b.advance(0);
        assert_eq!(b.as_slice(), b"hello world");
        b.advance(6);
        assert_eq!(b.as_slice(), b"world");
        assert_eq!(b.prependable_len(), PREPEND + 6);
        assert_eq!(b.writable_len(), 5);
        b.advance(5);
        b.check_invariants();
        assert!(b.is_empty());
        assert_eq!(b.prependable_len(), PREPEND);
        assert_eq!(b.writable_len(), 16);
        b.advance(0);
        b.check_invariants();
    }

    #[test]
    #[should_panic(expected = "advance")]
    fn advance_past_end_panics() {
        filled(16, b"abc").advance(4);
    }

    #[test]
    fn clear_keeps_capacity_and_resets() {
        let mut b = filled(16, b"hello");
        b.advance(2);
        b.clear();
        b.check_invariants();
        assert!(b.is_empty());
        assert_eq!(b.capacity(), 16);
        assert_eq!(b.writable_len(), 16);
        assert_eq!(b.prependable_len(), PREPEND);
    }

    #[test]
    fn split_to_returns_prefix() {
        let mut b = filled(16, b"hello world");
        assert_eq!(b.split_to(0), b"");
        assert_eq!(b.split_to(5), b"hello");
        assert_eq!(b.as_slice(), b" world");
        assert_eq!(b.split_to(6), b" world");
        b.check_invariants();
        assert!(b.is_empty());
        assert_eq!(b.prependable_len(), PREPEND);
    }

    #[test]
    #[should_panic(expected = "split_to")]
    fn split_to_past_end_panics() {
        filled(16, b"abc").split_to(4);
    }

    #[test]
    fn truncate_keeps_prefix() {
        let mut b = filled(16, b"hello world");
        b.truncate(100);
        assert_eq!(b.as_slice(), b"hello world");
        b.truncate(11);
        assert_eq!(b.as_slice(), b"hello world");
        b.truncate(5);
        assert_eq!(b.as_slice(), b"hello");
        assert_eq!(b.writable_len(), 11);
        b.truncate(0);
        b.check_invariants();
        assert!(b.is_empty());
        assert_eq!(b.writable_len(), 16);
    }

    #[test]
    fn extend_exact_fit_does_not_grow() {
        let mut b = Buffer::with_capacity(8);
        b.extend_from_slice(b"01234567");
        b.check_invariants();
        assert_eq!(b.capacity(), 8);
        assert_eq!(b.writable_len(), 0);
        assert_eq!(b.as_slice(), b"01234567");
    }

    #[test]
    fn extend_grows_when_full() {
        let mut b = filled(8, b"01234567");
        b.extend_from_slice(b"8");
        b.check_invariants();
        assert_eq!(b.as_slice(), b"012345678");
        assert!(b.capacity() >= 16, "grows at least doubling: {}", b.capacity());
    }

    #[test]
    fn reserve_noop_when_enough() {
        let mut b = filled(16, b"abc");
        b.advance(1);
        b.reserve(13);
        assert_eq!(b.prependable_len(), PREPEND + 1, "no compaction when not needed");
        assert_eq!(b.capacity(), 16);
    }

    #[test]
    fn reserve_compacts_instead_of_growing() {
        let mut b = filled(16, b"0123456789abcdef");
        b.advance(10);
        assert_eq!(b.writable_len(), 0);
        b.reserve(10); // 6 readable + 10 = 16: compaction exactly fits
        b.check_invariants();
        assert_eq!(b.capacity(), 16, "compaction sufficed, so no growth");
        assert_eq!(b.prependable_len(), PREPEND);
        assert_eq!(b.writable_len(), 10);
        assert_eq!(b.as_slice(), b"abcdef");
    }

    #[test]
    fn extend_compacts_instead_of_growing() {
        let mut b = filled(16, b"0123456789abcdef");
        b.advance(10);
        b.extend_from_slice(b"ghij");
        b.check_invariants();
        assert_eq!(b.capacity(), 16);
        assert_eq!(b.as_slice(), b"abcdefghij");
    }

    #[test]
    fn reserve_grows_when_compaction_is_not_enough() {
        let mut b = filled(16, b"0123456789abcdef");
        b.advance(10);
        b.reserve(11); // 6 + 11 > 16
        b.check_invariants();
        assert!(b.capacity() >= 32, "at least doubles: {}", b.capacity());
        assert!(b.writable_len() >= 11);
        assert_eq!(b.prependable_len(), PREPEND);
        assert_eq!(b.as_slice(), b"abcdef");

        let mut b = filled(16, b"abc");
        b.reserve(1000);
        assert!(b.writable_len() >= 1000);
        assert_eq!(b.capacity(), 1003, "a big request is honoured exactly");
        assert_eq!(b.as_slice(), b"abc");
    }

    #[test]
    #[should_panic(expected = "overflow")]
    fn reserve_overflow_panics() {
        filled(16, b"abc").reserve(usize::MAX - 1);
    }

    #[test]
    fn growth_is_amortised() {
        let mut b = Buffer::with_capacity(1);
        let mut reallocations = 0;
        let mut last = b.capacity();
        for i in 0..100_000u32 {
            b.extend_from_slice(&[i as u8]);
            if b.capacity() != last {
                reallocations += 1;
                last = b.capacity();
            }
        }
        assert!(reallocations <= 20, "{reallocations} reallocations");
        assert_eq!(b.len(), 100_000);
    }

    #[test]
    fn writable_mut_and_commit() {
        let mut b = Buffer::with_capacity(8);
        assert_eq!(b.writable_mut().len(), 8);
        b.writable_mut()[..3].copy_from_slice(b"abc");
        b.commit(3);
        assert_eq!(b.as_slice(), b"abc");
        assert_eq!(b.writable_mut().len(), 5);
        b.commit(0);
        b.writable_mut().copy_from_slice(b"defgh");
        b.commit(5);
        b.check_invariants();
        assert_eq!(b.as_slice(), b"abcdefgh");
        assert_eq!(b.writable_mut().len(), 0);
    }

    #[test]
    #[should_panic(expected = "commit")]
    fn commit_past_end_panics() {
        Buffer::with_capacity(4).commit(5);
    }

    #[test]
    fn prepend_header() {
        let mut b = filled(16, b"body");
        b.prepend(&4u32.to_be_bytes());
        b.check_invariants();
        assert_eq!(b.as_slice(), b"\0\0\0\x04body");
        assert_eq!(b.prependable_len(), PREPEND - 4);
        b.prepend(b"1234");
        assert_eq!(b.prependable_len(), 0);
        assert_eq!(b.as_slice(), b"1234\0\0\0\x04body");
        b.prepend(b"");
        b.check_invariants();
    }

    #[test]
    fn prepend_into_empty_and_after_advance() {
        let mut b = Buffer::with_capacity(4);
        b.prepend(b"12345678");
        b.check_invariants();
        assert_eq!(b.as_slice(), b"12345678");
        assert_eq!(b.writable_len(), 4);

        let mut b = filled(16, b"0123456789");
        b.advance(5);
        b.prepend(b"abcdefghijklm"); // 8 + 5 prependable
        assert_eq!(b.as_slice(), b"abcdefghijklm56789");
    }

    #[test]
    #[should_panic(expected = "prepend")]
    fn prepend_too_much_panics() {
        filled(16, b"x").prepend(&[0; PREPEND + 1]);
    }

    #[test]
    fn compaction_after_prepend_keeps_bytes() {
        let mut b = filled(8, b"abcdefgh");
        b.prepend(b"1234");
        b.extend_from_slice(b"ij"); // must grow: compaction cannot help
        b.check_invariants();
        assert_eq!(b.as_slice(), b"1234abcdefghij");
    }

    #[test]
    fn find_variants() {
        let mut b = filled(64, b"xxabc\r\nabcd\nend");
        b.advance(2);
        assert_eq!(b.find(b""), Some(0));
        assert_eq!(b.find(b"abc"), Some(0));
        assert_eq!(b.find(b"abcd"), Some(5));
        assert_eq!(b.find(b"end"), Some(10));
        assert_eq!(b.find(b"endx"), None);
        assert_eq!(b.find(b"xx"), None, "consumed bytes are not searched");
        assert_eq!(b.find(b"abc\r\nabcd\nend"), Some(0));
        assert_eq!(b.find(b"abc\r\nabcd\nendz"), None);
        assert_eq!(b.find_byte(b'c'), Some(2));
        assert_eq!(b.find_byte(b'x'), None);
        assert_eq!(b.find_crlf(), Some(3));
        assert_eq!(b.find_eol(), Some(4));
        b.truncate(3);
        assert_eq!(b.find_crlf(), None);
        assert_eq!(b.find_eol(), None);
        b.extend_from_slice(b"\r");
        assert_eq!(b.find_crlf(), None, "a lone CR at the end is not a CRLF");
        b.extend_from_slice(b"\r\n");
        assert_eq!(b.find_crlf(), Some(4));
    }

    #[test]
    fn find_in_empty() {
        let b = Buffer::new();
        assert_eq!(b.find(b""), Some(0));
        assert_eq!(b.find(b"a"), None);
        assert_eq!(b.find_byte(0), None);
        assert_eq!(b.find_crlf(), None);
        assert_eq!(b.find_eol(), None);
    }

    #[test]
    fn find_skips_false_starts() {
        let b = filled(64, b"aaab aab aaaab");
        assert_eq!(b.find(b"aaaab"), Some(9));
        assert_eq!(b.find(b"ab "), Some(2));
        let b = filled(64, b"\r\r\r\n");
        assert_eq!(b.find_crlf(), Some(2));
    }

    #[test]
    fn shrink_to() {
        let mut b = filled(16, b"abc");
        b.reserve(10_000);
        let big = b.capacity();
        b.shrink_to(big); // not larger: nothing
        assert_eq!(b.capacity(), big);
        b.shrink_to(2); // readable bytes do not fit: nothing
        assert_eq!(b.capacity(), big);
        b.shrink_to(3); // exact fit
        b.check_invariants();
        assert_eq!(b.capacity(), 3);
        assert_eq!(b.as_slice(), b"abc");
        assert_eq!(b.writable_len(), 0);

        let mut b = filled(4096, b"0123456789");
        b.advance(4);
        b.prepend(b"xy");
        b.shrink_to(100);
        b.check_invariants();
        assert_eq!(b.capacity(), 100);
        assert_eq!(b.prependable_len(), PREPEND);
        assert_eq!(b.as_slice(), b"xy456789");

        let mut b = Buffer::with_capacity(1 << 20);
        b.shrink_to(0);
        b.check_invariants();
        assert_eq!(b.capacity(), 0);
    }

    // ---------------------------------------------------------------------------------------
    // read_from
    // ---------------------------------------------------------------------------------------

    fn pair() -> (UnixStream, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    /// Calls `read_from` until it does not return `WouldBlock` (up to 10 s).
    fn read_ready(buf: &mut Buffer, fd: &UnixStream) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match buf.read_from(fd.as_fd()) {
                Ok(n) => return n,
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("read_from: {e}"),
            }
        }
    }

    #[test]
    fn read_from_small_read_fits_writable() {
        let (mut w, r) = pair();
        w.write_all(b"hello").unwrap();
        let mut b = filled(64, b">");
        assert_eq!(read_ready(&mut b, &r), 5);
        b.check_invariants();
        assert_eq!(b.as_slice(), b">hello");
        assert_eq!(b.capacity(), 64);
    }

    #[test]
    fn read_from_spills_into_stack_extra() {
        const TOTAL: usize = 100_000;
        const FIRST: usize = 1000;
        let data: Vec<u8> = (0..TOTAL).map(|i| (i * 7 % 251) as u8).collect();
        let (mut w, r) = pair();
        let (tx, rx) = mpsc::channel();
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            w.write_all(&sent[..FIRST]).unwrap();
            tx.send(()).unwrap();
            w.write_all(&sent[FIRST..]).unwrap();
        });
        rx.recv().unwrap();
        let mut b = Buffer::with_capacity(16);
        let first = read_ready(&mut b, &r);
        assert!(first >= FIRST, "one readv took {first} bytes");
        assert!(first > 16, "more than the writable region");
        b.check_invariants();
        assert_eq!(b.as_slice(), &data[..first]);
        while b.len() < TOTAL {
            let n = read_ready(&mut b, &r);
            assert_ne!(n, 0, "early end of stream at {}", b.len());
            b.check_invariants();
        }
        writer.join().unwrap();
        assert_eq!(b.as_slice(), &data[..]);
        assert_eq!(read_ready(&mut b, &r), 0, "end of stream");
        assert_eq!(b.len(), TOTAL);
    }

    #[test]
    fn read_from_one_call_takes_more_than_64k() {
        // Writable region + 64 KiB extra array in one syscall.
        let (mut w, r) = pair();
        let data = vec![7u8; 100_000];
        w.set_nonblocking(true).unwrap();
        let queued = match w.write(&data) {
            Ok(n) => n,
            Err(e) => panic!("write: {e}"),
        };
        let mut b = Buffer::with_capacity(32 * 1024);
        let n = read_ready(&mut b, &r);
        b.check_invariants();
        assert_eq!(n, queued.min(32 * 1024 + EXTRA_READ));
        assert_eq!(b.len(), n);
    }

    #[test]
    fn read_from_end_of_stream() {
        let (w, r) = pair();
        drop(w);
        let mut b = filled(16, b"kept");
        assert_eq!(read_ready(&mut b, &r), 0);
        b.check_invariants();
        assert_eq!(b.as_slice(), b"kept");
    }

    #[test]
    fn read_from_would_block_leaves_buffer() {
        let (_w, r) = pair();
        let mut b = filled(16, b"0123456789");
        b.advance(3);
        let err = b.read_from(r.as_fd()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        b.check_invariants();
        assert_eq!(b.as_slice(), b"3456789");
        assert_eq!(b.capacity(), 16);
        assert_eq!(b.len(), 7);

        let mut b = filled(4096, b"abc");
        let before = format!("{b:?}");
        assert!(b.read_from(r.as_fd()).is_err());
        assert_eq!(format!("{b:?}"), before, "no compaction was needed: nothing moved");
    }

    #[test]
    fn read_from_compacts_before_reading() {
        let (mut w, r) = pair();
        let mut b = filled(1024, &[b'a'; 1000]);
        b.advance(900); // 24 writable < 512, 900 bytes reclaimable
        w.write_all(&[b'b'; 500]).unwrap();
        assert_eq!(read_ready(&mut b, &r), 500);
        b.check_invariants();
        assert_eq!(b.capacity(), 1024, "compaction made room, no growth");
        assert_eq!(b.prependable_len(), PREPEND);
        assert_eq!(&b.as_slice()[..100], &[b'a'; 100][..]);
        assert_eq!(&b.as_slice()[100..], &[b'b'; 500][..]);
    }

    #[test]
    fn read_from_after_shutdown_reads_zero() {
        let (_w, r) = pair();
        r.shutdown(std::net::Shutdown::Read).unwrap();
        let mut b = Buffer::with_capacity(0);
        assert_eq!(b.read_from(r.as_fd()).unwrap(), 0);
        b.check_invariants();
    }

    // ---------------------------------------------------------------------------------------
    // Property tests: Buffer against a Vec<u8> model
    // ---------------------------------------------------------------------------------------

    #[derive(Debug, Clone)]
    enum Op {
        Extend(Vec<u8>),
        Advance(usize),
        SplitTo(usize),
        Reserve(usize),
        Prepend(Vec<u8>),
        Truncate(usize),
        Clear,
        Commit(usize, u8),
        ShrinkTo(usize),
        MutateFirst(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => proptest::collection::vec(any::<u8>(), 0..80).prop_map(Op::Extend),
            3 => any::<usize>().prop_map(Op::Advance),
            2 => any::<usize>().prop_map(Op::SplitTo),
            2 => (0usize..300).prop_map(Op::Reserve),
            2 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(Op::Prepend),
            1 => any::<usize>().prop_map(Op::Truncate),
            1 => Just(Op::Clear),
            2 => (any::<usize>(), any::<u8>()).prop_map(|(n, b)| Op::Commit(n, b)),
            1 => (0usize..200).prop_map(Op::ShrinkTo),
            1 => any::<u8>().prop_map(Op::MutateFirst),
        ]
    }

    /// `n` reduced to `0..=max`.
    fn clamp(n: usize, max: usize) -> usize {
        n % (max + 1)
    }

    fn apply(b: &mut Buffer, model: &mut Vec<u8>, op: &Op) {
        match op {
            Op::Extend(data) => {
                b.extend_from_slice(data);
                model.extend_from_slice(data);
            }
            Op::Advance(n) => {
                let n = clamp(*n, model.len());
                b.advance(n);
                model.drain(..n);
            }
            Op::SplitTo(n) => {
                let n = clamp(*n, model.len());
                let got = b.split_to(n);
                let want: Vec<u8> = model.drain(..n).collect();
                assert_eq!(got, want);
            }
            Op::Reserve(n) => {
                let (cap, len, writable, read) = (b.capacity(), b.len(), b.writable_len(), b.prependable_len());
                b.reserve(*n);
                assert!(b.writable_len() >= *n);
                if writable >= *n {
                    assert_eq!((b.capacity(), b.prependable_len()), (cap, read), "nothing to do");
                } else if len + n <= cap {
                    assert_eq!(b.capacity(), cap, "compaction must suffice before growth");
                } else {
                    assert!(b.capacity() >= (2 * (cap + PREPEND) - PREPEND).max(len + n));
                }
            }
            Op::Prepend(data) => {
                if data.len() <= b.prependable_len() {
                    b.prepend(data);
                    model.splice(..0, data.iter().copied());
                }
            }
            Op::Truncate(n) => {
                let n = clamp(*n, model.len() + 2);
                b.truncate(n);
                model.truncate(n);
            }
            Op::Clear => {
                let cap = b.capacity();
                b.clear();
                model.clear();
                assert_eq!(b.capacity(), cap);
                assert_eq!(b.writable_len(), cap);
            }
            Op::Commit(n, byte) => {
                let n = clamp(*n, b.writable_len().min(64));
                b.writable_mut()[..n].fill(*byte);
                b.commit(n);
                model.extend(std::iter::repeat(*byte).take(n));
            }
            Op::ShrinkTo(n) => {
                let (cap, len) = (b.capacity(), b.len());
                b.shrink_to(*n);
                if cap > *n && len <= *n {
                    assert_eq!(b.capacity(), *n);
                } else {
                    assert_eq!(b.capacity(), cap);
                }
            }
            Op::MutateFirst(byte) => {
                if let Some(first) = b.as_mut_slice().first_mut() {
                    *first = *byte;
                    model[0] = *byte;
                }
            }
        }
    }

    fn naive_find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        if needle.is_empty() {
            return Some(0);
        }
        hay.windows(needle.len()).position(|w| w == needle)
    }

    /// Few distinct bytes, so that matches and near-matches are common.
    fn small_alphabet() -> impl Strategy<Value = u8> {
        prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'a'), Just(b'b')]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn matches_vec_model(cap in 0usize..64, ops in proptest::collection::vec(op(), 1..60)) {
            let mut b = Buffer::with_capacity(cap);
            let mut model = Vec::new();
            for op in &ops {
                apply(&mut b, &mut model, op);
                b.check_invariants();
                prop_assert_eq!(b.as_slice(), &model[..]);
                prop_assert_eq!(b.len(), model.len());
                prop_assert_eq!(b.is_empty(), model.is_empty());
                prop_assert_eq!(b.prependable_len() + b.len() + b.writable_len(), b.capacity() + PREPEND);
            }
            let c = b.clone();
            c.check_invariants();
            prop_assert_eq!(c.as_slice(), &model[..]);
        }

        #[test]
        fn find_matches_naive(
            skip in 0usize..8,
            hay in proptest::collection::vec(small_alphabet(), 0..64),
            needle in proptest::collection::vec(small_alphabet(), 0..5),
        ) {
            let mut b = Buffer::with_capacity(8);
            b.extend_from_slice(&vec![b'a'; skip]);
            b.extend_from_slice(&hay);
            b.advance(skip);
            prop_assert_eq!(b.find(&needle), naive_find(&hay, &needle));
            prop_assert_eq!(b.find_crlf(), naive_find(&hay, b"\r\n"));
            prop_assert_eq!(b.find_eol(), hay.iter().position(|&c| c == b'\n'));
            prop_assert_eq!(b.find_byte(b'b'), hay.iter().position(|&c| c == b'b'));
        }
    }
}
