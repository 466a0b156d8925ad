//! The bulk shape: connections on threads of the harness (pinned to CPU 0), each writing
//! 16 KiB and reading the 16 KiB echo back, over TLS; server CPU per MiB echoed.

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::process::Server;
use crate::servers;

/// A record's worth of plaintext per write.
const CHUNK: usize = 16 * 1024;

/// What one bulk run gave.
#[derive(Clone, Copy, Debug, Default)]
pub struct BulkSample {
    pub mib_per_s: f64,
    pub cpu_us_per_mib: f64,
}

impl fmt::Display for BulkSample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>9.1} MiB/s  {:>8.1} µs CPU/MiB", self.mib_per_s, self.cpu_us_per_mib)
    }
}

/// `conns` echo connections for a warm-up second and then `window`.
pub fn measure(server: &Server, pem: &str, conns: usize, window: Duration) -> io::Result<BulkSample> {
    let config = servers::client_config(pem)?;
    let echoed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for i in 0..conns {
        let mut s = servers::connect(server.addr, &config)?;
        let (echoed, stop) = (echoed.clone(), stop.clone());
        workers.push(std::thread::spawn(move || -> io::Result<()> {
            let data: Vec<u8> = (0..CHUNK).map(|b| (b * 31 + i) as u8).collect();
            let mut back = vec![0; CHUNK];
            while !stop.load(Relaxed) {
                s.write_all(&data)?;
                s.read_exact(&mut back)?;
                if back != data {
                    return Err(io::Error::other("the echo differs from what was sent"));
                }
                echoed.fetch_add(CHUNK as u64, Relaxed);
            }
            Ok(())
        }));
    }
    std::thread::sleep(window.min(Duration::from_secs(1)));
    let (cpu0, bytes0, t0) = (server.cpu(), echoed.load(Relaxed), Instant::now());
    std::thread::sleep(window);
    let (cpu, bytes, elapsed) = (server.cpu() - cpu0, echoed.load(Relaxed) - bytes0, t0.elapsed());
    stop.store(true, Relaxed);
    for w in workers {
        w.join().map_err(|_| io::Error::other("a bulk client panicked"))??;
    }
    let mib = bytes as f64 / (1 << 20) as f64;
    Ok(BulkSample { mib_per_s: mib / elapsed.as_secs_f64(), cpu_us_per_mib: cpu.as_secs_f64() * 1e6 / mib.max(1e-9) })
}
