//! The descriptor channel beside a ring: how the descriptors of handles inside a queue item or
//! pipe message reach a process that is already running.
//!
//! A queue's or pipe direction's memory is shared, but descriptors are not: a handle inside an
//! item (another queue, a lock, a pipe end…) is a descriptor that must be passed by the kernel
//! (`SCM_RIGHTS`). So every ring has a pair of connected `AF_UNIX` datagram sockets, made with
//! the ring and held by every process that holds the ring (both ends: producers send on the
//! first, consumers receive from the second), travelling with the ring's `memfd` wherever a
//! handle to it travels. Items without handles never touch it.
//!
//! # Protocol
//!
//! A producer encodes an item; if handles in it handed over descriptors, the record is put
//! with an attach hook ([`crate::error::Attach`]), which the ring calls *under the put lock*
//! with the record's position just before it writes the record, and which sends one datagram
//! (more for over [`MAX_FDS_PER_DATAGRAM`] descriptors) tagged with that position and the
//! item's nonce. Records are committed in put-lock order and datagrams are sent in put-lock
//! order, so datagrams lie in the socket in the order of their flagged records; and each is in
//! the socket before its record is visible. A consumer that takes a flagged record (under the
//! get lock) reads the datagrams at the front of the socket:
//!
//! | front datagram | meaning | action |
//! |---|---|---|
//! | tag older than the record, or the same position and another nonce | left by a producer killed after its send and before its commit (the next record reused its position) | close its descriptors, look again |
//! | this record's position and nonce | ours | take it (and the further parts) |
//! | newer tag, or none | a consumer killed after receiving ours and before committing took it | the item is lost: `Err(Codec)`, the ring moves past it |
//!
//! Peeking (without the descriptors) before receiving means a datagram that belongs to a
//! later record is never taken by mistake, so one killed consumer loses one item, not every
//! later one. The nonce is written in front of the item's bytes in the record, so that the
//! consumer can tell its datagram from an orphan at the same position. Positions are the
//! ring's 40-bit stream offsets, compared with wrap-around.
//!
//! # Limits
//!
//! - An item's descriptors go in parts of at most [`MAX_FDS_PER_DATAGRAM`] (the kernel's
//!   `SCM_MAX_FD`), at most [`MAX_PARTS`] parts: every part must be in the socket before the
//!   record is visible, so they must fit in its buffer together.
//! - The socket's buffer holds some 550 datagrams (more where `net.core.wmem_max` allows):
//!   past that, a put of an item with handles waits for consumers like a put on a full bounded
//!   queue (its deadline gives `Full`, no other live holder `Closed`), even on an unbounded
//!   queue. Items without handles are never held up.
//! - Descriptors in flight count against the sender's `ulimit -n` (the kernel refuses more:
//!   the put fails with `Err(Codec)` and nothing is written); a receiver without room for them
//!   loses that item (`Err(Codec)`).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::error::PutError;
use crate::sys;

pub(crate) use sys::MAX_FDS_PER_DATAGRAM;

/// The most datagrams one item's descriptors are split into.
pub(crate) const MAX_PARTS: usize = 64;

/// Datagram header: record position (u64 LE), nonce (u64 LE), part, parts (u32 LE each).
const HEADER: usize = 24;

/// Positions are 40-bit stream offsets (see the ring).
const POS_MASK: u64 = (1 << 40) - 1;

/// How long a producer waiting for room in the socket sleeps before it looks at its peers.
const POLL: Duration = Duration::from_millis(20);

/// One ring's pair of datagram sockets (see the module docs).
#[derive(Debug)]
pub(crate) struct Channel {
    /// Producers send here…
    tx: OwnedFd,
    /// …and consumers receive here.
    rx: OwnedFd,
}

/// Whether position `a` comes before `b` (at most 2^39 apart, which the socket's few hundred
/// datagrams never are).
fn older(a: u64, b: u64) -> bool {
    a != b && (b.wrapping_sub(a) & POS_MASK) < 1 << 39
}

struct Tag {
    at: u64,
    nonce: u64,
    part: u32,
    parts: u32,
}

impl Tag {
    fn encode(&self) -> [u8; HEADER] {
        let mut b = [0u8; HEADER];
        b[..8].copy_from_slice(&self.at.to_le_bytes());
        b[8..16].copy_from_slice(&self.nonce.to_le_bytes());
        b[16..20].copy_from_slice(&self.part.to_le_bytes());
        b[20..].copy_from_slice(&self.parts.to_le_bytes());
        b
    }

    fn decode(b: &[u8; HEADER]) -> Tag {
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        Tag {
            at: u64_at(0),
            nonce: u64_at(8),
            part: u32_at(16),
            parts: u32_at(20),
        }
    }
}

fn lost() -> String {
    "the handles inside this item were lost (a process killed while taking it had received \
     their descriptors); the item is dropped"
        .to_owned()
}

impl Channel {
    /// A new channel (for a new ring).
    pub(crate) fn new() -> io::Result<Channel> {
        let (tx, rx) = sys::dgram_pair()?;
        Ok(Channel { tx, rx })
    }

    /// The channel of a ring that arrived from another process.
    pub(crate) fn from_fds(tx: OwnedFd, rx: OwnedFd) -> Result<Channel, String> {
        if !sys::is_unix_dgram(tx.as_fd()) || !sys::is_unix_dgram(rx.as_fd()) {
            return Err("a queue's descriptor channel is not a datagram socket".to_owned());
        }
        Ok(Channel { tx, rx })
    }

    /// Shrinks the socket's buffer to the kernel's minimum, so that a test fills it quickly.
    #[cfg(test)]
    pub(crate) fn shrink_for_test(&self) {
        sys::set_send_buffer(self.tx.as_fd(), 0).unwrap();
    }

    /// Both sockets (to hand to another process), sending end first.
    pub(crate) fn fds(&self) -> [BorrowedFd<'_>; 2] {
        [self.tx.as_fd(), self.rx.as_fd()]
    }

    /// Sends `fds` for the record at position `at` (called from the ring's attach hook, under
    /// the put lock). Waits for room in the socket until `deadline` (`Full`), while `alive()`
    /// says that someone could still take items (`Closed` otherwise).
    pub(crate) fn send(
        &self,
        at: u64,
        nonce: u64,
        fds: &[OwnedFd],
        deadline: Option<Instant>,
        alive: &mut dyn FnMut() -> bool,
    ) -> Result<(), PutError> {
        let parts = fds.len().div_ceil(MAX_FDS_PER_DATAGRAM).max(1);
        if parts > MAX_PARTS {
            return Err(PutError::attach(format!(
                "an item carries {} descriptors (its handles; a queue takes 3, a lock or value \
                 1), more than the {} that one queue or pipe item can carry",
                fds.len(),
                MAX_PARTS * MAX_FDS_PER_DATAGRAM
            )));
        }
        let mut borrowed: Vec<BorrowedFd<'_>> = Vec::with_capacity(fds.len());
        borrowed.extend(fds.iter().map(AsFd::as_fd));
        for part in 0..parts {
            let from = part * MAX_FDS_PER_DATAGRAM;
            let chunk = &borrowed[from..(from + MAX_FDS_PER_DATAGRAM).min(borrowed.len())];
            let tag = Tag {
                at,
                nonce,
                part: part as u32,
                parts: parts as u32,
            }
            .encode();
            self.send_one(&tag, chunk, deadline, alive)?;
        }
        Ok(())
    }

    fn send_one(
        &self,
        tag: &[u8; HEADER],
        fds: &[BorrowedFd<'_>],
        deadline: Option<Instant>,
        alive: &mut dyn FnMut() -> bool,
    ) -> Result<(), PutError> {
        loop {
            match sys::send_dgram(self.tx.as_fd(), tag, fds) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    return Err(PutError::attach(format!(
                        "could not pass the descriptors of the handles in an item: {e}"
                    )));
                }
            }
            // The socket is full of descriptors that consumers have not taken yet: wait
            // like a put on a full bounded queue.
            let mut nap = POLL;
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    return Err(PutError::Full);
                }
                nap = nap.min(d - now);
            } else if !alive() {
                return Err(PutError::Closed);
            }
            sys::wait_writable(self.tx.as_fd(), nap);
        }
    }

    /// Takes the descriptors sent for the record at position `at` with `nonce` (called under
    /// the get lock, see the module docs).
    pub(crate) fn take(&self, at: u64, nonce: u64) -> Result<Vec<OwnedFd>, String> {
        let mut fds = Vec::new();
        let mut next_part = 0u32;
        loop {
            let mut head = [0u8; HEADER];
            let len = match sys::peek_dgram(self.rx.as_fd(), &mut head) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(lost()),
                Err(e) => return Err(format!("could not receive an item's descriptors: {e}")),
            };
            let tag = Tag::decode(&head);
            let ours = len == HEADER && tag.at == at && tag.nonce == nonce;
            if !ours {
                if len != HEADER || older(tag.at, at) || tag.at == at {
                    // An orphan (or not ours to make sense of): its descriptors go.
                    self.discard_one()?;
                    continue;
                }
                // A later record's: ours was taken by a consumer that died.
                return Err(lost());
            }
            if tag.part != next_part || tag.parts == 0 || tag.part >= tag.parts {
                // Earlier parts went with a consumer that died: drop the rest too.
                drop(fds);
                self.skip(at, nonce)?;
                return Err(lost());
            }
            let (_, complete) = sys::recv_dgram(self.rx.as_fd(), &mut head, &mut fds)
                .map_err(|e| format!("could not receive an item's descriptors: {e}"))?;
            next_part += 1;
            if !complete {
                drop(fds);
                self.skip(at, nonce)?;
                return Err(
                    "out of descriptors (EMFILE): this process has no room for the \
                     descriptors of the handles inside an item (`ulimit -n`); the item is \
                     dropped"
                        .to_owned(),
                );
            }
            if next_part == tag.parts {
                return Ok(fds);
            }
        }
    }

    /// Takes the front datagram and closes its descriptors.
    fn discard_one(&self) -> Result<(), String> {
        let mut head = [0u8; HEADER];
        let mut fds = Vec::new();
        match sys::recv_dgram(self.rx.as_fd(), &mut head, &mut fds) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(format!("could not receive an item's descriptors: {e}")),
        }
    }

    /// Discards the front datagrams that belong to the record at `at` with `nonce`.
    fn skip(&self, at: u64, nonce: u64) -> Result<(), String> {
        loop {
            let mut head = [0u8; HEADER];
            match sys::peek_dgram(self.rx.as_fd(), &mut head) {
                Ok(HEADER) => {
                    let tag = Tag::decode(&head);
                    if tag.at != at || tag.nonce != nonce {
                        return Ok(());
                    }
                    self.discard_one()?;
                }
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(format!("could not receive an item's descriptors: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some_fds(n: usize) -> Vec<OwnedFd> {
        let file = std::fs::File::open("/dev/null").unwrap();
        (0..n)
            .map(|_| file.as_fd().try_clone_to_owned().unwrap())
            .collect()
    }

    fn send(c: &Channel, at: u64, nonce: u64, n: usize) {
        c.send(at, nonce, &some_fds(n), None, &mut || true).unwrap();
    }

    #[test]
    fn positions_compare_across_wrap_around() {
        assert!(older(1, 2) && !older(2, 1) && !older(5, 5));
        assert!(older(POS_MASK - 8, 16), "16 comes after a wrap");
        assert!(!older(16, POS_MASK - 8));
    }

    #[test]
    fn orphans_are_skipped_and_a_later_records_datagram_is_left_alone() {
        let c = Channel::new().unwrap();
        send(&c, 8, 1, 2); // orphan at an older position
        send(&c, 16, 2, 1); // orphan at the same position, another nonce
        send(&c, 16, 3, 300); // ours, in two parts
        send(&c, 40, 4, 1); // a later record's
        let got = c.take(16, 3).unwrap();
        assert_eq!(got.len(), 300);
        // Record 24's datagram is missing: it is lost, and record 40's survives.
        assert!(c.take(24, 9).unwrap_err().contains("lost"));
        assert_eq!(c.take(40, 4).unwrap().len(), 1);
        assert!(c.take(48, 5).unwrap_err().contains("lost"), "nothing left");
    }

    #[test]
    fn a_half_taken_item_is_dropped_whole() {
        let c = Channel::new().unwrap();
        send(&c, 0, 1, 600);
        // A consumer that died after the first part: the rest is skipped.
        let mut fds = Vec::new();
        sys::recv_dgram(c.rx.as_fd(), &mut [0; HEADER], &mut fds).unwrap();
        assert_eq!(fds.len(), MAX_FDS_PER_DATAGRAM);
        send(&c, 8, 2, 1);
        assert!(c.take(0, 1).is_err());
        assert_eq!(c.take(8, 2).unwrap().len(), 1);
    }

    #[test]
    fn too_many_descriptors_and_a_full_socket() {
        let c = Channel::new().unwrap();
        let many = some_fds(MAX_PARTS * MAX_FDS_PER_DATAGRAM + 1);
        let e = c.send(0, 0, &many, None, &mut || true).unwrap_err();
        assert!(matches!(e, PutError::Attach(m) if m.contains("more than")));
        drop(many);
        // Datagrams without descriptors fill the socket as well, and count against no limit.
        let mut n = 0u64;
        loop {
            match c.send(n * 8, n, &[], Some(Instant::now()), &mut || true) {
                Ok(()) => n += 1,
                Err(e) => {
                    assert_eq!(e, PutError::Full);
                    break;
                }
            }
        }
        assert!(n >= 100, "the socket held only {n} datagrams");
        assert_eq!(
            c.send(n * 8, n, &[], None, &mut || false),
            Err(PutError::Closed)
        );
        for i in 0..n {
            assert_eq!(c.take(i * 8, i).unwrap().len(), 0);
        }
    }
}
