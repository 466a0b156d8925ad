//! The load generator: one thread, pinned to CPU 0, the same for every server. Ping-pong over
//! many connections, connection churn, and many idle connections each echoed once.

use std::io::{self, Read, Write};
use std::net::TcpStream as StdStream;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::measure::{nanos, sample, Sample, Window};
use crate::server::Server;

/// Closes `stream` with a reset (SO_LINGER 0) instead of a FIN, after a measurement, so that
/// tens of thousands of client ports do not sit in TIME_WAIT and slow down later `connect`s.
pub fn close_with_reset(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setsockopt reads a valid `linger` of the given size; the fd is open (we own it).
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(stream);
}

/// Opens `n` connections in batches of 100, each batch waiting until the server holds it (its
/// fd count), so no listen queue overflows (an overflow costs a 1 s SYN retransmission).
pub fn open_conns(server: &Server, n: usize) -> io::Result<Vec<TcpStream>> {
    let base = server.fds();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        // Below every server's listen backlog (tokio and mio listen with 128, as std does).
        let batch = (n - out.len()).min(100);
        for _ in 0..batch {
            let s = StdStream::connect_timeout(&server.addr, Duration::from_secs(5))?;
            s.set_nodelay(true)?;
            s.set_nonblocking(true)?;
            out.push(TcpStream::from_std(s));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.fds() < base + out.len() {
            if Instant::now() > deadline {
                return Err(io::Error::other(format!("server accepted only {} of {}", server.fds() - base, out.len())));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(out)
}

/// One ping-pong connection in the generator.
struct Pinger {
    stream: TcpStream,
    written: usize,
    received: usize,
    sent_at: Instant,
    active: bool,
}

impl Pinger {
    /// Writes what is left of the message; `Err` on a broken connection.
    fn write(&mut self, msg: &[u8]) -> io::Result<()> {
        while self.written < msg.len() {
            match self.stream.write(&msg[self.written..]) {
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn begin(&mut self, msg: &[u8], now: Instant) -> io::Result<()> {
        self.written = 0;
        self.received = 0;
        self.sent_at = now;
        self.active = true;
        self.write(msg)
    }
}

/// Ping-pong: every connection sends `size` bytes, waits for them back, and sends again.
/// Measures `window` after `warmup`.
pub fn ping_pong(server: &Server, conns: usize, size: usize, warmup: Duration, window: Duration) -> io::Result<Sample> {
    let streams = open_conns(server, conns)?;
    let mut poll = Poll::new()?;
    let msg = vec![b'k'; size];
    let mut rbuf = vec![0u8; 64 * 1024];
    let now = Instant::now();
    let mut pingers = Vec::with_capacity(conns);
    for (i, mut stream) in streams.into_iter().enumerate() {
        poll.registry().register(&mut stream, Token(i), Interest::READABLE | Interest::WRITABLE)?;
        pingers.push(Pinger { stream, written: 0, received: 0, sent_at: now, active: false });
    }
    for p in &mut pingers {
        p.begin(&msg, now)?;
    }
    let mut w = Window::new(now, warmup, window);
    let hard_stop = w.hard_stop();
    let mut events = Events::with_capacity(1024);
    let mut count = 0u64;
    let mut lat: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut in_flight = conns;
    loop {
        poll.poll(&mut events, Some(Duration::from_millis(5)))?;
        let mut now = Instant::now();
        w.tick(now, server);
        for ev in events.iter() {
            let p = &mut pingers[ev.token().0];
            if !p.active {
                continue;
            }
            if ev.is_writable() {
                p.write(&msg)?;
            }
            loop {
                match p.stream.read(&mut rbuf) {
                    Ok(0) => return Err(io::Error::other("server closed a connection")),
                    Ok(n) => {
                        p.received += n;
                        if p.received >= size {
                            now = Instant::now();
                            if w.counting() {
                                lat.push(nanos(now - p.sent_at));
                                count += 1;
                            }
                            if w.done {
                                p.active = false;
                                in_flight -= 1;
                            } else {
                                p.begin(&msg, now)?;
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if w.done && (in_flight == 0 || now >= hard_stop) {
            break;
        }
    }
    pingers.into_iter().for_each(|p| close_with_reset(p.stream));
    Ok(sample(count, w.elapsed, w.cpu_used, lat))
}

/// Connection churn: `concurrency` slots, each looping connect → send 16 B → read 16 B →
/// close. A message is one whole cycle.
pub fn churn(server: &Server, concurrency: usize, warmup: Duration, window: Duration) -> io::Result<Sample> {
    const MSG: &[u8; 16] = b"churn-0123456789";
    struct Slot {
        stream: Option<TcpStream>,
        started: Instant,
        sent: bool,
        received: usize,
    }
    let mut poll = Poll::new()?;
    let connect = |poll: &Poll, i: usize, now: Instant| -> io::Result<Slot> {
        let mut s = TcpStream::connect(server.addr)?;
        poll.registry().register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)?;
        Ok(Slot { stream: Some(s), started: now, sent: false, received: 0 })
    };
    let now = Instant::now();
    let mut slots = (0..concurrency).map(|i| connect(&poll, i, now)).collect::<io::Result<Vec<_>>>()?;
    let mut w = Window::new(now, warmup, window);
    let hard_stop = w.hard_stop();
    let mut events = Events::with_capacity(1024);
    let (mut count, mut errors) = (0u64, 0u64);
    let mut lat = Vec::with_capacity(1 << 18);
    let mut rbuf = [0u8; 64];
    let mut live = concurrency;
    while live > 0 {
        poll.poll(&mut events, Some(Duration::from_millis(5)))?;
        let now = Instant::now();
        w.tick(now, server);
        if now >= hard_stop {
            break;
        }
        for ev in events.iter() {
            let i = ev.token().0;
            let slot = &mut slots[i];
            let Some(stream) = slot.stream.as_mut() else { continue };
            let mut failed = ev.is_error();
            if !failed && !slot.sent && ev.is_writable() {
                match stream.peer_addr() {
                    Ok(_) => match stream.write(MSG) {
                        Ok(16) => slot.sent = true,
                        Ok(_) => failed = true,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => failed = true,
                    },
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                    Err(_) => failed = true,
                }
            }
            let mut finished = false;
            if !failed && slot.sent {
                loop {
                    match stream.read(&mut rbuf) {
                        Ok(0) => {
                            failed = true;
                            break;
                        }
                        Ok(n) => {
                            slot.received += n;
                            if slot.received >= MSG.len() {
                                finished = true;
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    }
                }
            }
            if failed || finished {
                let mut s = slot.stream.take().expect("checked");
                poll.registry().deregister(&mut s)?;
                drop(s); // close
                let now = Instant::now();
                if finished && w.counting() {
                    count += 1;
                    lat.push(nanos(now - slot.started));
                }
                if failed {
                    errors += 1;
                    if errors > 1000 {
                        return Err(io::Error::other("churn: over 1000 failed connections"));
                    }
                }
                if w.done {
                    live -= 1;
                } else {
                    *slot = connect(&poll, i, now)?;
                }
            }
        }
    }
    if errors > 0 {
        eprintln!("churn: {errors} connections failed");
    }
    Ok(sample(count, w.elapsed, w.cpu_used, lat))
}

/// Holds `n` idle connections (server RSS growth per connection), then echoes 16 B once on
/// each, all at once.
pub fn idle(server: &Server, n: usize) -> io::Result<Sample> {
    // One connection first, so the server has served one before the baseline.
    ping_pong(server, 1, 16, Duration::ZERO, Duration::from_millis(20))?;
    std::thread::sleep(Duration::from_millis(50));
    let rss0 = server.rss_kib();
    let t_open = Instant::now();
    let mut streams = open_conns(server, n)?;
    let t_open = t_open.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let rss1 = server.rss_kib();
    let mut poll = Poll::new()?;
    for (i, s) in streams.iter_mut().enumerate() {
        poll.registry().register(s, Token(i), Interest::READABLE)?;
    }
    let msg = [b'i'; 16];
    let mut sent_at = Vec::with_capacity(n);
    let mut received = vec![0usize; n];
    let cpu0 = server.cpu();
    let t0 = Instant::now();
    for s in &mut streams {
        if s.write(&msg)? != msg.len() {
            return Err(io::Error::other("idle: short write"));
        }
        sent_at.push(Instant::now());
    }
    let mut left = n;
    let mut lat = Vec::with_capacity(n);
    let mut events = Events::with_capacity(1024);
    let mut rbuf = [0u8; 64];
    let deadline = Instant::now() + Duration::from_secs(30);
    while left > 0 {
        if Instant::now() > deadline {
            return Err(io::Error::other(format!("idle: {left} of {n} echoes missing")));
        }
        poll.poll(&mut events, Some(Duration::from_millis(10)))?;
        for ev in events.iter() {
            let i = ev.token().0;
            loop {
                match streams[i].read(&mut rbuf) {
                    Ok(0) => return Err(io::Error::other("idle: server closed a connection")),
                    Ok(k) => {
                        received[i] += k;
                        if received[i] == msg.len() {
                            lat.push(nanos(sent_at[i].elapsed()));
                            left -= 1;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    let elapsed = t0.elapsed();
    let cpu = server.cpu() - cpu0;
    std::thread::sleep(Duration::from_millis(100));
    let rss2 = server.rss_kib();
    let t_close = Instant::now();
    streams.into_iter().for_each(close_with_reset);
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        eprintln!("idle: open {t_open:?}, echo {elapsed:?}, close {:?}", t_close.elapsed());
    }
    let mut s = sample(n as u64, elapsed, cpu, lat);
    s.rss_idle = Some(rss1.saturating_sub(rss0) as f64 * 1024.0 / n as f64);
    s.rss_after = Some(rss2.saturating_sub(rss0) as f64 * 1024.0 / n as f64);
    Ok(s)
}
