//! A per-IO-thread free list of [`Buffer`]s, so that a busy server does not allocate a buffer
//! per message or per connection.
//!
//! Each loop thread owns one pool: it takes buffers with [`BufferPool::get`] and gives them back
//! with [`BufferPool::put`]. Returned buffers are cleared (without touching their bytes), buffers
//! that grew very large are shrunk back so one huge message does not pin memory, and the number
//! of pooled buffers is capped.

use super::buffer::Buffer;

/// Default capacity of the buffers a pool allocates.
const DEFAULT_BUFFER_CAPACITY: usize = 4096;
/// Default cap on the number of pooled buffers.
const DEFAULT_MAX_POOLED: usize = 1024;
/// Default capacity above which a returned buffer is shrunk.
const DEFAULT_MAX_KEEP_CAPACITY: usize = 256 * 1024;

/// A free list of [`Buffer`]s, owned by one loop thread.
///
/// Not meant to be shared: every operation takes `&mut self`, and each IO thread keeps its
/// own pool.
///
/// # Examples
///
/// ```
/// use kingpin::BufferPool;
///
/// let mut pool = BufferPool::new(1024, 16, 64 * 1024);
/// let mut buf = pool.get(); // the pool is empty: allocates
/// buf.extend_from_slice(b"message");
/// pool.put(buf); // cleared and kept
/// let buf = pool.get(); // reused: no allocation
/// assert!(buf.is_empty());
/// assert_eq!(pool.allocated(), 1);
/// assert_eq!(pool.reused(), 1);
/// ```
#[derive(Debug)]
pub struct BufferPool {
    /// The pooled buffers, all empty.
    free: Vec<Buffer>,
    /// Capacity of newly allocated buffers, and what oversized buffers are shrunk to.
    buffer_capacity: usize,
    /// The most buffers kept.
    max_pooled: usize,
    /// Returned buffers with a larger capacity are shrunk to `buffer_capacity`.
    max_keep_capacity: usize,
    /// The most bytes (buffer capacities) kept.
    max_pooled_bytes: usize,
    /// Sum of the capacities of the pooled buffers.
    pooled_bytes: usize,
    /// Buffers allocated by `get` because the pool was empty.
    allocated: u64,
    /// Buffers handed out by `get` from the pool.
    reused: u64,
}

impl BufferPool {
    /// Creates an empty pool.
    ///
    /// - `buffer_capacity`: capacity of the buffers that [`get`](Self::get) allocates;
    /// - `max_pooled`: the most buffers kept (0 disables pooling);
    /// - `max_keep_capacity`: a buffer returned with a larger capacity is shrunk to
    ///   `buffer_capacity` (values below `buffer_capacity` are raised to it).
    ///
    /// May be called from any thread; the pool is then owned by one loop thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::BufferPool;
    ///
    /// let pool = BufferPool::new(4096, 128, 1 << 20);
    /// assert!(pool.is_empty());
    /// ```
    pub fn new(buffer_capacity: usize, max_pooled: usize, max_keep_capacity: usize) -> Self {
        Self {
            free: Vec::new(),
            buffer_capacity,
            max_pooled,
            max_keep_capacity: max_keep_capacity.max(buffer_capacity),
            max_pooled_bytes: usize::MAX,
            pooled_bytes: 0,
            allocated: 0,
            reused: 0,
        }
    }

    /// Takes an empty buffer: a pooled one if there is one, otherwise a new
    /// [`Buffer::with_capacity`]`(buffer_capacity)`.
    ///
    /// Called by the loop thread that owns the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::BufferPool;
    ///
    /// let mut pool = BufferPool::new(512, 8, 4096);
    /// let buf = pool.get();
    /// assert!(buf.is_empty());
    /// assert_eq!(buf.capacity(), 512);
    /// ```
    pub fn get(&mut self) -> Buffer {
        match self.free.pop() {
            Some(buf) => {
                self.pooled_bytes -= buf.capacity();
                self.reused += 1;
                buf
            }
            None => {
                self.allocated += 1;
                Buffer::with_capacity(self.buffer_capacity)
            }
        }
    }

    /// Caps the bytes the pool keeps (the capacities of its buffers): a buffer that would take
    /// the pool past `bytes` is freed instead of kept. Default: no cap but the count.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::BufferPool;
    ///
    /// let mut pool = BufferPool::new(1024, 100, 4096).max_bytes(2048);
    /// let (a, b, c) = (pool.get(), pool.get(), pool.get());
    /// pool.put(a);
    /// pool.put(b);
    /// pool.put(c); // would make 3 KiB: freed
    /// assert_eq!((pool.len(), pool.pooled_bytes()), (2, 2048));
    /// ```
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_pooled_bytes = bytes;
        self
    }

    /// Gives a buffer back: it is cleared, shrunk to `buffer_capacity` if its capacity exceeds
    /// `max_keep_capacity`, and kept unless the pool already holds `max_pooled` buffers (then it
    /// is dropped).
    ///
    /// Called by the loop thread that owns the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::{Buffer, BufferPool};
    ///
    /// let mut pool = BufferPool::new(1024, 8, 8192);
    /// let mut big = Buffer::with_capacity(1 << 20);
    /// big.extend_from_slice(b"one huge message");
    /// pool.put(big);
    /// assert_eq!(pool.len(), 1);
    /// assert_eq!(pool.pooled_bytes(), 1024); // shrunk back
    /// ```
    pub fn put(&mut self, mut buf: Buffer) {
        if self.free.len() >= self.max_pooled {
            return;
        }
        buf.clear();
        if buf.capacity() > self.max_keep_capacity {
            buf.shrink_to(self.buffer_capacity);
        }
        if self.pooled_bytes + buf.capacity() > self.max_pooled_bytes {
            return;
        }
        self.pooled_bytes += buf.capacity();
        self.free.push(buf);
    }

    /// Returns the number of pooled buffers.
    ///
    /// Called by the loop thread that owns the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::BufferPool;
    ///
    /// let mut pool = BufferPool::default();
    /// let (a, b) = (pool.get(), pool.get());
    /// pool.put(a);
    /// pool.put(b);
    /// assert_eq!(pool.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.free.len()
    }

    /// Returns `true` if no buffer is pooled.
    ///
    /// Called by the loop thread that owns the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::BufferPool;
    ///
    /// let mut pool = BufferPool::default();
    /// assert!(pool.is_empty());
    /// let buf = pool.get();
    /// pool.put(buf);
    /// assert!(!pool.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.free.is_empty()
    }

    /// Returns the sum of the capacities of the pooled buffers (without their
    /// [`Buffer::PREPEND`] areas).
    ///
    /// Called by the loop thread that owns the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::BufferPool;
    ///
    /// let mut pool = BufferPool::new(100, 8, 1000);
    /// let (a, b) = (pool.get(), pool.get());
    /// pool.put(a);
    /// pool.put(b);
    /// assert_eq!(pool.pooled_bytes(), 200);
    /// ```
    pub fn pooled_bytes(&self) -> usize {
        self.pooled_bytes
    }

    /// Returns how many buffers [`get`](Self::get) has allocated because the pool was empty.
    ///
    /// Called by the loop thread that owns the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::BufferPool;
    ///
    /// let mut pool = BufferPool::default();
    /// for _ in 0..1000 {
    ///     let mut buf = pool.get();
    ///     buf.extend_from_slice(b"per-message work");
    ///     pool.put(buf);
    /// }
    /// assert_eq!(pool.allocated(), 1); // no allocation per message
    /// ```
    pub fn allocated(&self) -> u64 {
        self.allocated
    }

    /// Returns how many buffers [`get`](Self::get) has handed out from the pool.
    ///
    /// Called by the loop thread that owns the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::BufferPool;
    ///
    /// let mut pool = BufferPool::default();
    /// let buf = pool.get();
    /// pool.put(buf);
    /// let _buf = pool.get();
    /// assert_eq!(pool.reused(), 1);
    /// ```
    pub fn reused(&self) -> u64 {
        self.reused
    }
}

impl Default for BufferPool {
    /// A pool of 4096-byte buffers, keeping at most 1024 of them and shrinking any that grew
    /// beyond 256 KiB: `BufferPool::new(4096, 1024, 256 * 1024)`.
    fn default() -> Self {
        Self::new(DEFAULT_BUFFER_CAPACITY, DEFAULT_MAX_POOLED, DEFAULT_MAX_KEEP_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::buffer::PREPEND;

    /// Address of the start of the buffer's storage (its prepend area is at the front).
    fn base(buf: &mut Buffer) -> *const u8 {
        let off = buf.prependable_len() + buf.len();
        buf.writable_mut().as_ptr().wrapping_sub(off)
    }

    #[test]
    fn default_settings() {
        let mut pool = BufferPool::default();
        assert!(pool.is_empty());
        assert_eq!(pool.len(), 0);
        assert_eq!(pool.pooled_bytes(), 0);
        assert_eq!((pool.allocated(), pool.reused()), (0, 0));
        let buf = pool.get();
        assert_eq!(buf.capacity(), 4096);
        assert_eq!(pool.max_pooled, 1024);
        assert_eq!(pool.max_keep_capacity, 256 * 1024);
        assert!(format!("{pool:?}").contains("BufferPool"));
    }

    #[test]
    fn get_allocates_when_empty() {
        let mut pool = BufferPool::new(100, 4, 1000);
        let a = pool.get();
        let b = pool.get();
        assert_eq!(a.capacity(), 100);
        assert_eq!(b.capacity(), 100);
        assert!(a.is_empty() && b.is_empty());
        assert_eq!(pool.allocated(), 2);
        assert_eq!(pool.reused(), 0);
    }

    #[test]
    fn reuse_returns_same_allocation_cleared() {
        let mut pool = BufferPool::new(100, 4, 1000);
        let mut buf = pool.get();
        buf.extend_from_slice(b"hello");
        buf.advance(2);
        let ptr = base(&mut buf);
        pool.put(buf);
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.pooled_bytes(), 100);
        let mut again = pool.get();
        assert_eq!(base(&mut again), ptr, "same allocation");
        assert!(again.is_empty());
        assert_eq!(again.prependable_len(), PREPEND);
        assert_eq!(again.writable_len(), 100);
        again.check_invariants();
        assert_eq!((pool.allocated(), pool.reused()), (1, 1));
        assert!(pool.is_empty());
        assert_eq!(pool.pooled_bytes(), 0);
    }

    #[test]
    fn no_allocation_per_message() {
        let mut pool = BufferPool::new(64, 8, 1024);
        for i in 0..10_000u32 {
            let mut a = pool.get();
            let mut b = pool.get();
            a.extend_from_slice(&i.to_be_bytes());
            b.extend_from_slice(a.as_slice());
            pool.put(b);
            pool.put(a);
        }
        assert_eq!(pool.allocated(), 2);
        assert_eq!(pool.reused(), 2 * 10_000 - 2);
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn caps_the_count() {
        let mut pool = BufferPool::new(10, 3, 100);
        let bufs: Vec<Buffer> = (0..5).map(|_| pool.get()).collect();
        for b in bufs {
            pool.put(b);
        }
        assert_eq!(pool.len(), 3);
        assert_eq!(pool.pooled_bytes(), 30);
        for _ in 0..3 {
            pool.get();
        }
        assert!(pool.is_empty());
        pool.get();
        assert_eq!(pool.allocated(), 6);
    }

    #[test]
    fn zero_max_pooled_never_keeps() {
        let mut pool = BufferPool::new(10, 0, 100);
        let b = pool.get();
        pool.put(b);
        assert!(pool.is_empty());
        assert_eq!(pool.pooled_bytes(), 0);
    }

    #[test]
    fn shrinks_oversized_buffers() {
        let mut pool = BufferPool::new(64, 4, 1000);
        let mut big = pool.get();
        big.extend_from_slice(&[1; 5000]);
        assert!(big.capacity() > 1000);
        pool.put(big);
        assert_eq!(pool.pooled_bytes(), 64);
        let b = pool.get();
        assert_eq!(b.capacity(), 64);
        assert!(b.is_empty());
        b.check_invariants();
    }

    #[test]
    fn keeps_grown_buffers_within_limit() {
        let mut pool = BufferPool::new(64, 4, 1000);
        let mut b = pool.get();
        b.extend_from_slice(&[1; 500]);
        let cap = b.capacity();
        assert!(cap > 64 && cap <= 1000);
        let ptr = base(&mut b);
        pool.put(b);
        assert_eq!(pool.pooled_bytes(), cap);
        let mut b = pool.get();
        assert_eq!(b.capacity(), cap, "not shrunk");
        assert_eq!(base(&mut b), ptr);
    }

    #[test]
    fn foreign_buffers_are_accepted() {
        let mut pool = BufferPool::new(64, 4, 1000);
        let mut small = Buffer::with_capacity(8);
        small.extend_from_slice(b"abc");
        small.prepend(b"12");
        pool.put(small);
        assert_eq!(pool.pooled_bytes(), 8);
        let b = pool.get();
        assert!(b.is_empty());
        assert_eq!(b.prependable_len(), PREPEND);
        b.check_invariants();
        assert_eq!(pool.allocated(), 0);
    }

    #[test]
    fn keep_limit_below_buffer_capacity_is_raised() {
        let mut pool = BufferPool::new(128, 4, 16);
        let b = pool.get();
        pool.put(b);
        assert_eq!(pool.pooled_bytes(), 128);
    }
}
