//! Helpers shared by the spawn crate's integration tests.
#![allow(dead_code, unreachable_pub)]

use multiproc_spawn::{StartMethod, handoff};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

pub const METHODS: [StartMethod; 3] = [
    StartMethod::Fork,
    StartMethod::Spawn,
    StartMethod::ForkServer,
];

/// The write end of a pipe that can travel to a child in its args (through `handoff`), so a
/// child can report to the test while it keeps running.
#[derive(Debug)]
pub struct Reporter(pub OwnedFd);

impl Reporter {
    pub fn pair() -> (std::io::PipeReader, Reporter) {
        let (r, w) = std::io::pipe().unwrap();
        (r, Reporter(OwnedFd::from(w)))
    }

    pub fn say(&self, value: u32) {
        let mut f = std::fs::File::from(self.0.try_clone().unwrap());
        f.write_all(&value.to_le_bytes()).unwrap();
    }
}

/// Reads one value a child said; `None` if every writer closed first (the child died).
pub fn hear(r: &mut std::io::PipeReader) -> Option<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).ok().map(|_| u32::from_le_bytes(b))
}

impl Serialize for Reporter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let index = handoff::send_fd(self.0.as_fd()).map_err(serde::ser::Error::custom)?;
        index.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Reporter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let index = u32::deserialize(d)?;
        handoff::recv_fd(index)
            .map(Reporter)
            .map_err(serde::de::Error::custom)
    }
}

/// Waits up to `timeout` for process `pid` (not necessarily our child) to exit.
pub fn exits_within(pid: u32, timeout: Duration) -> bool {
    // SAFETY: plain system calls on integers and a local pollfd.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0);
        if fd < 0 {
            return true; // already gone and reaped
        }
        let fd = OwnedFd::from_raw_fd(fd as i32);
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        libc::poll(&mut p, 1, timeout.as_millis() as i32) == 1
    }
}

/// Parks the calling process for ever (until a test signals it).
pub fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// The read end of a pipe that can travel to a child in its args: [`Gate::wait`] blocks until
/// the test lets one byte through with [`Opener::open`]. (A byte per waiter, not end-of-file:
/// a Fork child inherits the test's write end, so end-of-file would never come.)
#[derive(Debug)]
pub struct Gate(pub OwnedFd);

/// The write end of a [`Gate`]'s pipe.
#[derive(Debug)]
pub struct Opener(std::io::PipeWriter);

impl Gate {
    pub fn pair() -> (Opener, Gate) {
        let (r, w) = std::io::pipe().unwrap();
        (Opener(w), Gate(OwnedFd::from(r)))
    }

    /// Takes one byte; `false` if every writer closed first.
    pub fn wait(&self) -> bool {
        let mut f = std::fs::File::from(self.0.try_clone().unwrap());
        let mut b = [0u8; 1];
        f.read_exact(&mut b).is_ok()
    }
}

impl Opener {
    /// Lets `n` waiters through.
    pub fn open(&mut self, n: usize) {
        self.0.write_all(&vec![0u8; n]).unwrap();
    }
}

impl Serialize for Gate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let index = handoff::send_fd(self.0.as_fd()).map_err(serde::ser::Error::custom)?;
        index.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Gate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let index = u32::deserialize(d)?;
        handoff::recv_fd(index)
            .map(Gate)
            .map_err(serde::de::Error::custom)
    }
}
