//! The file checksum: XXH3-64, streamed in bounded chunks (memory stays flat whatever the file
//! size), and the key that names one version of a file. Who hashes what, and when, is
//! [`crate::hashes`]'s business.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use xxhash_rust::xxh3::Xxh3;

/// Bytes read per step while hashing: memory stays flat whatever the file size.
pub const HASH_CHUNK: usize = 1 << 20;

/// XXH3-64 of everything `reader` yields, read in [`HASH_CHUNK`] steps.
///
/// # Errors
/// A read error.
pub fn hash_reader(mut reader: impl Read) -> io::Result<u64> {
    let mut hasher = Xxh3::new();
    let mut buf = vec![0; HASH_CHUNK];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(hasher.digest()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// XXH3-64 of the file at `path`.
///
/// # Errors
/// When the file cannot be opened or read.
pub fn hash_path(path: &Path) -> io::Result<u64> {
    hash_reader(File::open(path)?)
}

/// XXH3-64 of the first `len` bytes of `file`, read with `pread` (the file position is
/// untouched, so the same descriptor may be streamed meanwhile). `stop` is asked before each
/// [`HASH_CHUNK`]: once it says `true`, hashing stops and the result is `Ok(None)`.
///
/// # Errors
/// A read error, or the file being shorter than `len`.
pub fn hash_file_range(file: &File, len: u64, stop: impl Fn() -> bool) -> io::Result<Option<u64>> {
    let mut hasher = Xxh3::new();
    let mut buf = vec![0; usize::try_from(len).map_or(HASH_CHUNK, |len| len.min(HASH_CHUNK))];
    let mut at = 0;
    while at < len {
        if stop() {
            return Ok(None);
        }
        let want = (len - at).min(HASH_CHUNK as u64) as usize;
        match file.read_at(&mut buf[..want], at) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while hashing")),
            Ok(n) => {
                hasher.update(&buf[..n]);
                at += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(hasher.digest()))
}

/// What identifies one version of a file: the inode (device and number, so two names of one
/// file share a checksum) with its size, modification and change times (a file written in
/// place changes them; the change time cannot be set back by a user).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileKey {
    dev: u64,
    ino: u64,
    /// The file's size in bytes.
    pub size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileKey {
    /// The key of the file whose metadata (from `fstat` on the open file) is `meta`.
    pub fn new(meta: &Metadata) -> Self {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn range_hash_matches_stream_hash() {
        let mut f = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..3 * HASH_CHUNK + 7).map(|i| (i * 31 % 251) as u8).collect();
        f.write_all(&data).unwrap();
        let whole = xxhash_rust::xxh3::xxh3_64(&data);
        let go = || false;
        assert_eq!(hash_file_range(&f, data.len() as u64, go).unwrap(), Some(whole));
        assert_eq!(hash_reader(&data[..]).unwrap(), whole);
        assert!(hash_file_range(&f, data.len() as u64 + 1, go).is_err());
        assert_eq!(hash_file_range(&f, 0, go).unwrap(), Some(xxhash_rust::xxh3::xxh3_64(b"")));
        assert_eq!(hash_file_range(&f, data.len() as u64, || true).unwrap(), None);
    }
}
