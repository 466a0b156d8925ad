//! The global path: `LoggerBuilder::init` installs the logger behind `log`'s macros.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use kingpin::logger::{InitError, LogLine, LoggerBuilder};
use log::LevelFilter;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn init_installs_the_global_logger() {
    let out = Capture::default();
    let guard = LoggerBuilder::new().env_var(None).level(LevelFilter::Info).writer(out.clone()).init().unwrap();
    assert_eq!(log::max_level(), LevelFilter::Info);
    log::info!("hello {}", "world");
    log::debug!("filtered");
    guard.set_level(LevelFilter::Debug);
    assert_eq!(log::max_level(), LevelFilter::Debug);
    log::debug!(target: "custom", "now visible");
    std::thread::spawn(|| log::warn!("from a thread that exits")).join().unwrap();
    let again = LoggerBuilder::new().writer(io::sink()).init();
    assert!(matches!(again, Err(InitError::AlreadySet)));
    drop(guard);
    log::error!("after the guard");
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<_> = text.lines().map(|l| LogLine::parse(l).unwrap()).collect();
    let msgs: Vec<_> = lines.iter().map(|l| (l.target, l.message)).collect();
    let me = module_path!();
    assert_eq!(msgs[0], (me, "hello world"));
    assert!(msgs.contains(&("custom", "now visible")));
    assert!(msgs.contains(&(me, "from a thread that exits")));
    assert_eq!(msgs.last().unwrap(), &(me, "after the guard"));
    assert_eq!(msgs.len(), 4);
}

/// A level variable holding something that is not a level fails `init` with a message naming
/// the value and the valid ones, and installs nothing.
#[test]
fn init_rejects_an_unknown_level() {
    std::env::set_var("KINGPIN_LOG_GLOBAL_TEST", "verbose");
    let err = LoggerBuilder::new().env_var(Some("KINGPIN_LOG_GLOBAL_TEST")).writer(io::sink()).init().unwrap_err();
    assert!(matches!(&err, InitError::BadLevel { value, .. } if value == "verbose"), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("\"verbose\"") && msg.contains("off, error, warn, info, debug, trace"), "{msg}");
}
