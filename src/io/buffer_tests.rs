//! Tests of [`Buffer`]: every operation, reads from sockets, and a model-based proptest.

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
