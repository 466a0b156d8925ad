//! Where the backend thread writes: stderr, a file (optionally rotated by size) or any `Write`.
//!
//! Only the backend thread writes here while the logger runs (after shutdown, callers write
//! synchronously under the same lock). A sink error or a panicking `Write` never escapes: it is
//! turned into an `io::Error` that the backend counts and reports.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Where the lines go; chosen with [`LoggerBuilder`](super::LoggerBuilder).
pub(crate) enum SinkTarget {
    /// The process's standard error.
    Stderr,
    /// A file opened in append mode.
    File(PathBuf),
    /// Any writer the caller supplies.
    Writer(Box<dyn Write + Send>),
}

/// Size-based rotation of a file sink: `path` → `path.1` → … → `path.keep`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rotation {
    /// A file is rotated before it would grow past this many bytes.
    pub(crate) max_bytes: u64,
    /// How many rotated files are kept beside the live one.
    pub(crate) keep: usize,
}

/// An open sink.
pub(crate) enum Sink {
    /// Standard error.
    Stderr(io::Stderr),
    /// A file, with its rotation policy and current size.
    File { file: File, path: PathBuf, rotation: Option<Rotation>, size: u64 },
    /// A user-supplied writer.
    Writer(Box<dyn Write + Send>),
}

impl Sink {
    /// Opens `target`.
    pub(crate) fn open(target: SinkTarget, rotation: Option<Rotation>) -> io::Result<Sink> {
        Ok(match target {
            SinkTarget::Stderr => Sink::Stderr(io::stderr()),
            SinkTarget::Writer(w) => Sink::Writer(w),
            SinkTarget::File(path) => {
                let file = OpenOptions::new().create(true).append(true).open(&path)?;
                let size = file.metadata()?.len();
                Sink::File { file, path, rotation, size }
            }
        })
    }

    /// True for the stderr sink (its errors cannot be reported on stderr).
    pub(crate) fn is_stderr(&self) -> bool {
        matches!(self, Sink::Stderr(_))
    }

    /// Writes all of `bytes` (whole lines), rotating a file sink as needed.
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        guard(|| match self {
            Sink::Stderr(e) => e.lock().write_all(bytes),
            Sink::Writer(w) => w.write_all(bytes),
            Sink::File { file, path, rotation: None, size } => {
                file.write_all(bytes)?;
                *size += bytes.len() as u64;
                let _ = path;
                Ok(())
            }
            Sink::File { file, path, rotation: Some(rot), size } => write_rotating(file, path, *rot, size, bytes),
        })
    }

    /// Flushes the underlying writer.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        guard(|| match self {
            Sink::Stderr(e) => e.flush(),
            Sink::Writer(w) => w.flush(),
            Sink::File { file, .. } => file.flush(),
        })
    }
}

/// Runs a sink operation, turning a panic of a user `Write` into an error.
fn guard(f: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(io::Error::other("the sink panicked")))
}

/// Writes `bytes` to a rotating file, splitting at line ends so no file passes `max_bytes`
/// unless a single line is longer than that.
fn write_rotating(file: &mut File, path: &Path, rot: Rotation, size: &mut u64, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let room = rot.max_bytes.saturating_sub(*size) as usize;
        let take = if bytes.len() <= room {
            bytes.len()
        } else {
            match bytes[..room].iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None if *size == 0 => bytes.iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| i + 1),
                None => 0,
            }
        };
        if take == 0 {
            *file = rotate(path, rot.keep)?;
            *size = 0;
            continue;
        }
        file.write_all(&bytes[..take])?;
        *size += take as u64;
        bytes = &bytes[take..];
    }
    Ok(())
}

/// Shifts `path.N` to `path.N+1` (dropping the oldest), renames `path` to `path.1` and opens a
/// fresh `path`. With `keep == 0` the old file is simply truncated.
fn rotate(path: &Path, keep: usize) -> io::Result<File> {
    let numbered = |n: usize| {
        let mut s = path.as_os_str().to_owned();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    };
    if keep > 0 {
        let _ = fs::remove_file(numbered(keep));
        for n in (1..keep).rev() {
            let _ = fs::rename(numbered(n), numbered(n + 1));
        }
        fs::rename(path, numbered(1))?;
    }
    OpenOptions::new().create(true).write(true).truncate(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_at_line_ends_and_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let rot = Rotation { max_bytes: 20, keep: 2 };
        let mut sink = Sink::open(SinkTarget::File(path.clone()), Some(rot)).unwrap();
        for i in 0..10 {
            sink.write_all(format!("line {i:03}\n").as_bytes()).unwrap(); // 9 bytes a line
        }
        sink.write_all(b"a\nb\n").unwrap();
        sink.flush().unwrap();
        let read = |p: &Path| fs::read_to_string(p).unwrap();
        assert_eq!(read(&path), "b\n");
        let mut p1 = path.clone().into_os_string();
        p1.push(".1");
        assert_eq!(read(Path::new(&p1)), "line 008\nline 009\na\n");
        let mut p3 = path.clone().into_os_string();
        p3.push(".3");
        assert!(!Path::new(&p3).exists());
        let mut long = vec![b'x'; 50];
        long.push(b'\n');
        sink.write_all(&long).unwrap();
        sink.flush().unwrap();
        assert_eq!(read(&path).len(), 51);
    }

    #[test]
    fn a_panicking_writer_is_an_error() {
        struct Boom;
        impl Write for Boom {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                panic!("boom")
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut sink = Sink::open(SinkTarget::Writer(Box::new(Boom)), None).unwrap();
        assert!(sink.write_all(b"x\n").is_err());
    }
}
