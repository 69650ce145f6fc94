//! The list of live children and the orphan reaper that watches those whose handle was
//! dropped ([`Registry`]).
//!
//! Nothing here reaches a global: the process-wide registry lives in the process-wide page
//! (`state.rs`), whose accessor hands it to the upper modules, which call its methods (on
//! `&'static self`, for the reaper thread they may start).

use super::record::Child;
use crate::identity::ProcessInfo;
use crate::sys;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The children this process started that have not been seen to finish, and the orphan
/// reaper's state.
#[derive(Debug, Default)]
pub(crate) struct Children {
    /// Every child not seen to finish (`active_children`, and the joins at exit).
    live: Vec<Arc<Child>>,
    /// Those of them whose handle was dropped while they ran: the reaper watches them.
    orphans: Vec<Arc<Child>>,
    /// The reaper thread's wake-up eventfd, while that thread runs (it ends when no orphan is
    /// left, and the eventfd closes with it).
    reaper: Option<Arc<OwnedFd>>,
    /// Async joins waiting for news of a child: the reaper watches their descriptors too.
    awaited: Vec<Awaited>,
}

/// An async join parked until one of `fds` (the child's socket or pidfd) has news.
#[derive(Debug)]
struct Awaited {
    /// Keeps the descriptors open while they are watched.
    child: Arc<Child>,
    fds: Vec<RawFd>,
    waker: std::task::Waker,
}

impl Children {
    /// Nothing yet (a `const`, for the process-wide state).
    pub(crate) const EMPTY: Children = Children {
        live: Vec::new(),
        orphans: Vec::new(),
        reaper: None,
        awaited: Vec::new(),
    };

    /// In a forked child: our parent's children are not ours, and its reaper thread does not
    /// exist here. Forgotten, not dropped, and touched only where there is something to forget:
    /// a forked child pays a page fault for every page it writes.
    pub(crate) fn forget_parents(&mut self) {
        if self.live.capacity() != 0
            || self.orphans.capacity() != 0
            || self.awaited.capacity() != 0
            || self.reaper.is_some()
        {
            std::mem::forget(std::mem::take(self));
        }
    }

    /// Forgets `child` (it has finished).
    fn remove(&mut self, child: &Arc<Child>) {
        self.live.retain(|c| !Arc::ptr_eq(c, child));
        if !self.orphans.is_empty() {
            self.orphans.retain(|c| !Arc::ptr_eq(c, child));
        }
    }

    /// The reaper's eventfd if it must be started now: there are orphans and no reaper thread.
    fn reaper_to_start(&mut self) -> Option<Arc<OwnedFd>> {
        if (self.orphans.is_empty() && self.awaited.is_empty()) || self.reaper.is_some() {
            return None;
        }
        match sys::eventfd() {
            Ok(fd) => {
                let fd = Arc::new(fd);
                self.reaper = Some(Arc::clone(&fd));
                Some(fd)
            }
            Err(e) => {
                // The orphans stay listed: the next spawn or `active_children` tries again.
                tracing::warn!(error = %e, "could not make the orphan reaper's eventfd");
                None
            }
        }
    }
}

/// Locks `m` (a poisoned lock is still usable: every update leaves its data consistent).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every child this process started that has not been seen to finish, and the orphan reaper
/// that watches those whose handle was dropped. One per process, in the process-wide page.
#[derive(Debug)]
pub(crate) struct Registry {
    children: Mutex<Children>,
    /// Whether this process may have a live child: set by every [`Registry::register`],
    /// cleared in a forked child. Read without the lock by a child that ends, which then skips
    /// [`Registry::join_all_children`] (whose code a forked child would otherwise have to fault
    /// in) when it never started a child.
    any: AtomicBool,
}

/// An awaited child with the descriptors that announce its news, copied out of the table.
type AwaitedFds = (Arc<Child>, Vec<RawFd>);

impl Registry {
    /// No child yet (a `const fn`, for the process-wide page).
    pub(crate) const fn new() -> Registry {
        Registry {
            children: Mutex::new(Children::EMPTY),
            any: AtomicBool::new(false),
        }
    }

    /// The list itself, locked (a poisoned lock is still usable).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Children> {
        lock(&self.children)
    }

    /// Records a new child (the caller makes sure live children are joined at normal exit).
    pub(crate) fn register(&'static self, child: Arc<Child>) {
        let start = {
            let mut children = self.lock();
            self.any.store(true, Ordering::Release);
            children.live.push(child);
            // Orphans but no reaper: its thread could not be started last time.
            children.reaper_to_start()
        };
        if let Some(wake) = start {
            self.start_reaper(wake);
        }
    }

    /// Forgets a child that has finished.
    pub(crate) fn unregister(&self, child: &Arc<Child>) {
        self.lock().remove(child);
    }

    /// Python's `active_children()`: the live children, after reaping the finished ones.
    pub(crate) fn active_children(&'static self) -> Vec<ProcessInfo> {
        let (list, start) = {
            let mut children = self.lock();
            (children.live.clone(), children.reaper_to_start())
        };
        if let Some(wake) = start {
            self.start_reaper(wake);
        }
        let mut live = Vec::new();
        for child in list {
            if child.finished_now() {
                self.unregister(&child);
            } else {
                live.push(child.info());
            }
        }
        live
    }

    /// Takes a still-running child whose handle was dropped: nobody wants its result (its socket
    /// closes now), and the orphan reaper forgets it, closing its descriptors, as soon as it ends,
    /// reaping it first if it is our own (a fork-server child is reaped by the server).
    ///
    /// One reaper thread watches every orphan of this process, sleeping in one `poll` on their
    /// pidfds and its own eventfd, so orphans cost no more than their pidfds while they run and
    /// nothing once they end, however many there are; the thread ends when the last one has.
    pub(crate) fn adopt_orphan(&'static self, child: Arc<Child>) {
        child.lock().sock = None;
        tracing::debug!(
            pid = child.pid,
            name = %child.name,
            "a running child's handle was dropped; the reaper will reap it"
        );
        self.hand_to_reaper(|children| children.orphans.push(child));
    }

    /// Takes a fork-server spare that will never be used (see [`super::server_conn`]): it exits
    /// once its socket closes, here, and the orphan reaper reaps it.
    pub(crate) fn adopt_spare(&'static self, pid: u32, sock: OwnedFd) {
        let spare = Child::adopted(pid, "multiproc-spare".to_owned(), false, sock);
        self.adopt_orphan(Arc::new(spare));
    }

    /// Parks an async join: the reaper thread wakes `waker` (once) when one of `fds`, descriptors
    /// of `child`, has news. The same thread as the orphans', so that awaiting any number of
    /// children costs one thread, and nothing while none is awaited.
    pub(super) fn await_news(
        &'static self,
        child: Arc<Child>,
        fds: Vec<RawFd>,
        waker: std::task::Waker,
    ) {
        self.hand_to_reaper(|children| {
            // A re-poll replaces the task's earlier request for the same child.
            children
                .awaited
                .retain(|a| !(Arc::ptr_eq(&a.child, &child) && a.waker.will_wake(&waker)));
            children.awaited.push(Awaited { child, fds, waker });
        });
    }

    /// Lists work for the reaper thread with `add`, then wakes the thread or starts it.
    fn hand_to_reaper(&'static self, add: impl FnOnce(&mut Children)) {
        let start = {
            let mut children = self.lock();
            add(&mut children);
            match &children.reaper {
                Some(wake) => {
                    sys::eventfd_signal(wake.as_fd());
                    None
                }
                None => children.reaper_to_start(),
            }
        };
        if let Some(wake) = start {
            self.start_reaper(wake);
        }
    }

    /// Starts the reaper thread, which owns `wake` (see [`Registry::adopt_orphan`]).
    fn start_reaper(&'static self, wake: Arc<OwnedFd>) {
        let spawned = std::thread::Builder::new()
            .name("multiproc-reaper".into())
            .stack_size(64 * 1024)
            .spawn(move || self.reap_orphans(wake));
        if let Err(e) = spawned {
            // The orphans stay listed: the next spawn or `active_children` tries again.
            tracing::warn!(error = %e, "could not start the orphan reaper thread");
            self.lock().reaper = None;
        }
    }

    /// The reaper thread: forgets each orphan as soon as it has ended and wakes each awaited join
    /// whose child has news; returns when neither is left.
    fn reap_orphans(&self, wake: Arc<OwnedFd>) {
        loop {
            let (orphans, awaited): (Vec<Arc<Child>>, Vec<AwaitedFds>) = {
                let mut children = self.lock();
                if children.orphans.is_empty() && children.awaited.is_empty() {
                    // Under the lock: an orphan adopted from now on starts a new reaper.
                    children.reaper = None;
                    return;
                }
                let awaited = children
                    .awaited
                    .iter()
                    .map(|a| (Arc::clone(&a.child), a.fds.clone()))
                    .collect();
                (children.orphans.clone(), awaited)
            };
            let mut ended = Vec::new();
            let mut fds = vec![(wake.as_raw_fd(), false)];
            let mut blind = false;
            for child in &orphans {
                if child.finished_now() {
                    ended.push(child);
                    continue;
                }
                match child.pidfd() {
                    // Stays open while `orphans` holds the child.
                    Ok(Some(fd)) => fds.push((fd.as_raw_fd(), false)),
                    // Reaped since: the next look finds it ended.
                    Ok(None) => blind = true,
                    Err(e) => {
                        // Out of descriptors, say: look again in a while.
                        tracing::debug!(pid = child.pid, error = %e, "could not watch an orphan");
                        blind = true;
                    }
                }
            }
            if !ended.is_empty() {
                let mut children = self.lock();
                for child in ended {
                    tracing::debug!(pid = child.pid, name = %child.name, "reaped an orphaned child");
                    children.remove(child);
                }
                continue;
            }
            let first_awaited = fds.len();
            for (_, child_fds) in &awaited {
                // Open while `awaited` holds the child (a socket closed since makes a spurious
                // wake-up at worst: the join looks again).
                fds.extend(child_fds.iter().map(|&fd| (fd, false)));
            }
            let timeout = blind.then_some(Duration::from_millis(50));
            match sys::poll(&fds, timeout) {
                Ok(ready) => self.wake_awaited(&awaited, &ready[first_awaited..]),
                // An error (`ENOMEM`) is treated like a timeout: look again.
                Err(_) => std::thread::yield_now(),
            }
            sys::eventfd_drain(wake.as_fd());
        }
    }

    /// Wakes (and unlists) each awaited join one of whose descriptors is `ready` (in the order of
    /// `awaited`'s descriptors).
    fn wake_awaited(&self, awaited: &[(Arc<Child>, Vec<RawFd>)], mut ready: &[sys::Ready]) {
        let mut news: Vec<&Arc<Child>> = Vec::new();
        for (child, fds) in awaited {
            let (mine, rest) = ready.split_at(fds.len().min(ready.len()));
            ready = rest;
            if mine.iter().any(|r| r.readable) {
                news.push(child);
            }
        }
        if news.is_empty() {
            return;
        }
        let wakers: Vec<std::task::Waker> = {
            let mut children = self.lock();
            let (woken, kept) = std::mem::take(&mut children.awaited)
                .into_iter()
                .partition(|a| news.iter().any(|c| Arc::ptr_eq(c, &a.child)));
            children.awaited = kept;
            woken.into_iter().map(|a: Awaited| a.waker).collect()
        };
        for waker in wakers {
            waker.wake();
        }
    }

    /// In a forked child, with the list locked (and its parent's children forgotten): this
    /// process has started no child yet.
    pub(crate) fn forget_parents(&self, children: &mut Children) {
        children.forget_parents();
        if self.any.load(Ordering::Relaxed) {
            self.any.store(false, Ordering::Relaxed);
        }
    }

    /// Whether this process may have a live child (it has started one since it began, or since
    /// it was forked): if not, [`Registry::join_all_children`] has nothing to do.
    #[inline]
    pub(crate) fn may_have_children(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// Python's exit rule: terminate live daemon children, then join every live child.
    pub(crate) fn join_all_children(&self) {
        let list: Vec<Arc<Child>> = {
            let mut children = self.lock();
            if children.live.is_empty() {
                return;
            }
            std::mem::take(&mut children.live)
        };
        for child in list.iter().filter(|c| c.daemon) {
            let _ = child.signal(sys::SIGTERM);
        }
        for child in &list {
            let mut st = child.lock();
            let _ = child.wait(&mut st, None);
        }
    }
}
