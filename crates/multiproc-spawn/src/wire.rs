//! The bootstrap protocol: length-prefixed frames over a Unix stream socket, with descriptors
//! attached to a frame's first byte (`SCM_RIGHTS`).
//!
//! One socket pair per child. The parent's end carries, in order:
//!
//! | direction | frame | payload | fds |
//! |---|---|---|---|
//! | child → parent | `Hello` (fork-server children only) | child pid (u32) | the child's pidfd |
//! | parent → child | `Bootstrap` | header length (u32), postcard header, argument bytes | handles in the args |
//! | child → parent | `ResultOk` / `ResultPanic` / `StartFailed` | result bytes / panic text / reason | handles in the result |
//! | server → parent | `Status` (fork-server children only) | exit code (i32) | |
//! | server → parent | `ServerError` | reason | |
//!
//! The fork server's control socket carries `Request` frames (daemon flag, with the child's end
//! of a fresh socket pair attached).

use crate::sys;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// The kinds of frame (see the module table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Hello = 1,
    Bootstrap = 2,
    ResultOk = 3,
    ResultPanic = 4,
    StartFailed = 5,
    Status = 6,
    ServerError = 7,
    Request = 8,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Hello,
            2 => Kind::Bootstrap,
            3 => Kind::ResultOk,
            4 => Kind::ResultPanic,
            5 => Kind::StartFailed,
            6 => Kind::Status,
            7 => Kind::ServerError,
            8 => Kind::Request,
            _ => return None,
        })
    }
}

/// Frame header: payload length (u32 LE), kind (u8), descriptor count (u8), two zero bytes.
const HEADER: usize = 8;

/// One received frame.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) kind: Kind,
    pub(crate) payload: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
}

/// Writes one frame; blocks until all of it is in the socket. Descriptors travel with the
/// header. `Err(BrokenPipe)` if the peer is gone.
pub(crate) fn write_frame(
    sock: BorrowedFd<'_>,
    kind: Kind,
    parts: &[&[u8]],
    fds: &[RawFd],
) -> io::Result<()> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let len32 = u32::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame over 4 GiB"))?;
    if fds.len() > sys::MAX_FDS_PER_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "more than 253 handles in one message",
        ));
    }
    let mut head = [0u8; HEADER];
    head[..4].copy_from_slice(&len32.to_le_bytes());
    head[4] = kind as u8;
    head[5] = fds.len() as u8;
    // Small frames go out in one system call; large ones send the header first, then stream.
    if len <= 64 * 1024 {
        let mut buf = Vec::with_capacity(HEADER + len);
        buf.extend_from_slice(&head);
        for p in parts {
            buf.extend_from_slice(p);
        }
        return send_all(sock, &buf, fds);
    }
    send_all(sock, &head, fds)?;
    for p in parts {
        send_all(sock, p, &[])?;
    }
    Ok(())
}

fn send_all(sock: BorrowedFd<'_>, mut data: &[u8], mut fds: &[RawFd]) -> io::Result<()> {
    while !data.is_empty() {
        let n = sys::send_with_fds(sock, data, fds, false)?;
        data = &data[n..];
        fds = &[];
    }
    Ok(())
}

/// Reassembles frames from a stream socket, keeping descriptors in arrival order.
///
/// `buf[start..end]` holds received bytes not yet handed out; `buf` beyond `end` is spare,
/// already-initialised room, so each byte of the buffer is zeroed at most once however many
/// reads a large frame takes.
#[derive(Debug, Default)]
pub(crate) struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    fds: VecDeque<OwnedFd>,
    eof: bool,
}

impl FrameReader {
    /// Whether the peer has closed its end.
    pub(crate) fn eof(&self) -> bool {
        self.eof
    }

    /// Reads what is available (`nonblocking`) or at least something (blocking). Returns
    /// `Ok(false)` when nothing was there (nonblocking) and `Ok(true)` otherwise (EOF included).
    pub(crate) fn fill(&mut self, sock: BorrowedFd<'_>, nonblocking: bool) -> io::Result<bool> {
        if self.eof {
            return Ok(true);
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        // Room for the rest of the current frame, at least 64 KiB.
        let pending = self.end - self.start;
        let frame_len = if pending >= HEADER {
            HEADER
                + u32::from_le_bytes(self.buf[self.start..self.start + 4].try_into().unwrap())
                    as usize
        } else {
            0
        };
        let want = frame_len.saturating_sub(pending).max(64 * 1024);
        if self.start > 0 && self.buf.len() - self.end < want {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < self.end + want {
            self.buf.resize(self.end + want, 0);
        }
        let mut fds = Vec::new();
        let r = sys::recv_with_fds(sock, &mut self.buf[self.end..], &mut fds, nonblocking);
        self.fds.extend(fds);
        match r {
            Ok(0) => {
                self.eof = true;
                Ok(true)
            }
            Ok(n) => {
                self.end += n;
                Ok(true)
            }
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock => Ok(false),
                // A peer that died with unread data in its buffer resets the connection.
                io::ErrorKind::ConnectionReset => {
                    self.eof = true;
                    Ok(true)
                }
                _ => Err(e),
            },
        }
    }

    /// The next complete frame, if one has arrived.
    pub(crate) fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        let avail = &self.buf[self.start..self.end];
        if avail.len() < HEADER {
            return Ok(None);
        }
        let len = u32::from_le_bytes(avail[..4].try_into().unwrap()) as usize;
        if avail.len() < HEADER + len {
            return Ok(None);
        }
        let kind = Kind::from_u8(avail[4])
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown frame kind"))?;
        let nfds = avail[5] as usize;
        if self.fds.len() < nfds {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "frame lost its descriptors",
            ));
        }
        let payload = if len > 1 << 20 && self.start == 0 && self.end == HEADER + len {
            // A big frame that fills the buffer: hand the buffer over instead of copying it.
            let mut whole = std::mem::take(&mut self.buf);
            whole.truncate(self.end);
            whole.drain(..HEADER);
            self.end = 0;
            whole
        } else {
            let p = avail[HEADER..HEADER + len].to_vec();
            self.start += HEADER + len;
            p
        };
        let fds = self.fds.drain(..nfds).collect();
        Ok(Some(Frame { kind, payload, fds }))
    }

    /// Blocks until one whole frame has arrived; `Ok(None)` if the peer closed first.
    pub(crate) fn read_frame(&mut self, sock: BorrowedFd<'_>) -> io::Result<Option<Frame>> {
        self.read_frame_spinning(sock, Duration::ZERO)
    }

    /// Like [`FrameReader::read_frame`], but looks without blocking (yielding the CPU between
    /// looks) for up to `spin` before it sleeps: a reply that comes within microseconds then
    /// costs no wake-up.
    pub(crate) fn read_frame_spinning(
        &mut self,
        sock: BorrowedFd<'_>,
        spin: Duration,
    ) -> io::Result<Option<Frame>> {
        let spin_until = Instant::now() + spin;
        loop {
            if let Some(f) = self.next_frame()? {
                return Ok(Some(f));
            }
            if self.eof {
                return Ok(None);
            }
            let spinning = Instant::now() < spin_until;
            if !self.fill(sock, spinning)? {
                std::thread::yield_now();
            }
        }
    }
}

/// Reads a native-endian u32 or i32 payload.
pub(crate) fn payload_u32(p: &[u8]) -> io::Result<u32> {
    p.get(..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "short frame"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, AsRawFd};

    #[test]
    fn frames_round_trip_with_descriptors_and_never_merge() {
        let (a, b) = sys::socketpair().unwrap();
        let (x, _y) = sys::socketpair().unwrap();
        write_frame(
            a.as_fd(),
            Kind::ResultOk,
            &[b"hello", b" world"],
            &[x.as_raw_fd()],
        )
        .unwrap();
        write_frame(a.as_fd(), Kind::Status, &[&7i32.to_le_bytes()], &[]).unwrap();
        write_frame(a.as_fd(), Kind::ResultPanic, &[], &[]).unwrap();
        drop(a);
        let mut r = FrameReader::default();
        let f = r.read_frame(b.as_fd()).unwrap().unwrap();
        assert_eq!(
            (f.kind, &f.payload[..], f.fds.len()),
            (Kind::ResultOk, &b"hello world"[..], 1)
        );
        let f = r.read_frame(b.as_fd()).unwrap().unwrap();
        assert_eq!(payload_u32(&f.payload).unwrap() as i32, 7);
        let f = r.read_frame(b.as_fd()).unwrap().unwrap();
        assert_eq!((f.kind, f.payload.len()), (Kind::ResultPanic, 0));
        assert!(r.read_frame(b.as_fd()).unwrap().is_none());
    }

    #[test]
    fn a_large_frame_arrives_whole() {
        let (a, b) = sys::socketpair().unwrap();
        let big: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
        let big2 = big.clone();
        let t = std::thread::spawn(move || {
            write_frame(a.as_fd(), Kind::ResultOk, &[&big2], &[]).unwrap()
        });
        let mut r = FrameReader::default();
        let f = r.read_frame(b.as_fd()).unwrap().unwrap();
        t.join().unwrap();
        assert_eq!(f.payload, big);
    }
}
