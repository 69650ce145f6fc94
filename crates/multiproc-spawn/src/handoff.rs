//! Handing descriptors to another process inside serialized values.
//!
//! A multiproc handle (a queue, a lock, a pipe end…) is a descriptor of shared memory or a
//! socket. When such a handle is serialized as part of a child's arguments (or result), or of
//! a queue item or pipe message, its `Serialize` impl calls [`send_fd`], which duplicates the
//! descriptor into a side list and writes only its index; the list travels beside the bytes
//! (`SCM_RIGHTS`: on the bootstrap socket, or on the socket beside the queue), and on the
//! other side `Deserialize` calls [`recv_fd`] with that index. Outside such a transfer,
//! `send_fd` answers an error that says how to pass the handle instead.
//!
//! ```
//! use multiproc_spawn::handoff;
//! use std::os::fd::AsFd;
//! let file = std::fs::File::open("/dev/null").unwrap();
//! let (index, fds) = handoff::collect_fds(|| handoff::send_fd(file.as_fd()));
//! assert_eq!(index.unwrap(), 0);
//! let received = handoff::with_received_fds(fds, || handoff::recv_fd(0));
//! assert!(received.is_ok());
//! assert!(handoff::send_fd(file.as_fd()).is_err()); // no transfer in progress
//! ```

use std::cell::RefCell;
use std::os::fd::{BorrowedFd, OwnedFd};

thread_local! {
    static OUTGOING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
    static INCOMING: RefCell<Option<Vec<Option<OwnedFd>>>> = const { RefCell::new(None) };
    static UNDO: RefCell<Option<Vec<UndoAction>>> = const { RefCell::new(None) };
    /// Why [`send_fd`] last failed to duplicate a descriptor in this thread's transfer, or why
    /// a handle [`refuse`]d to be sent: serde's custom errors keep no text in postcard, so
    /// [`encode_error`] reports it from here.
    static SEND_ERROR: RefCell<Option<std::io::Error>> = const { RefCell::new(None) };
}

/// One action registered with [`on_undo`].
type UndoAction = Box<dyn FnOnce()>;

/// What to undo if a transfer never reaches the other side (see [`collect_transfer`]): runs
/// the undo actions registered with [`on_undo`] when dropped, unless [`Undo::delivered`] was
/// called first.
#[must_use = "dropping it undoes the transfer; call `delivered()` once it went out"]
pub struct Undo(Vec<UndoAction>);

impl Undo {
    /// The transfer went out: nothing is to be undone.
    pub fn delivered(mut self) {
        self.0.clear();
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        for undo in self.0.drain(..) {
            undo();
        }
    }
}

impl std::fmt::Debug for Undo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Undo({} actions)", self.0.len())
    }
}

/// [`collect_fds`] for a transfer that may fail after the values were serialized (a child
/// that cannot be started): also returns the undo actions that the handles registered with
/// [`on_undo`] (a handle counts as held by the sender while it travels; undoing takes that
/// count back).
///
/// ```
/// use multiproc_spawn::handoff;
/// use std::cell::Cell;
/// use std::rc::Rc;
/// let undone = Rc::new(Cell::new(false));
/// let flag = undone.clone();
/// let ((), fds, undo) = handoff::collect_transfer(|| {
///     assert!(handoff::on_undo(move || flag.set(true)));
/// });
/// assert!(fds.is_empty());
/// drop(undo); // the transfer failed
/// assert!(undone.get());
/// assert!(!handoff::on_undo(|| ())); // no transfer under way
/// ```
pub fn collect_transfer<T>(f: impl FnOnce() -> T) -> (T, Vec<OwnedFd>, Undo) {
    let outer = UNDO.with(|u| u.borrow_mut().replace(Vec::new()));
    let (value, fds) = collect_fds(f);
    let undo = UNDO
        .with(|u| std::mem::replace(&mut *u.borrow_mut(), outer))
        .unwrap_or_default();
    (value, fds, Undo(undo))
}

/// Called by a handle's `Serialize` inside [`collect_transfer`]: `undo` runs if the transfer
/// fails. False (and `undo` is dropped) when no such transfer is under way.
pub fn on_undo(undo: impl FnOnce() + 'static) -> bool {
    UNDO.with(|u| match u.borrow_mut().as_mut() {
        Some(list) => {
            list.push(Box::new(undo));
            true
        }
        None => false,
    })
}

/// Runs `f` (which serializes values) and returns the descriptors its handles handed over with
/// [`send_fd`], in index order.
pub fn collect_fds<T>(f: impl FnOnce() -> T) -> (T, Vec<OwnedFd>) {
    SEND_ERROR.with(|e| e.borrow_mut().take());
    let outer = OUTGOING.with(|o| o.borrow_mut().replace(Vec::new()));
    let value = f();
    let fds = OUTGOING
        .with(|o| std::mem::replace(&mut *o.borrow_mut(), outer))
        .unwrap_or_default();
    (value, fds)
}

/// Runs `f` (which deserializes values) with `fds` available to [`recv_fd`] by index.
pub fn with_received_fds<T>(fds: Vec<OwnedFd>, f: impl FnOnce() -> T) -> T {
    let outer = INCOMING.with(|i| i.borrow_mut().replace(fds.into_iter().map(Some).collect()));
    let value = f();
    INCOMING.with(|i| *i.borrow_mut() = outer);
    value
}

/// The error for an encoding inside [`collect_fds`] that failed: the `io::Error` when a
/// handle's descriptor could not be duplicated (`EMFILE`: the process is at its
/// `RLIMIT_NOFILE`) or a handle [`refuse`]d to be sent, which the encoder's own error would
/// hide, else a codec error that says
/// what could not be encoded (`what`, e.g. "the arguments").
pub fn encode_error(what: &str, e: impl std::fmt::Display) -> multiproc_sync::Error {
    match SEND_ERROR.with(|s| s.borrow_mut().take()) {
        Some(io) => multiproc_sync::Error::Io(io),
        None => multiproc_sync::Error::Codec(format!("could not encode {what}: {e}")),
    }
}

/// Called by a handle's `Serialize`: duplicates `fd` into the transfer under way and returns
/// its index. Errs when no transfer is under way (the value is being serialized for something
/// that cannot carry descriptors).
pub fn send_fd(fd: BorrowedFd<'_>) -> Result<u32, String> {
    OUTGOING.with(|o| match o.borrow_mut().as_mut() {
        Some(list) => {
            let dup = fd.try_clone_to_owned().map_err(|e| {
                let text = format!("could not duplicate a handle's descriptor: {e}");
                SEND_ERROR.with(|s| *s.borrow_mut() = Some(e));
                text
            })?;
            list.push(dup);
            Ok((list.len() - 1) as u32)
        }
        None => Err(
            "a multiproc handle can only be serialized to pass it to a child process \
                     (in spawn's args) or inside a multiproc queue or pipe message"
                .to_owned(),
        ),
    })
}

/// Called by a handle's `Serialize` that cannot be sent (its process cannot count it in
/// flight): keeps `why` for [`encode_error`] to report, since serde's custom errors keep no
/// text in postcard, and returns its text for the serializer's error.
pub fn refuse(why: std::io::Error) -> String {
    let text = why.to_string();
    SEND_ERROR.with(|s| *s.borrow_mut() = Some(why));
    text
}

/// Called by a handle's `Deserialize`: takes the descriptor at `index` of the transfer under way.
pub fn recv_fd(index: u32) -> Result<OwnedFd, String> {
    INCOMING.with(|i| {
        i.borrow_mut()
            .as_mut()
            .and_then(|list| list.get_mut(index as usize))
            .and_then(Option::take)
            .ok_or_else(|| format!("handle descriptor #{index} is missing from this message"))
    })
}

/// Touches this thread's transfer slots, so that their destructors are registered now (in a
/// parent about to fork) rather than in each forked child.
pub(crate) fn warm_up() {
    OUTGOING.with(|_| ());
    INCOMING.with(|_| ());
    UNDO.with(|_| ());
}
