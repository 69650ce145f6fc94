//! The records between the parent and its workers, on multiproc-ipc's shared-memory queues
//! (raw bytes: the pool does its own framing, so a batch of tasks is one record).
//!
//! | queue | record |
//! | --- | --- |
//! | worker's tasks (one per worker) | `0` then tasks: `id: u64`, trampoline and target offsets (`i64` each), `len: u32`, argument bytes |
//! | worker's tasks | `1`: stop after the tasks already sent |
//! | results (one per pool) | `0`, `slot: u32`, `id: u64`, kind (`0` value, `1` panic, `2` codec failure), `ns: u64` (run time), `len: u32`, bytes |
//! | results | `1`: wake-up (the parent has news for its supervisor) |
//! | results | `2`, `slot: u32`: the worker serves from now on (its initializer ran) |
//!
//! A worker puts each result as soon as its task ends, so the parent always knows which task a
//! worker holds: the oldest one it sent and has not seen the result of. It also knows when that
//! task started, without a record per task: when its predecessor's result arrived, or, at an
//! idle worker, when it was sent (or the worker became ready).
//!
//! Besides the queues each worker holds one end of a socket pair, its *lifeline*: the parent's
//! end reads end-of-file the moment the worker dies, however it dies.

use crate::call::CallSpec;
use multiproc_spawn::fnref::FnRef;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

pub(crate) const TASKS: u8 = 0;
pub(crate) const STOP: u8 = 1;

pub(crate) const RESULT: u8 = 0;
pub(crate) const WAKE: u8 = 1;
pub(crate) const READY: u8 = 2;

pub(crate) const OK: u8 = 0;
pub(crate) const PANIC: u8 = 1;
pub(crate) const FAILED: u8 = 2;

/// Appends one task to a tasks frame under construction (see [`begin_frame`]).
pub(crate) fn push_task(buf: &mut Vec<u8>, id: u64, call: CallSpec, args: &[u8]) {
    buf.extend_from_slice(&id.to_le_bytes());
    buf.extend_from_slice(&(call.tramp.offset() as i64).to_le_bytes());
    buf.extend_from_slice(&(call.target.offset() as i64).to_le_bytes());
    buf.extend_from_slice(&(args.len() as u32).to_le_bytes());
    buf.extend_from_slice(args);
}

/// Starts a record whose first byte is `kind`.
pub(crate) fn begin(buf: &mut Vec<u8>, kind: u8) {
    buf.clear();
    buf.push(kind);
}

/// A whole "worker ready" record.
pub(crate) fn ready_record(buf: &mut Vec<u8>, slot: u32) {
    buf.clear();
    buf.push(READY);
    buf.extend_from_slice(&slot.to_le_bytes());
}

/// A whole result record.
pub(crate) fn result_record(
    buf: &mut Vec<u8>,
    slot: u32,
    id: u64,
    kind: u8,
    ns: u64,
    bytes: &[u8],
) {
    buf.clear();
    buf.push(RESULT);
    buf.extend_from_slice(&slot.to_le_bytes());
    buf.extend_from_slice(&id.to_le_bytes());
    buf.push(kind);
    buf.extend_from_slice(&ns.to_le_bytes());
    buf.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    buf.extend_from_slice(bytes);
}

/// Appends to `ids` the ids of the tasks in `rec`, a record taken back off a worker's tasks
/// queue; `false` when it holds no tasks (a stop record).
pub(crate) fn task_ids(rec: &[u8], ids: &mut Vec<u64>) -> bool {
    let mut cur = Cursor(rec);
    if !matches!(cur.u8(), Ok(TASKS)) {
        return false;
    }
    while let Ok((id, _, _)) = cur.task() {
        ids.push(id);
    }
    true
}

/// A cursor over a payload.
pub(crate) struct Cursor<'a>(pub(crate) &'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "short frame"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    pub(crate) fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    pub(crate) fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    pub(crate) fn bytes(&mut self) -> io::Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// One task of a tasks frame.
    pub(crate) fn task(&mut self) -> io::Result<(u64, CallSpec, &'a [u8])> {
        let id = self.u64()?;
        let tramp = FnRef::from_offset(self.u64()? as i64 as isize);
        let target = FnRef::from_offset(self.u64()? as i64 as isize);
        let args = self.bytes()?;
        Ok((id, CallSpec { tramp, target }, args))
    }
}

/// A stream socket that can be passed to a worker inside its spawn arguments.
#[derive(Debug)]
pub(crate) struct Link(pub(crate) UnixStream);

impl Serialize for Link {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let index =
            multiproc_spawn::handoff::send_fd(self.0.as_fd()).map_err(serde::ser::Error::custom)?;
        index.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Link {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let index = u32::deserialize(d)?;
        let fd: OwnedFd = multiproc_spawn::handoff::recv_fd(index).map_err(D::Error::custom)?;
        Ok(Link(UnixStream::from(fd)))
    }
}
