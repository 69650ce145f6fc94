//! The bootstrap protocol: length-prefixed frames over a Unix stream socket, with descriptors
//! attached to a frame's first byte (`SCM_RIGHTS`).
//!
//! One message carries at most 253 descriptors (the kernel's `SCM_MAX_FD`), and on a stream
//! socket they ride on the bytes of the `sendmsg` that sent them. So a frame with more goes
//! out as *carrier* frames (empty, [`CARRIER`] set in the header, up to 253 descriptors each)
//! followed by the frame itself with the last part: the reader keeps the carriers'
//! descriptors, in arrival order, for the next real frame. Any number of handles fits in the
//! arguments or the result of a child; the limit is the receiver's `ulimit -n`.
//!
//! One socket pair per child. The parent's end carries, in order:
//!
//! | direction | frame | payload | fds |
//! |---|---|---|---|
//! | parent → child | `Bootstrap` (not for Fork children) | header length (u32), postcard header, argument bytes | handles in the args |
//! | child → parent | `ResultOk` / `ResultPanic` / `StartFailed` | result bytes / panic text / reason | handles in the result |
//! | server → parent | `Status` (fork-server children only) | exit code (i32) | |
//!
//! A Fork child leaves a small outcome without handles in its slot of a page shared with the
//! parent instead (see [`super::slots`]). The fork server's control socket carries `Request`
//! frames from the parent (daemon flag, with the child's end of a fresh socket pair attached),
//! each answered by the server with `Hello` (the child's pid, with a pidfd of it attached) or
//! `ServerError` (why it could not fork).

use crate::spin::Spinner;
use crate::sys;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
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
    pub(crate) fn from_u8(b: u8) -> Option<Kind> {
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

/// The most slices one frame is written from ([`write_frame`]'s `parts`).
const MAX_PARTS: usize = 4;

/// Frame header: payload length (u32 LE), kind (u8), descriptor count (u8), flags (u8), a
/// zero byte.
const HEADER: usize = 8;

/// Header flag: this frame only carries descriptors for the next real frame (see the module
/// docs); its payload is empty and it is never handed out.
const CARRIER: u8 = 1;

/// Bytes a [`FrameReader`] keeps inline: a frame that fits needs no read buffer on the heap.
const SMALL: usize = 128;

/// One received frame.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) kind: Kind,
    pub(crate) payload: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
}

/// A received frame whose payload is still in the reader's buffer.
#[derive(Debug)]
pub(crate) struct FrameView<'a> {
    pub(crate) kind: Kind,
    pub(crate) payload: &'a [u8],
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
    if parts.len() > MAX_PARTS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many parts in one frame",
        ));
    }
    // All but the last part of the descriptors go ahead in carrier frames (see the module docs).
    let mut fds = fds;
    while fds.len() > sys::MAX_FDS_PER_MESSAGE {
        let (part, rest) = fds.split_at(sys::MAX_FDS_PER_MESSAGE);
        let mut head = [0u8; HEADER];
        head[4] = kind as u8;
        head[5] = part.len() as u8;
        head[6] = CARRIER;
        write_all(sock, &mut [IoSlice::new(&head)], part)?;
        fds = rest;
    }
    let mut head = [0u8; HEADER];
    head[..4].copy_from_slice(&len32.to_le_bytes());
    head[4] = kind as u8;
    head[5] = fds.len() as u8;
    // Header and parts leave in one gathered system call (more only if a signal cuts a large
    // frame short): no copy and no allocation, which matters in a freshly forked child, where
    // every heap page it writes is a copy-on-write fault.
    let mut storage = [IoSlice::new(&[]); 1 + MAX_PARTS];
    storage[0] = IoSlice::new(&head);
    for (slot, part) in storage[1..].iter_mut().zip(parts) {
        *slot = IoSlice::new(part);
    }
    write_all(sock, &mut storage[..1 + parts.len()], fds)
}

/// Sends all of `iov`, with `fds` (at most [`sys::MAX_FDS_PER_MESSAGE`]) on its first byte.
fn write_all(sock: BorrowedFd<'_>, mut iov: &mut [IoSlice<'_>], fds: &[RawFd]) -> io::Result<()> {
    let mut fds = fds;
    let mut left: usize = iov.iter().map(|s| s.len()).sum();
    while left > 0 {
        let n = sys::send_with_fds(sock, iov, fds, false)?;
        left -= n;
        fds = &[];
        IoSlice::advance_slices(&mut iov, n);
    }
    Ok(())
}

/// What one read found.
enum Got {
    /// Nothing (a non-blocking read of an empty socket).
    Nothing,
    /// Some bytes, and the socket is empty now.
    All,
    /// Some bytes; there may be more.
    More,
    /// The peer closed its end.
    Eof,
    /// No room: complete frames are waiting to be taken first.
    Full,
}

/// Reassembles frames from a stream socket, keeping descriptors in arrival order.
///
/// Bytes arrive in `small[start..end]`, inline, so that a reader that sees only small frames
/// (most results, every control frame) never allocates a read buffer: one allocation fewer per
/// child, and in a forked process one page fault fewer. A frame too big for it moves to
/// `large`, a buffer of exactly its payload's size, which the payload is read into directly and
/// which is then handed over whole: a 64 MiB result is received without a copy.
#[derive(Debug)]
pub(crate) struct FrameReader {
    small: [u8; SMALL],
    start: usize,
    end: usize,
    large: Option<Large>,
    fds: VecDeque<OwnedFd>,
    /// Descriptors at the front of `fds` that carrier frames brought for the next real frame.
    carried: usize,
    /// The kernel dropped descriptors sent to us (no room: `MSG_CTRUNC`) since the last frame
    /// was handed out: the next frame short of its descriptors says so.
    dropped: bool,
    eof: bool,
    /// The last look found the socket empty (or closed).
    drained: bool,
}

/// A frame too big for the inline buffer, arriving.
#[derive(Debug)]
struct Large {
    kind: u8,
    nfds: u8,
    flags: u8,
    payload: Vec<u8>,
    filled: usize,
}

impl Default for FrameReader {
    fn default() -> Self {
        FrameReader {
            small: [0; SMALL],
            start: 0,
            end: 0,
            large: None,
            fds: VecDeque::new(),
            carried: 0,
            dropped: false,
            eof: false,
            drained: false,
        }
    }
}

impl FrameReader {
    /// Whether the peer has closed its end.
    pub(crate) fn eof(&self) -> bool {
        self.eof
    }

    /// Whether the last look found nothing more in the socket and every byte and descriptor
    /// received has been handed out in a frame.
    pub(crate) fn is_drained(&self) -> bool {
        self.drained && self.start == self.end && self.large.is_none() && self.fds.is_empty()
    }

    /// Reads what is available (`nonblocking`) or at least something (blocking). Returns
    /// `Ok(false)` when nothing was there (nonblocking) and `Ok(true)` otherwise (EOF included).
    pub(crate) fn fill(&mut self, sock: BorrowedFd<'_>, nonblocking: bool) -> io::Result<bool> {
        Ok(!matches!(self.read_some(sock, nonblocking)?, Got::Nothing))
    }

    /// Reads what has arrived, without blocking: everything, unless the inline buffer fills up
    /// with small frames first (then take them with [`FrameReader::next_frame`] and call again;
    /// [`FrameReader::is_drained`] tells).
    pub(crate) fn fill_available(&mut self, sock: BorrowedFd<'_>) -> io::Result<()> {
        loop {
            match self.read_some(sock, true)? {
                Got::More => {}
                Got::All | Got::Nothing | Got::Eof | Got::Full => return Ok(()),
            }
        }
    }

    /// The length of the frame whose header starts `small[start..]`, once the header is in.
    fn pending_frame_len(&self) -> Option<usize> {
        let head = self.small.get(self.start..self.end)?.get(..HEADER)?;
        Some(HEADER + u32::from_le_bytes(head[..4].try_into().unwrap()) as usize)
    }

    fn read_some(&mut self, sock: BorrowedFd<'_>, nonblocking: bool) -> io::Result<Got> {
        if self.eof {
            return Ok(Got::Eof);
        }
        self.move_large_frame_out();
        if let Some(large) = &self.large {
            if large.filled == large.payload.len() {
                return Ok(Got::Full);
            }
        } else {
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            } else if self.start > 0
                && (self.end == SMALL
                    || self
                        .pending_frame_len()
                        .is_some_and(|n| n > SMALL - self.start))
            {
                // Make room at the end of the inline buffer.
                self.small.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == SMALL {
                return Ok(Got::Full);
            }
        }
        let mut fds = Vec::new();
        let (r, room) = match &mut self.large {
            Some(large) => {
                let room = large.payload.len() - large.filled;
                let into = &mut large.payload[large.filled..];
                (sys::recv_with_fds(sock, into, &mut fds, nonblocking), room)
            }
            None => {
                let into = &mut self.small[self.end..];
                let room = into.len();
                (sys::recv_with_fds(sock, into, &mut fds, nonblocking), room)
            }
        };
        let got_fds = !fds.is_empty();
        if got_fds {
            self.fds.extend(fds);
        }
        // A message whose descriptors the kernel could not install (no room) still ends the
        // read at its boundary, as one that brought them does: neither says the socket is empty.
        let mut stopped_at_fds = got_fds;
        let r = r.map(|(n, complete)| {
            self.dropped |= !complete;
            stopped_at_fds |= !complete;
            n
        });
        self.drained = false;
        let got = match r {
            Ok(0) => {
                self.eof = true;
                Got::Eof
            }
            // A read shorter than the room offered emptied the socket, unless it stopped
            // early at a message that carried descriptors.
            Ok(n) => {
                match &mut self.large {
                    Some(large) => large.filled += n,
                    None => self.end += n,
                }
                if n < room && !stopped_at_fds {
                    Got::All
                } else {
                    Got::More
                }
            }
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock => Got::Nothing,
                // A peer that died with unread data in its buffer resets the connection.
                io::ErrorKind::ConnectionReset => {
                    self.eof = true;
                    Got::Eof
                }
                _ => return Err(e),
            },
        };
        self.drained = matches!(got, Got::Nothing | Got::All | Got::Eof);
        self.move_large_frame_out();
        Ok(got)
    }

    /// Once the header of a frame too big for the inline buffer is in, gives it a buffer of its
    /// own, with the part of its payload received so far.
    fn move_large_frame_out(&mut self) {
        if self.large.is_some() {
            return;
        }
        self.skip_carriers();
        let Some(frame_len) = self.pending_frame_len() else {
            return;
        };
        if frame_len <= SMALL {
            return;
        }
        let head = &self.small[self.start..self.start + HEADER];
        let (kind, nfds, flags) = (head[4], head[5], head[6]);
        let mut payload = vec![0u8; frame_len - HEADER];
        let got = &self.small[self.start + HEADER..self.end];
        payload[..got.len()].copy_from_slice(got);
        self.large = Some(Large {
            kind,
            nfds,
            flags,
            payload,
            filled: got.len(),
        });
        self.start = 0;
        self.end = 0;
    }

    /// Takes the complete carrier frames at the front of the inline buffer: their descriptors
    /// (received with their first byte, so already in `fds`) wait there for the next real
    /// frame.
    fn skip_carriers(&mut self) {
        if self.large.is_some() {
            return;
        }
        while let Some(head) = self.small[self.start..self.end].get(..HEADER) {
            if head[6] != CARRIER || head[..4] != [0; 4] {
                break;
            }
            self.carried += head[5] as usize;
            self.start += HEADER;
        }
    }

    /// Checks a real frame's kind and flags, and that its descriptors (`nfds` of its own, and
    /// those its carriers brought) have arrived; returns its kind and descriptor count.
    fn check_frame(&self, kind: u8, nfds: u8, flags: u8) -> io::Result<(Kind, usize)> {
        let kind = Kind::from_u8(kind)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown frame kind"))?;
        if flags != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "malformed frame header (unknown flags, or a carrier frame with a payload)",
            ));
        }
        let nfds = self.carried + nfds as usize;
        if self.fds.len() < nfds {
            return Err(if self.dropped {
                sys::fds_dropped_error()
            } else {
                io::Error::new(io::ErrorKind::InvalidData, "frame lost its descriptors")
            });
        }
        Ok((kind, nfds))
    }

    /// The next complete frame, if one has arrived.
    pub(crate) fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        self.skip_carriers();
        let (kind, nfds, flags) = match &self.large {
            Some(large) if large.filled == large.payload.len() => {
                (large.kind, large.nfds, large.flags)
            }
            Some(_) => return Ok(None),
            None => {
                let Some(frame_len) = self.pending_frame_len() else {
                    return Ok(None);
                };
                if self.end - self.start < frame_len {
                    return Ok(None);
                }
                let head = &self.small[self.start..];
                (head[4], head[5], head[6])
            }
        };
        let checked = self.check_frame(kind, nfds, flags);
        let dropped = std::mem::take(&mut self.dropped);
        self.carried = 0;
        let payload = match self.large.take() {
            Some(large) => large.payload,
            None => {
                let frame_len = self.pending_frame_len().expect("checked above");
                let p = self.small[self.start + HEADER..self.start + frame_len].to_vec();
                self.start += frame_len;
                p
            }
        };
        match checked {
            Ok((kind, nfds)) => {
                let fds = self.fds.drain(..nfds).collect();
                Ok(Some(Frame { kind, payload, fds }))
            }
            // The bad frame is consumed, so that the frames after it (a fork-server child's
            // exit status) can still be read; the descriptors that did arrive for it close.
            Err(e) => {
                self.fds.clear();
                if dropped && Kind::from_u8(kind) == Some(Kind::ResultOk) {
                    // A result whose handles this process had no room for: it becomes the
                    // child's failure, kept with its outcome so that join reports the cause
                    // whichever thread read the frame.
                    let payload = format!("could not receive its result: {e}").into_bytes();
                    return Ok(Some(Frame {
                        kind: Kind::StartFailed,
                        payload,
                        fds: Vec::new(),
                    }));
                }
                Err(e)
            }
        }
    }

    /// Blocks until one whole frame has arrived and returns its kind, its payload where it was
    /// received (no copy, no allocation for a small one) and its descriptors; `Ok(None)` if the
    /// peer closed first. For a reader that needs only this one frame (a child's start-up
    /// message).
    pub(crate) fn read_first_frame(
        &mut self,
        sock: BorrowedFd<'_>,
    ) -> io::Result<Option<FrameView<'_>>> {
        loop {
            self.skip_carriers();
            let complete = match &self.large {
                Some(large) => large.filled == large.payload.len(),
                None => self
                    .pending_frame_len()
                    .is_some_and(|n| self.end - self.start >= n),
            };
            if complete {
                break;
            }
            if self.eof {
                return Ok(None);
            }
            self.fill(sock, false)?;
        }
        let (kind, nfds, flags, range) = match &self.large {
            Some(large) => (large.kind, large.nfds, large.flags, 0..large.payload.len()),
            None => {
                let n = self.pending_frame_len().expect("complete");
                let head = &self.small[self.start..];
                (
                    head[4],
                    head[5],
                    head[6],
                    self.start + HEADER..self.start + n,
                )
            }
        };
        let (kind, nfds) = self.check_frame(kind, nfds, flags)?;
        self.carried = 0;
        self.dropped = false;
        let fds = self.fds.drain(..nfds).collect();
        let payload = match &self.large {
            Some(large) => &large.payload[range],
            None => &self.small[range],
        };
        Ok(Some(FrameView { kind, payload, fds }))
    }

    /// Blocks until one whole frame has arrived; `Ok(None)` if the peer closed first.
    #[cfg(test)]
    pub(crate) fn read_frame(&mut self, sock: BorrowedFd<'_>) -> io::Result<Option<Frame>> {
        loop {
            if let Some(f) = self.next_frame()? {
                return Ok(Some(f));
            }
            if self.eof {
                return Ok(None);
            }
            self.fill(sock, false)?;
        }
    }

    /// Blocks until one whole frame has arrived (`Ok(None)` if the peer closed first), looking
    /// without blocking (yielding the CPU between looks) for up to `spin` before it sleeps: a
    /// reply that comes within microseconds then costs no wake-up.
    pub(crate) fn read_frame_spinning(
        &mut self,
        sock: BorrowedFd<'_>,
        spin: Duration,
    ) -> io::Result<Option<Frame>> {
        let mut spinner = Spinner::until(Instant::now() + spin);
        let mut spinning = true;
        loop {
            if let Some(f) = self.next_frame()? {
                return Ok(Some(f));
            }
            if self.eof {
                return Ok(None);
            }
            if self.fill(sock, spinning)? {
                spinner.progress();
            } else {
                spinning = spinner.spin();
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
    fn many_small_frames_and_a_large_one_in_between() {
        let (a, b) = sys::socketpair().unwrap();
        let (x, _y) = sys::socketpair().unwrap();
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for i in 0..40u32 {
            let fds = if i.is_multiple_of(7) {
                vec![x.as_raw_fd()]
            } else {
                vec![]
            };
            write_frame(a.as_fd(), Kind::Status, &[&i.to_le_bytes()], &fds).unwrap();
            if i == 20 {
                write_frame(a.as_fd(), Kind::ResultOk, &[&big[..10], &big[10..]], &[]).unwrap();
            }
        }
        drop(a);
        let mut r = FrameReader::default();
        let mut seen = Vec::new();
        loop {
            r.fill_available(b.as_fd()).unwrap();
            while let Some(f) = r.next_frame().unwrap() {
                match f.kind {
                    Kind::Status => {
                        let i = payload_u32(&f.payload).unwrap();
                        assert_eq!(f.fds.len(), usize::from(i.is_multiple_of(7)), "frame {i}");
                        seen.push(i);
                    }
                    _ => {
                        assert_eq!(f.payload, big);
                        assert_eq!(seen.len(), 21);
                    }
                }
            }
            if r.eof() {
                break;
            }
        }
        assert_eq!(seen, (0..40).collect::<Vec<_>>());
        assert!(r.is_drained());
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

    /// `n` copies of `/dev/null`.
    fn nulls(n: usize) -> Vec<OwnedFd> {
        let f = std::fs::File::open("/dev/null").unwrap();
        (0..n)
            .map(|_| f.as_fd().try_clone_to_owned().unwrap())
            .collect()
    }

    #[test]
    fn frames_with_hundreds_of_descriptors_keep_them_apart_and_in_order() {
        let (a, b) = sys::socketpair().unwrap();
        // Frame i carries 300·i + 7 descriptors (carriers ahead of it), small and large
        // payloads alternating, and frames without descriptors in between.
        let big = vec![9u8; 100_000];
        let t = std::thread::spawn(move || {
            for i in 0..4u32 {
                let fds = nulls(300 * i as usize + 7);
                let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
                let payload: &[u8] = if i % 2 == 0 { &i.to_le_bytes() } else { &big };
                write_frame(a.as_fd(), Kind::ResultOk, &[payload], &raw).unwrap();
                write_frame(a.as_fd(), Kind::Status, &[&i.to_le_bytes()], &[]).unwrap();
            }
        });
        let mut r = FrameReader::default();
        for i in 0..4usize {
            let f = r.read_frame(b.as_fd()).unwrap().unwrap();
            assert_eq!((f.kind, f.fds.len()), (Kind::ResultOk, 300 * i + 7));
            assert_eq!(f.payload.len(), if i % 2 == 0 { 4 } else { 100_000 });
            let f = r.read_frame(b.as_fd()).unwrap().unwrap();
            assert_eq!((f.kind, f.fds.len()), (Kind::Status, 0));
            assert_eq!(payload_u32(&f.payload).unwrap(), i as u32);
        }
        t.join().unwrap();
        // The first frame of a fresh reader, as a child reads its arguments.
        let (a, b) = sys::socketpair().unwrap();
        let fds = nulls(1000);
        let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        write_frame(a.as_fd(), Kind::Bootstrap, &[b"args"], &raw).unwrap();
        let mut r = FrameReader::default();
        let f = r.read_first_frame(b.as_fd()).unwrap().unwrap();
        assert_eq!(
            (f.kind, f.payload, f.fds.len()),
            (Kind::Bootstrap, &b"args"[..], 1000)
        );
    }

    #[test]
    fn a_carrier_with_a_payload_or_unknown_flags_is_rejected() {
        for (len, flags) in [(1u32, CARRIER), (0, 2)] {
            let (a, b) = sys::socketpair().unwrap();
            let mut frame = [0u8; HEADER + 1];
            frame[..4].copy_from_slice(&len.to_le_bytes());
            frame[4] = Kind::ResultOk as u8;
            frame[6] = flags;
            let n = HEADER + len as usize;
            sys::send_with_fds(a.as_fd(), &[IoSlice::new(&frame[..n])], &[], false).unwrap();
            let e = FrameReader::default().read_frame(b.as_fd()).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        }
    }
}
