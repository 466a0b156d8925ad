//! The stress client: many connections on an `EpollTPClient`, paired by the server, each
//! playing random legal moves (chosen with `rules.rs` on its own copy of the board) until the
//! game has `moves` plies, then resigning. Every reply is checked: an `ERR` or `BYE`, a relayed
//! move that is illegal, a `TURN`, `CHECK` or `END` that the board does not bear out, or a
//! connection that closes before its `END` is an error. Each connection says `HELLO` as its
//! target's first message. Beside the games, `--flooders` runs the hostile
//! connections of `flood.rs`. With `--tls` every connection, the flooders' too, speaks TLS
//! ([`TlsClient`], shared with `play`).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kingpin::{ClientConfig, CloseReason, Conn, ConnectFailure, EpollTPClient, IoHandler, LinesCodec, Target};
use parking_lot::Mutex;

use crate::board::{Board, Move, Side};
use crate::cli::describe;
use crate::flood::{Flood, FloodReport};
use crate::protocol::{EndReason, Reply, Request, MAX_LINE};
use crate::rules::{check_move, in_check, legal_moves, status, Status};
use crate::START_SERVER;

/// What to run.
#[derive(Clone, Debug)]
pub struct StressOptions {
    /// The server.
    pub addr: SocketAddr,
    /// Connections in all (even: they play in pairs).
    pub connections: usize,
    /// Plies per game; then the side to move resigns.
    pub moves: u32,
    /// Client IO threads.
    pub threads: usize,
    /// Longest the whole run may take.
    pub timeout: Duration,
    /// Extra connections that flood `MOVE` lines without ever saying `HELLO` (so they are
    /// never paired with a player), and connect again each time the server closes them: a
    /// hostile load beside the measured games (see `flood.rs`).
    pub flooders: usize,
    /// Speak TLS, trusting and expecting what this says (`None`: plain TCP).
    pub tls: Option<TlsClient>,
}

/// The clients' TLS: the roots they trust, and the name the server's certificate must be
/// valid for (checked when made).
#[derive(Clone, Debug)]
pub struct TlsClient {
    pub config: Arc<rustls::ClientConfig>,
    pub name: rustls::pki_types::ServerName<'static>,
}

impl TlsClient {
    /// Settings that trust what `config` trusts, for a server that must prove it is `name`.
    ///
    /// # Errors
    /// `name` is neither a host name nor an IP address.
    pub fn new(config: Arc<rustls::ClientConfig>, name: &str) -> Result<TlsClient, String> {
        let name = rustls::pki_types::ServerName::try_from(name.to_owned())
            .map_err(|_| format!("--tls-name {name:?} is neither a host name nor an IP address"))?;
        Ok(TlsClient { config, name })
    }

    /// A session for one blocking connection (`play`, the flooders).
    ///
    /// # Errors
    /// When rustls cannot make one (its config allows no protocol version).
    pub fn session(&self) -> io::Result<rustls::ClientConnection> {
        rustls::ClientConnection::new(self.config.clone(), self.name.clone()).map_err(io::Error::other)
    }

    /// The name as [`Target::tls`] takes it.
    fn name_text(&self) -> String {
        self.name.to_str().into_owned()
    }
}

/// What to check when a TLS handshake failed with `why` (rustls's words): the usual slips.
pub fn tls_hint(why: &str) -> &'static str {
    if why.contains("UnknownIssuer") || why.contains("BadSignature") {
        " (the server's certificate is not the one in --ca-file, nor signed by it)"
    } else if why.contains("not valid for name") || why.contains("NotValidForName") {
        " (give the name the certificate is valid for with --tls-name)"
    } else if why.contains("corrupt message") || why.contains("InvalidContentType") || why.contains("MessageTooLarge") {
        " (does the server speak TLS?)"
    } else {
        ""
    }
}

/// What a run measured.
#[derive(Debug)]
pub struct StressReport {
    pub connections: usize,
    pub connected: u64,
    pub connect_time: Duration,
    pub games_completed: u64,
    pub moves: u64,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub errors: u64,
    /// Players put back in the queue because their opponent left before the first move
    /// (never happens among stress players; counted, not an error).
    pub requeued: u64,
    /// The first few errors, for the report.
    pub samples: Vec<String>,
    /// What the flooders did, if there were any.
    pub flood: Option<FloodReport>,
}

impl fmt::Display for StressReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        writeln!(
            f,
            "connections      {} ({} connected in {:.2} s)",
            self.connections,
            self.connected,
            self.connect_time.as_secs_f64()
        )?;
        writeln!(f, "games completed  {}", self.games_completed)?;
        writeln!(
            f,
            "moves            {} in {secs:.2} s = {:.0} moves/s",
            self.moves,
            self.moves as f64 / secs.max(1e-9)
        )?;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        writeln!(
            f,
            "latency          p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (MOVE sent -> OK read)",
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        )?;
        if self.requeued > 0 {
            writeln!(f, "requeued         {}", self.requeued)?;
        }
        if let Some(flood) = &self.flood {
            writeln!(f, "{flood}")?;
        }
        write!(f, "errors           {}", self.errors)?;
        for s in &self.samples {
            write!(f, "\n  {s}")?;
        }
        Ok(())
    }
}

/// Counters shared by the IO threads.
struct Tally {
    plies: u32,
    connections: u64,
    started: Instant,
    connected: AtomicU64,
    all_connected: Mutex<Option<Duration>>,
    games: AtomicU64,
    moves: AtomicU64,
    errors: AtomicU64,
    requeued: AtomicU64,
    latencies: Mutex<Vec<u32>>,
    samples: Mutex<Vec<String>>,
    /// The first connect failure: what to say when no connection at all could be made, and
    /// whether it was the TLS handshake that failed.
    first_failure: Mutex<Option<(io::ErrorKind, String, bool)>>,
    seeds: AtomicU64,
}

impl Tally {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut samples = self.samples.lock();
        if samples.len() < 10 {
            samples.push(what);
        }
    }
}

/// One connection's view of its game.
#[derive(Default)]
struct Seat {
    board: Option<Board>,
    side: Option<Side>,
    pending: Option<(Move, Instant)>,
    plies: u32,
    ended: bool,
    latencies: Vec<u32>,
}

/// The stress client's handler, one per IO thread.
struct Player {
    tally: Arc<Tally>,
    rng: u64,
    /// Cuts the server's lines; one over [`MAX_LINE`] closes the connection.
    lines: LinesCodec,
}

impl Player {
    fn random(&mut self, n: usize) -> usize {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % n as u64) as usize
    }

    /// Our turn: a random legal move, or `RESIGN` once the game has its plies.
    fn play(&mut self, seat: &mut Seat, board: &Board, out: &mut String) {
        if seat.plies >= self.tally.plies {
            *out += &format!("{}\n", Request::Resign);
            return;
        }
        let moves = legal_moves(board);
        if !moves.is_empty() {
            let mv = moves[self.random(moves.len())];
            seat.pending = Some((mv, Instant::now()));
            *out += &format!("{}\n", Request::Move(mv));
        }
    }

    /// Checks one server line against the seat's board and answers it into `out`.
    fn line(&mut self, seat: &mut Seat, text: &str, out: &mut String) -> Result<(), String> {
        let reply = Reply::parse(text).ok_or_else(|| format!("unexpected line {text:?}"))?;
        let mut board = seat.board.take().unwrap_or_else(Board::initial);
        let result = self.reply(seat, &mut board, reply, out);
        seat.board = Some(board);
        result
    }

    fn reply(&mut self, seat: &mut Seat, board: &mut Board, reply: Reply, out: &mut String) -> Result<(), String> {
        match reply {
            Reply::Welcome | Reply::Wait => {}
            Reply::Requeue(_) => {
                if seat.plies > 0 || seat.side.is_none() {
                    return Err(format!("REQUEUE after {} plies", seat.plies));
                }
                self.tally.requeued.fetch_add(1, Ordering::Relaxed);
                *board = Board::initial();
                (seat.side, seat.pending) = (None, None);
            }
            Reply::Turn(side, ms) => {
                if seat.side.is_none() || side != board.turn() || ms == 0 {
                    return Err(format!("TURN {side} {ms} with {} to move", board.turn()));
                }
            }
            Reply::Bye(reason) => return Err(format!("BYE {}", reason.name())),
            Reply::Start(side) => {
                if seat.side.replace(side).is_some() {
                    return Err("a second START".into());
                }
                if side == Side::Red {
                    self.play(seat, board, out);
                }
            }
            Reply::Move(mv) => {
                if seat.side != Some(board.turn().opponent()) {
                    return Err(format!("MOVE {mv} out of turn"));
                }
                check_move(board, mv).map_err(|e| format!("relayed MOVE {mv} is illegal: {e}"))?;
                board.apply(mv);
                seat.plies += 1;
                if status(board) == Status::Ongoing {
                    self.play(seat, board, out);
                }
            }
            Reply::Ok => {
                let (mv, sent) = seat.pending.take().ok_or("OK without a pending move")?;
                seat.latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                board.apply(mv);
                seat.plies += 1;
                self.tally.moves.fetch_add(1, Ordering::Relaxed);
            }
            Reply::Check if in_check(board, board.turn()) => {}
            Reply::Check => return Err(format!("CHECK, but {} is not in check: {board:?}", board.turn())),
            Reply::Err(kind, text) => return Err(format!("ERR {} {text}", kind.name())),
            Reply::End(winner, reason) => {
                seat.ended = true;
                let expected = match reason {
                    EndReason::Resign => seat.plies >= self.tally.plies,
                    EndReason::Checkmate => status(board) == Status::Checkmate && winner != board.turn(),
                    EndReason::Stalemate => status(board) == Status::Stalemate && winner != board.turn(),
                    EndReason::OpponentLeft | EndReason::Time => false,
                };
                if !expected {
                    return Err(format!("unexpected END {winner} {} after {} plies", reason.name(), seat.plies));
                }
                if seat.side == Some(Side::Red) {
                    self.tally.games.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }
}

impl IoHandler for Player {
    type ConnState = Seat;

    fn on_connect(&mut self, _conn: &mut Conn<'_, Seat>) {
        if self.tally.connected.fetch_add(1, Ordering::Relaxed) + 1 == self.tally.connections {
            *self.tally.all_connected.lock() = Some(self.tally.started.elapsed());
        }
    }

    fn on_message(&mut self, conn: &mut Conn<'_, Seat>) {
        let mut out = String::new();
        let mut failed = None;
        // A line over MAX_LINE closes the connection (a protocol error): `on_closed` counts it.
        while let Some(line) = conn.decode(&mut self.lines) {
            let result = match std::str::from_utf8(&line) {
                Ok(text) => self.line(conn.state_mut(), text, &mut out),
                Err(_) => Err("a line that is not UTF-8".into()),
            };
            if let Err(e) = result {
                failed = Some(e);
                break;
            }
        }
        conn.send(out.as_bytes());
        let seat = conn.state_mut();
        if failed.is_some() {
            seat.ended = true; // counted once, below
        }
        let ended = seat.ended;
        if let Some(e) = failed {
            self.tally.error(format!("{}: {e}", conn.local_addr().map_or("?".into(), |a| a.to_string())));
        }
        if ended {
            conn.close();
        }
    }

    fn on_closed(&mut self, conn: &mut Conn<'_, Seat>, reason: &CloseReason) {
        let seat = conn.take_state();
        if !seat.ended {
            self.tally.error(format!("connection closed before END ({reason}) after {} plies", seat.plies));
        }
        self.tally.latencies.lock().extend_from_slice(&seat.latencies);
    }

    fn on_connect_failed(&mut self, target: &Target, failure: &ConnectFailure) {
        let why = describe(&failure.error);
        let tls = target.get_tls_name().is_some() && why.starts_with("TLS handshake");
        self.tally.first_failure.lock().get_or_insert_with(|| (failure.error.kind(), why.clone(), tls));
        let attempts = failure.attempts;
        self.tally
            .error(format!("connect failed: {why} (after {attempts} attempt{})", if attempts == 1 { "" } else { "s" }));
    }
}

/// Runs the stress test and reports. A run that times out reports the connections still
/// open as errors.
///
/// # Errors
/// When the client cannot start, or when no connection at all could be made (no server).
pub fn run(opts: &StressOptions) -> io::Result<StressReport> {
    if opts.connections == 0 || opts.connections % 2 != 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "--connections must be even and positive"));
    }
    let tally = Arc::new(Tally {
        plies: opts.moves,
        connections: opts.connections as u64,
        started: Instant::now(),
        connected: AtomicU64::new(0),
        all_connected: Mutex::new(None),
        games: AtomicU64::new(0),
        moves: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        requeued: AtomicU64::new(0),
        latencies: Mutex::new(Vec::with_capacity(opts.connections * opts.moves as usize / 2)),
        samples: Mutex::new(Vec::new()),
        first_failure: Mutex::new(None),
        seeds: AtomicU64::new(0x9E37_79B9_7F4A_7C15),
    });
    let flood = (opts.flooders > 0).then(|| Flood::start(opts.addr, opts.flooders, opts.tls.clone()));
    let mut config = ClientConfig::default().threads(opts.threads).connect_timeout(Duration::from_secs(30));
    if let Some(tls) = &opts.tls {
        config = config.tls(tls.config.clone());
    }
    let t = tally.clone();
    let client = EpollTPClient::from_fn(config, move || {
        let seed = t.seeds.fetch_add(0x2545_F491_4F6C_DD1D, Ordering::Relaxed) | 1;
        Player { tally: t.clone(), rng: seed, lines: LinesCodec::new(MAX_LINE) }
    })
    .start()?;
    let (host, port) = (opts.addr.ip().to_string(), opts.addr.port());
    let tls_name = opts.tls.as_ref().map(TlsClient::name_text);
    for i in 0..opts.connections {
        let hello = format!("{}\n", Request::Hello);
        let mut target = Target::new(host.clone(), port).first_message(hello).tag(i as u64);
        if let Some(name) = &tls_name {
            target = target.tls(name.clone());
        }
        client.add(target).map_err(io::Error::from)?;
    }
    let finished = client.wait_idle(opts.timeout);
    let elapsed = tally.started.elapsed();
    let flood = flood.map(Flood::stop);
    client.shutdown();
    client.join()?;
    if !finished {
        tally.error(format!("timed out after {:?} with games still running", opts.timeout));
    }
    let connected = tally.connected.load(Ordering::Relaxed);
    if connected == 0 {
        let failure = tally.first_failure.lock().take();
        let (kind, why, tls) = failure.unwrap_or((io::ErrorKind::Other, "no answer".into(), false));
        let text = if tls {
            format!("cannot play with the chess server at {}: {why}{}", opts.addr, tls_hint(&why))
        } else {
            format!("cannot reach the chess server at {}: {why} (start one with: {START_SERVER})", opts.addr)
        };
        return Err(io::Error::new(kind, text));
    }
    let mut lat = std::mem::take(&mut *tally.latencies.lock());
    lat.sort_unstable();
    let pick = |q: f64| lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1))).copied();
    let micros = |v: Option<u32>| Duration::from_micros(v.unwrap_or(0).into());
    let samples = tally.samples.lock().clone();
    let connect_time = tally.all_connected.lock().unwrap_or(elapsed);
    Ok(StressReport {
        connections: opts.connections,
        connected,
        connect_time,
        games_completed: tally.games.load(Ordering::Relaxed),
        moves: tally.moves.load(Ordering::Relaxed),
        elapsed,
        p50: micros(pick(0.50)),
        p99: micros(pick(0.99)),
        max: micros(lat.last().copied()),
        errors: tally.errors.load(Ordering::Relaxed),
        requeued: tally.requeued.load(Ordering::Relaxed),
        samples,
        flood,
    })
}
