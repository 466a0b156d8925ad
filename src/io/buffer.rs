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

/// With at least this many writable bytes [`Buffer::read_from`] reads with a plain `recv`;
/// below it, with `readv` and the spill array.
const MIN_RECV: usize = 1024;

/// What one [`Buffer::fill_from`] read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Filled {
    /// Bytes read; 0 means end of stream.
    pub(crate) bytes: usize,
    /// The read took all it asked for: more may be waiting in the socket.
    pub(crate) full: bool,
}

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

    /// Reads from `fd` and appends what was read; returns the number of bytes read, `0` meaning
    /// end of stream.
    ///
    /// When the writable region has room (at least 1 KiB), one `recv` reads into it. When it
    /// has not, or when that `recv` filled it (more may be waiting), one `readv` reads into the
    /// writable region and into a 64 KiB per-thread array (zeroed once), and what lands in the
    /// array is appended, growing the buffer. (A connection's loop makes one of the two calls a
    /// turn, chosen by what the connection's last read took.) So the usual small read costs the cheapest system
    /// call, a small buffer still takes a large read in at most two, and an idle connection's
    /// buffer need not be large. If the writable region is small (under 512 bytes or under 1/8
    /// of the capacity), the readable bytes are moved back to the start first when that frees
    /// space.
    ///
    /// Errors, `WouldBlock` included, are returned unchanged, and the readable bytes are then
    /// unchanged (an error after bytes were read is left for the next call). `EINTR` is
    /// retried.
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
        let room = self.writable_len();
        if room < MIN_RECV {
            return self.read_spill(fd, usize::MAX).map(|f| f.bytes);
        }
        let n = sys::recv(fd, &mut self.buf[self.write..])?;
        self.write += n;
        let first = Filled { bytes: n, full: n == room };
        if first.bytes == 0 || !first.full {
            return Ok(first.bytes);
        }
        // The region is full and more may be waiting: take it with the spill array now.
        match self.read_spill(fd, usize::MAX) {
            Ok(more) => Ok(first.bytes + more.bytes),
            // End of stream or an error comes back on the next call; these bytes count now.
            Err(_) => Ok(first.bytes),
        }
    }

    /// One read system call of at most `cap` bytes, for a connection whose last read took
    /// `last` bytes (0: none yet): a plain `recv` into the writable region when it has room for
    /// twice that (and at least 1 KiB), else `readv` into the region and the spill array — a
    /// first read, a burst, or a buffer too small for what comes. Tells whether the read took
    /// all it asked for (more may be waiting).
    pub(crate) fn fill_from(&mut self, fd: BorrowedFd<'_>, last: usize, cap: usize) -> io::Result<Filled> {
        let writable = self.writable_len();
        if (writable < MIN_READ_SPACE || writable < self.capacity() / 8) && self.read > PREPEND {
            self.compact();
        }
        let room = self.writable_len();
        let cap = cap.max(1);
        if last == 0 || room < MIN_RECV || room < last.saturating_mul(2) {
            return self.read_spill(fd, cap);
        }
        let take = room.min(cap);
        let n = sys::recv(fd, &mut self.buf[self.write..self.write + take])?;
        self.write += n;
        Ok(Filled { bytes: n, full: n == take })
    }

    /// One `readv` of at most `cap` bytes into the writable region and the thread's spill
    /// array. A read of 0 bytes (end of stream) comes back as `Ok` with `bytes == 0`.
    fn read_spill(&mut self, fd: BorrowedFd<'_>, cap: usize) -> io::Result<Filled> {
        // The thread's array, unless it is gone (thread exit) or in use (it never is: the read
        // calls nothing back); then a fresh one.
        match EXTRA
            .try_with(|cell| cell.try_borrow_mut().ok().map(|mut extra| self.read_with_extra(fd, &mut extra, cap)))
        {
            Ok(Some(result)) => result,
            _ => self.read_with_extra(fd, &mut vec![0u8; EXTRA_READ], cap),
        }
    }

    /// One `readv` of at most `cap` bytes into the writable region and `extra`; appends what
    /// landed in `extra`.
    fn read_with_extra(&mut self, fd: BorrowedFd<'_>, extra: &mut [u8], cap: usize) -> io::Result<Filled> {
        let in_place = self.writable_len().min(cap);
        let spill = extra.len().min(cap - in_place);
        let n = {
            let tail = &mut self.buf[self.write..self.write + in_place];
            let mut iov = [IoSliceMut::new(tail), IoSliceMut::new(&mut extra[..spill])];
            sys::readv(fd, &mut iov)?
        };
        if n <= in_place {
            self.write += n;
        } else {
            self.write += in_place;
            self.extend_from_slice(&extra[..n - in_place]);
        }
        Ok(Filled { bytes: n, full: n == in_place + spill })
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
#[path = "buffer_tests.rs"]
mod tests;
