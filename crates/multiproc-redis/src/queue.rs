//! [`Queue`]: a FIFO queue in a Redis list, shared by every process that names it, on any
//! machine, with at-least-once delivery.
//!
//! Keys, for a queue named `N`: `multiproc:queue:N:items` (the list; `put` pushes on the left,
//! consumers take from the right), `…:consumers` (a set of consumer ids), `…:processing:ID`
//! (the items consumer `ID` holds and has not acknowledged) and `…:alive:ID` (its heartbeat,
//! a key with a TTL that a background thread renews; its value is the consumer's record,
//! `"TTL_MS PID HOST"`: the heartbeat's TTL in milliseconds, the process id and the host
//! name, read by `info`; only the key's existence counts as alive).
//!
//! A consumer's `get` moves an item atomically (`BLMOVE`) from the list into its processing
//! list; [`Queue::task_done`] removes it there. When a consumer's heartbeat expires (its
//! process died, or the handle was dropped holding unacknowledged items), the next consumer
//! that looks (at most once per heartbeat period, and whenever a `get` follows one that
//! found the queue empty)
//! moves its processing list back to the head of the queue, in one Lua script, so exactly one
//! consumer requeues it.

use crate::conn::{BLOCK_CHUNK, Client, Conn, Pool, random_token};
use crate::socket::Wire;
use multiproc_spawn::decode::decode_exact;
use multiproc_sync::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Borrow;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a consumer's heartbeat lives, by default; it is renewed every third of it.
pub(crate) const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

/// The most items one `LPUSH` of [`RawQueue::put_many`] sends.
pub(crate) const PUT_CHUNK: usize = 1000;

/// Moves the processing lists of consumers without a heartbeat back to the queue.
/// KEYS: items, consumers. ARGV: the queue's key prefix, and "1" to count a death in the
/// item's first byte (the executor's attempt counter). Answers the number requeued.
const REAP: &str = r"
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', ARGV[1] .. ':alive:' .. id) == 0 then
    local p = ARGV[1] .. ':processing:' .. id
    while true do
      local v = redis.call('LPOP', p)
      if not v then break end
      if ARGV[2] == '1' and #v > 0 then
        v = string.char(math.min(string.byte(v, 1) + 1, 255)) .. string.sub(v, 2)
      end
      redis.call('RPUSH', KEYS[1], v)
      n = n + 1
    end
    redis.call('SREM', KEYS[2], id)
  end
end
return n
";

/// After a reconnect: items in this consumer's processing list that it does not know it
/// received (a BLMOVE the server ran but whose reply was lost) go back to the queue.
/// KEYS: processing, items. ARGV: the items this consumer holds.
const RECLAIM: &str = r"
local known = {}
for i = 1, #ARGV do known[ARGV[i]] = (known[ARGV[i]] or 0) + 1 end
local n = 0
for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if (known[v] or 0) > 0 then
    known[v] = known[v] - 1
  else
    redis.call('LREM', KEYS[1], 1, v)
    redis.call('RPUSH', KEYS[2], v)
    n = n + 1
  end
end
return n
";

/// Moves up to ARGV[1] more items from the queue (KEYS[1]) into the processing list (KEYS[2]),
/// oldest first, in one command; answers them (a worker's prefetch).
const TAKE: &str = r"
local v = redis.call('RPOP', KEYS[1], ARGV[1])
if not v then return {} end
redis.call('LPUSH', KEYS[2], unpack(v))
return v
";

/// Deletes every key of a queue. KEYS: items, consumers. ARGV: the queue's key prefix.
const DELETE: &str = r"
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  redis.call('DEL', ARGV[1] .. ':processing:' .. id, ARGV[1] .. ':alive:' .. id)
end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
";

/// The Redis side of a queue (keys and scripts), shared by [`Queue`] and the executor.
pub(crate) struct RawQueue {
    prefix: String,
    items: String,
    consumers: String,
    heartbeat: Duration,
    /// Whether a requeue counts a death in the item's first byte (the executor's tasks).
    count_deaths: bool,
    /// `expire_after`: every command that touches the queue renews this TTL on its keys.
    expire: Option<Duration>,
    reap: redis::Script,
    reclaim: redis::Script,
}

impl RawQueue {
    pub(crate) fn new(name: &str, heartbeat: Duration) -> RawQueue {
        Self::with_death_count(name, heartbeat, false)
    }

    /// A queue whose requeue of a dead consumer's items adds one to each item's first byte.
    pub(crate) fn with_death_count(
        name: &str,
        heartbeat: Duration,
        count_deaths: bool,
    ) -> RawQueue {
        let prefix = format!("multiproc:queue:{name}");
        RawQueue {
            items: format!("{prefix}:items"),
            consumers: format!("{prefix}:consumers"),
            prefix,
            heartbeat,
            count_deaths,
            expire: None,
            reap: redis::Script::new(REAP),
            reclaim: redis::Script::new(RECLAIM),
        }
    }

    pub(crate) fn processing(&self, id: &str) -> String {
        format!("{}:processing:{id}", self.prefix)
    }

    /// The list of waiting items.
    pub(crate) fn items(&self) -> &str {
        &self.items
    }

    /// The set of consumer ids.
    pub(crate) fn consumers(&self) -> &str {
        &self.consumers
    }

    pub(crate) fn alive(&self, id: &str) -> String {
        format!("{}:alive:{id}", self.prefix)
    }

    /// Adds to `p` the renewal of the queue's TTL (with `expire_after`; nothing otherwise) on
    /// the list, the consumer set and `processing`.
    fn touch(&self, p: &mut redis::Pipeline, processing: Option<&str>) {
        let Some(ttl) = self.expire else { return };
        let ms = crate::conn::redis_millis(ttl);
        for key in [
            Some(self.items.as_str()),
            Some(self.consumers.as_str()),
            processing,
        ]
        .into_iter()
        .flatten()
        {
            p.cmd("PEXPIRE").arg(key).arg(ms).ignore();
        }
    }

    pub(crate) fn put(&self, conn: &mut Conn, bytes: &[u8]) -> Result<()> {
        conn.run(|c| {
            if self.expire.is_none() {
                // The common case stays one plain command.
                return redis::cmd("LPUSH")
                    .arg(&self.items)
                    .arg(bytes)
                    .query::<()>(c);
            }
            let mut p = redis::pipe();
            p.cmd("LPUSH").arg(&self.items).arg(bytes).ignore();
            self.touch(&mut p, None);
            p.query::<()>(c)
        })
    }

    /// Appends `items` in order, one `LPUSH` per chunk of [`PUT_CHUNK`]: one round trip each.
    pub(crate) fn put_many(&self, conn: &mut Conn, items: &[Vec<u8>]) -> Result<()> {
        for chunk in items.chunks(PUT_CHUNK) {
            conn.run(|c| {
                let mut p = redis::pipe();
                p.cmd("LPUSH").arg(&self.items);
                for item in chunk {
                    p.arg(item.as_slice());
                }
                p.ignore();
                self.touch(&mut p, None);
                p.query::<()>(c)
            })?;
        }
        Ok(())
    }

    pub(crate) fn len(&self, conn: &mut Conn) -> Result<usize> {
        conn.run(|c| redis::cmd("LLEN").arg(&self.items).query(c))
    }

    /// Drops every waiting item; answers how many there were.
    fn clear(&self, conn: &mut Conn) -> Result<usize> {
        conn.run(|c| {
            redis::pipe()
                .atomic()
                .cmd("LLEN")
                .arg(&self.items)
                .cmd("DEL")
                .arg(&self.items)
                .ignore()
                .query::<(usize,)>(c)
                .map(|(n,)| n)
        })
    }

    /// Deletes every key of the queue: items, consumers, their processing lists and
    /// heartbeats.
    fn delete(&self, conn: &mut Conn) -> Result<()> {
        let script = redis::Script::new(DELETE);
        conn.run(|c| {
            script
                .key(&self.items)
                .key(&self.consumers)
                .arg(&self.prefix)
                .invoke::<i64>(c)
        })
        .map(|_| ())
    }

    /// Requeues the items of every consumer whose heartbeat has expired.
    pub(crate) fn reap(&self, conn: &mut Conn) -> Result<usize> {
        self.reap_until(conn, None)
    }

    /// Like [`reap`](RawQueue::reap), within `deadline` (see [`Conn::run_until`]).
    fn reap_until(&self, conn: &mut Conn, deadline: Option<Instant>) -> Result<usize> {
        conn.run_until(deadline, |c| {
            self.reap
                .key(&self.items)
                .key(&self.consumers)
                .arg(&self.prefix)
                .arg(if self.count_deaths { "1" } else { "0" })
                .invoke(c)
        })
    }
}

/// This machine's host name (`/proc/sys/kernel/hostname`, `/etc/hostname` or `$HOSTNAME`),
/// `"?"` when none is found; spaces become `_` (the consumer record is space-separated).
pub(crate) fn host_name() -> String {
    let name = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().replace(char::is_whitespace, "_"))
        .unwrap_or_default();
    if name.is_empty() { "?".into() } else { name }
}

/// One consumer's registration: its id and the thread renewing its heartbeat.
struct Consumer {
    id: String,
    processing: String,
    stop: mpsc::Sender<()>,
    beat: Option<JoinHandle<()>>,
}

impl Consumer {
    fn register(raw: &RawQueue, conn: &mut Conn, deadline: Option<Instant>) -> Result<Consumer> {
        let id = random_token();
        let alive = raw.alive(&id);
        let ttl = crate::conn::redis_millis(raw.heartbeat);
        let consumers = raw.consumers.clone();
        let me = id.clone();
        let processing = raw.processing(&id);
        let expire = raw.expire.map(crate::conn::redis_millis);
        // What `info` shows of this consumer (see the module's keys).
        let record = format!("{ttl} {} {}", std::process::id(), host_name());
        let beat_once = move |c: &mut Wire| {
            let mut p = redis::pipe();
            p.atomic()
                .cmd("SET")
                .arg(&alive)
                .arg(&record)
                .arg("PX")
                .arg(ttl)
                .ignore()
                .cmd("SADD")
                .arg(&consumers)
                .arg(&me)
                .ignore();
            if let Some(ms) = expire {
                // A live consumer keeps an expiring queue's keys (and what it holds) alive.
                for key in [&consumers, &processing] {
                    p.cmd("PEXPIRE").arg(key).arg(ms).ignore();
                }
            }
            p.query::<()>(c)
        };
        conn.run_until(deadline, &beat_once)?;
        // Connects on its first beat.
        let mut beat_conn = conn.client().conn_lazy();
        let (stop, stopped) = mpsc::channel::<()>();
        let period = raw.heartbeat / 3;
        let beat = std::thread::Builder::new()
            .name("multiproc-redis-heartbeat".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(period) {
                    // A failure here (server down past the reconnect window) is retried on
                    // the next beat; the consumer's own calls report the outage.
                    let _ = beat_conn.run(&beat_once);
                }
            })?;
        Ok(Consumer {
            processing: raw.processing(&id),
            id,
            stop,
            beat: Some(beat),
        })
    }

    fn stop(&mut self) {
        let _ = self.stop.send(());
        if let Some(b) = self.beat.take() {
            let _ = b.join();
        }
    }
}

/// The receiving side of a queue handle: its connections, its consumer and what it holds.
///
/// Every method takes `&self`: threads share a handle. A blocking `BLMOVE` runs on a
/// connection taken from the pool, never under the state lock, so another thread's `put`,
/// `qsize` or `task_done` goes on (on another pooled connection) while it waits.
pub(crate) struct Receiver {
    pub(crate) raw: Arc<RawQueue>,
    pub(crate) pool: Pool,
    state: Mutex<RxState>,
}

struct RxState {
    consumer: Option<Consumer>,
    /// Items received and not yet acknowledged, oldest first.
    unacked: VecDeque<Vec<u8>>,
    last_reap: Option<Instant>,
    /// A `get` failed (the server out of reach): a `BLMOVE` it sent may have moved an item
    /// into the processing list without the reply reaching us; the next `get` puts such
    /// items back.
    reclaim_due: bool,
    /// The last `BLMOVE` of this handle found the queue empty: the next `get` looks for
    /// dead consumers' items first, so an idle consumer (a worker polling with short
    /// timeouts) requeues them within one poll, not one heartbeat.
    found_empty: bool,
}

impl Receiver {
    /// After a reconnect of `conn` (its count moved from `reconnects_before`), or when a
    /// reclaim is due: a move the server ran but whose answer was lost left items in our
    /// processing list that we never saw, and they go back to the queue; those we hold (`got`,
    /// and the unacknowledged ones) stay. (Another thread's get in flight on this handle may
    /// see its item requeued too: a duplicate, which at-least-once allows.)
    fn reclaim_unseen(
        &self,
        conn: &mut Conn,
        reconnects_before: u64,
        deadline: Option<Instant>,
        processing: &str,
        got: &[Vec<u8>],
    ) -> Result<()> {
        let due = std::mem::take(&mut self.state().reclaim_due);
        if conn.reconnects == reconnects_before && !due {
            return Ok(());
        }
        let known: Vec<Vec<u8>> = {
            let st = self.state();
            st.unacked.iter().chain(got).cloned().collect()
        };
        conn.run_until(deadline, |c| {
            let mut inv = self.raw.reclaim.key(processing);
            inv.key(&self.raw.items);
            for k in &known {
                inv.arg(k.as_slice());
            }
            inv.invoke::<i64>(c)
        })?;
        Ok(())
    }

    pub(crate) fn new(raw: Arc<RawQueue>, pool: Pool) -> Receiver {
        Receiver {
            raw,
            pool,
            state: Mutex::new(RxState {
                consumer: None,
                unacked: VecDeque::new(),
                last_reap: None,
                reclaim_due: false,
                found_empty: false,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, RxState> {
        lock(&self.state)
    }

    /// This handle's processing list, registering its consumer on first use.
    fn processing(&self, deadline: Option<Instant>) -> Result<String> {
        let mut st = self.state();
        if let Some(c) = &st.consumer {
            return Ok(c.processing.clone());
        }
        let c = self
            .pool
            .with(|conn| Consumer::register(&self.raw, conn, deadline))?;
        let p = c.processing.clone();
        st.consumer = Some(c);
        Ok(p)
    }

    /// Waits up to `timeout` (`None`: for ever) for an item; it stays in this consumer's
    /// processing list until [`ack`](Receiver::ack). With a timeout, `Err(Empty)` once it is
    /// over, even while the server is out of reach (a read or a reconnect never outlasts it).
    pub(crate) fn get_bytes(&self, timeout: Option<Duration>) -> Result<Vec<u8>> {
        let r = self.get_bytes_inner(timeout);
        if matches!(&r, Err(e) if !matches!(e, Error::Empty)) {
            self.state().reclaim_due = true;
        }
        match r {
            Err(Error::Timeout) => Err(Error::Empty),
            r => r,
        }
    }

    fn get_bytes_inner(&self, timeout: Option<Duration>) -> Result<Vec<u8>> {
        // `None` (no limit) also for a timeout past the end of the clock (`Duration::MAX`).
        let deadline = timeout.and_then(multiproc_sync::raw::deadline_after);
        let processing = self.processing(deadline)?;
        let mut first = true;
        loop {
            let reap = self.reap_due(!first);
            first = false;
            let wait = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(BLOCK_CHUNK),
                None => BLOCK_CHUNK,
            };
            let got = self.pool.with(|conn| {
                let before = conn.reconnects;
                if reap {
                    self.raw.reap_until(conn, deadline)?;
                }
                let got: Option<Vec<u8>> = conn.run_until(deadline, |c| {
                    let mut p = redis::pipe();
                    self.push_take(&mut p, &processing, wait);
                    self.raw.touch(&mut p, Some(&processing));
                    p.query::<(Option<Vec<u8>>,)>(c).map(|(v,)| v)
                })?;
                self.reclaim_unseen(conn, before, deadline, &processing, got.as_slice())?;
                Ok(got)
            })?;
            let mut st = self.state();
            st.found_empty = got.is_none();
            if let Some(bytes) = got {
                st.unacked.push_back(bytes.clone());
                return Ok(bytes);
            }
            drop(st);
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::Empty);
            }
        }
    }

    /// One round trip of a prefetching consumer (the executor's worker): sends the commands
    /// `before` adds (their replies ignored: the previous batch's completion rides here), then
    /// waits up to `wait` (at most [`BLOCK_CHUNK`]) for one item and takes up to `max - 1`
    /// more that are waiting, all moved into this consumer's processing list and held until
    /// [`forget_items`](Receiver::forget_items). `Ok` with no items when none came in time;
    /// on `Err` nothing is known of `before`'s effect (the caller sends it again: it must be
    /// idempotent), and items the server may have moved without the reply reaching us are
    /// put back by the next call.
    pub(crate) fn get_many(
        &self,
        wait: Duration,
        max: usize,
        before: &dyn Fn(&mut redis::Pipeline),
    ) -> Result<Vec<Vec<u8>>> {
        let r = self.get_many_inner(wait, max.max(1), before);
        if r.is_err() {
            self.state().reclaim_due = true;
        }
        r
    }

    fn get_many_inner(
        &self,
        wait: Duration,
        max: usize,
        before: &dyn Fn(&mut redis::Pipeline),
    ) -> Result<Vec<Vec<u8>>> {
        let wait = wait.min(BLOCK_CHUNK);
        let deadline = Some(Instant::now() + wait);
        let processing = self.processing(deadline)?;
        let reap = self.reap_due(false);
        let got = self.pool.with(|conn| {
            let before_reconnects = conn.reconnects;
            if reap {
                self.raw.reap_until(conn, deadline)?;
            }
            let got: Vec<Vec<u8>> = conn.run_until(deadline, |c| {
                let mut p = redis::pipe();
                before(&mut p);
                self.push_take(&mut p, &processing, wait);
                if max > 1 {
                    // EVAL, not EVALSHA: a server that lost its script cache (a restart)
                    // cannot fail the pipeline half-way.
                    p.cmd("EVAL")
                        .arg(TAKE)
                        .arg(2)
                        .arg(&self.raw.items)
                        .arg(&processing)
                        .arg(max - 1);
                }
                self.raw.touch(&mut p, Some(&processing));
                if max > 1 {
                    p.query::<(Option<Vec<u8>>, Vec<Vec<u8>>)>(c)
                        .map(|(first, rest)| first.into_iter().chain(rest).collect())
                } else {
                    p.query::<(Option<Vec<u8>>,)>(c)
                        .map(|(first,)| first.into_iter().collect())
                }
            })?;
            self.reclaim_unseen(conn, before_reconnects, deadline, &processing, &got)?;
            Ok(got)
        })?;
        let mut st = self.state();
        st.found_empty = got.is_empty();
        st.unacked.extend(got.iter().cloned());
        Ok(got)
    }

    /// Whether this round trip first puts back the items of dead consumers: once a heartbeat,
    /// after a round that found the queue empty, and on every later round of one `get`
    /// (`again`). Notes the time when it does.
    fn reap_due(&self, again: bool) -> bool {
        let mut st = self.state();
        let due = st
            .last_reap
            .is_none_or(|t| t.elapsed() >= self.raw.heartbeat);
        let reap = due || again || st.found_empty;
        if reap {
            st.last_reap = Some(Instant::now());
        }
        reap
    }

    /// Adds the move of the oldest item into `processing` to `p`: `BLMOVE`, waiting up to
    /// `wait` for one, or `LMOVE` when `wait` is zero (a blocking command with a zero timeout
    /// would wait for ever).
    fn push_take(&self, p: &mut redis::Pipeline, processing: &str, wait: Duration) {
        if wait.is_zero() {
            p.cmd("LMOVE");
        } else {
            p.cmd("BLMOVE");
        }
        p.arg(&self.raw.items)
            .arg(processing)
            .arg("RIGHT")
            .arg("LEFT");
        if !wait.is_zero() {
            p.arg(wait.as_secs_f64());
        }
    }

    /// `items` were acknowledged (or released) by the caller's own commands: no longer held.
    pub(crate) fn forget_items(&self, items: &[&[u8]]) {
        let mut st = self.state();
        for item in items {
            if let Some(i) = st.unacked.iter().position(|u| u.as_slice() == *item) {
                st.unacked.remove(i);
            }
        }
    }

    /// This handle's processing list, once its consumer has registered.
    pub(crate) fn processing_key(&self) -> Option<String> {
        self.state().consumer.as_ref().map(|c| c.processing.clone())
    }

    /// Acknowledges the oldest unacknowledged item: removed from the processing list before
    /// this returns `Ok`, so it is never delivered again.
    pub(crate) fn ack(&self) -> Result<()> {
        let (bytes, processing) = {
            let mut st = self.state();
            let processing = st.consumer.as_ref().map(|c| c.processing.clone());
            match (st.unacked.pop_front(), processing) {
                (Some(b), Some(p)) => (b, p),
                _ => {
                    return Err(Error::Invalid(
                        "task_done() called more times than there were items got".into(),
                    ));
                }
            }
        };
        let sent = self.pool.run(|c| {
            let mut p = redis::pipe();
            p.cmd("LREM").arg(&processing).arg(-1).arg(&bytes).ignore();
            self.raw.touch(&mut p, Some(&processing));
            p.query::<()>(c)
        });
        if sent.is_err() {
            // Still held: a later task_done (or the requeue of this consumer) deals with it.
            self.state().unacked.push_front(bytes);
        }
        sent
    }

    /// This handle's consumer id, once it has registered (on its first `get`).
    pub(crate) fn consumer_id(&self) -> Option<String> {
        self.state().consumer.as_ref().map(|c| c.id.clone())
    }

    /// Unacknowledged items (received, not yet [`ack`](Receiver::ack)ed).
    pub(crate) fn unacked(&self) -> usize {
        self.state().unacked.len()
    }

    /// Stops this handle's consumer without touching the server (before `delete`).
    fn forget(&self) {
        let mut st = self.state();
        st.unacked.clear();
        if let Some(mut c) = st.consumer.take() {
            c.stop();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        let Some(mut consumer) = st.consumer.take() else {
            return;
        };
        consumer.stop();
        let alive = self.raw.alive(&consumer.id);
        let consumers = self.raw.consumers.clone();
        let id = consumer.id.clone();
        let processing = consumer.processing.clone();
        let clean = st.unacked.is_empty();
        // Without a heartbeat, anything still held is requeued by the next reaper (here, at
        // once); with nothing held the consumer unregisters.
        let _ = self.pool.run_once(|c| {
            let mut p = redis::pipe();
            p.atomic().cmd("DEL").arg(&alive).ignore();
            if clean {
                p.cmd("SREM")
                    .arg(&consumers)
                    .arg(&id)
                    .ignore()
                    .cmd("DEL")
                    .arg(&processing)
                    .ignore();
            }
            p.query::<()>(c)
        });
        if !clean {
            let raw = Arc::clone(&self.raw);
            let _ = self.pool.run_once(|c| {
                raw.reap
                    .key(&raw.items)
                    .key(&raw.consumers)
                    .arg(&raw.prefix)
                    .arg(if raw.count_deaths { "1" } else { "0" })
                    .invoke::<i64>(c)
            });
        }
    }
}

/// A FIFO queue of `T` in Redis (`multiprocessing.Queue` between machines), with
/// at-least-once delivery.
///
/// Every handle that opens the same name, in any process on any machine, shares the queue.
/// Items are encoded with postcard. An item you [`get`](Queue::get) stays reserved for this
/// handle until [`task_done`](Queue::task_done): if this process dies first (or the handle is
/// dropped still holding it), the item goes back to the head of the queue once the handle's
/// heartbeat expires, and another consumer gets it. So a consumer may see an item twice:
/// make what it does idempotent.
///
/// ```
/// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
/// use multiproc::redis::Queue;
/// let name = format!("doc-{}", std::process::id());
/// let q: Queue<String> = Queue::open(&url, &name)?;
/// q.put("hello".to_string())?;
/// assert_eq!(q.qsize()?, 1);
/// assert_eq!(q.get()?, "hello");
/// q.task_done()?; // done with it: it is never delivered again
/// assert!(q.empty()?);
/// # Ok::<(), multiproc::Error>(())
/// ```
///
/// A handle is `Sync`: share it between threads (`Arc<Queue<T>>`). A thread waiting in
/// `get` holds a connection of its own, so the other threads' `put`, `qsize` and
/// `task_done` answer meanwhile (each call borrows one of the handle's connections, opening
/// another only when all are busy).
///
/// The queue lives in the server, not in the program: it outlives every handle and every
/// run (unlike a `BaseManager` queue, gone with its manager process). Start a run with
/// [`clear`](Queue::clear), end it with [`delete`](Queue::delete), or build the queue with
/// [`expire_after`](QueueBuilder::expire_after) so that it disappears once no handle has
/// touched it for that long.
pub struct Queue<T> {
    name: String,
    rx: Receiver,
    _items: PhantomData<fn(T) -> T>,
}

/// Settings of a [`Queue`] before it opens: heartbeat, expiry, client.
///
/// ```
/// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
/// use multiproc::redis::Queue;
/// use std::time::Duration;
/// let q: Queue<u32> = Queue::builder(&url, "doc-builder")
///     .heartbeat(Duration::from_secs(2))
///     .expire_after(Duration::from_secs(3600))
///     .build()?;
/// # Ok::<(), multiproc::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct QueueBuilder {
    url: String,
    client: Option<Client>,
    name: String,
    heartbeat: Duration,
    expire: Option<Duration>,
}

impl QueueBuilder {
    /// How soon after a consumer dies the items it held go to someone else (default 5 s; at
    /// least 30 ms). See [`Queue::with_client`].
    ///
    /// ```
    /// let b = multiproc::redis::Queue::builder("redis://127.0.0.1/", "jobs").heartbeat(std::time::Duration::from_secs(1));
    /// ```
    pub fn heartbeat(mut self, d: Duration) -> Self {
        self.heartbeat = d;
        self
    }

    /// Makes the queue's keys expire once no handle has touched them for `idle` (a put, a
    /// get, a `task_done`, or a consumer's heartbeat, which also renews what it holds): the
    /// queue of a program that ended goes away on its own. The heartbeat is shortened to
    /// `idle` if it was longer. Every handle of the queue should use the same setting: one
    /// without it does not renew the TTL, and an item it puts into a queue that had expired
    /// makes a list with no TTL.
    ///
    /// ```
    /// let b = multiproc::redis::Queue::builder("redis://127.0.0.1/", "jobs").expire_after(std::time::Duration::from_secs(600));
    /// ```
    pub fn expire_after(mut self, idle: Duration) -> Self {
        self.expire = Some(idle);
        self
    }

    /// Connects through `client` (its reconnect window) instead of the URL.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// use multiproc::redis::{Client, Queue};
    /// let q: Queue<u8> = Queue::builder("", "doc-builder-client").client(&Client::open(&url)?).build()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn client(mut self, client: &Client) -> Self {
        self.client = Some(client.clone());
        self
    }

    /// Connects and opens the queue.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let q: multiproc::redis::Queue<u8> = multiproc::redis::Queue::builder(&url, "doc-build").build()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn build<T: Serialize + DeserializeOwned>(self) -> Result<Queue<T>> {
        if self.heartbeat < Duration::from_millis(30) {
            return Err(Error::Invalid("a heartbeat shorter than 30 ms".into()));
        }
        if self.expire.is_some_and(|d| d < Duration::from_millis(30)) {
            return Err(Error::Invalid("an expiry shorter than 30 ms".into()));
        }
        let client = match self.client {
            Some(c) => c,
            None => Client::open(&self.url)?,
        };
        let heartbeat = self
            .expire
            .map_or(self.heartbeat, |e| e.min(self.heartbeat));
        let mut raw = RawQueue::new(&self.name, heartbeat);
        raw.expire = self.expire;
        Ok(Queue {
            name: self.name,
            rx: Receiver::new(Arc::new(raw), Pool::new(&client)?),
            _items: PhantomData,
        })
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue").field("name", &self.name).finish()
    }
}

/// Locks `m`, carrying on after a panic in another thread (the state stays consistent: every
/// change is one Redis command).
fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Queue<()> {
    // On `Queue<()>` so that `Queue::builder` needs no item type: `build` picks it.
    /// Settings before opening the queue `name` on the server at `url` (see
    /// [`QueueBuilder`]).
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let q: multiproc::redis::Queue<u8> = multiproc::redis::Queue::builder(&url, "doc-builder-fn").build()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn builder(url: &str, name: &str) -> QueueBuilder {
        QueueBuilder {
            url: url.to_string(),
            client: None,
            name: name.to_string(),
            heartbeat: DEFAULT_HEARTBEAT,
            expire: None,
        }
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// Opens (or creates) the queue `name` on the server at `url`.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let q: multiproc::redis::Queue<u32> = multiproc::redis::Queue::open(&url, "doc-open")?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn open(url: &str, name: &str) -> Result<Queue<T>> {
        Self::with_client(&Client::open(url)?, name, DEFAULT_HEARTBEAT)
    }

    /// Opens the queue `name` through `client`, with a consumer heartbeat of `heartbeat`: how
    /// soon after this process dies the items it held are handed to someone else.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// use multiproc::redis::{Client, Queue};
    /// use std::time::Duration;
    /// let q: Queue<u32> = Queue::with_client(&Client::open(&url)?, "doc-hb", Duration::from_secs(2))?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn with_client(client: &Client, name: &str, heartbeat: Duration) -> Result<Queue<T>> {
        Queue::builder("", name)
            .client(client)
            .heartbeat(heartbeat)
            .build()
    }

    /// Appends `item` (`LPUSH`). Once it returns `Ok`, the server holds the item.
    ///
    /// Takes the item by value or by reference (`impl Borrow<T>`), so `put(x)` reads like
    /// `multiproc::Queue::put(x)` and `put(&x)` keeps `x`.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let q: multiproc::redis::Queue<(u8, String)> = multiproc::redis::Queue::open(&url, "doc-put")?;
    /// let item = (1u8, "one".to_string());
    /// q.put(&item)?; // by reference: `item` stays usable
    /// q.put(item)?;  // by value, like multiproc::Queue
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn put(&self, item: impl Borrow<T>) -> Result<()> {
        let bytes = postcard::to_stdvec(item.borrow()).map_err(|e| Error::Codec(e.to_string()))?;
        self.rx.pool.with(|c| self.rx.raw.put(c, &bytes))
    }

    /// Takes the oldest item, waiting as long as it takes.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let q: multiproc::redis::Queue<u64> = multiproc::redis::Queue::open(&url, "doc-get")?;
    /// q.put(5)?;
    /// assert_eq!(q.get()?, 5);
    /// q.task_done()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn get(&self) -> Result<T> {
        self.get_inner(None)
    }

    /// Takes the oldest item, waiting at most `timeout`: `Err(Empty)` after it, also while
    /// the server is out of reach (the deadline holds within about a quarter of a second),
    /// unless the client's reconnect window runs out first (`Err(Redis)`).
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// use std::time::Duration;
    /// let q: multiproc::redis::Queue<u8> = multiproc::redis::Queue::open(&url, "doc-get-timeout")?;
    /// assert!(matches!(q.get_timeout(Duration::from_millis(10)), Err(multiproc::Error::Empty)));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        self.get_inner(Some(timeout))
    }

    fn get_inner(&self, timeout: Option<Duration>) -> Result<T> {
        let rx = &self.rx;
        let bytes = rx.get_bytes(timeout)?;
        match decode_exact(&bytes) {
            Ok(v) => Ok(v),
            Err(e) => {
                // Not a `T`: dropped from the queue, reported once.
                rx.ack()?;
                Err(Error::Codec(format!("queue {:?}: {e}", self.name)))
            }
        }
    }

    /// Acknowledges the oldest item this handle got and has not acknowledged: it is done and
    /// never delivered again. `Err(Invalid)` when there is none.
    ///
    /// The acknowledgement reaches the server before this returns `Ok` (one round trip): a
    /// process killed right after `task_done` never sees the item delivered again. On
    /// `Err` the item stays unacknowledged (and is requeued if this consumer dies).
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let q: multiproc::redis::Queue<u8> = multiproc::redis::Queue::open(&url, "doc-task-done")?;
    /// assert!(matches!(q.task_done(), Err(multiproc::Error::Invalid(_))));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    #[doc(alias = "ack")]
    pub fn task_done(&self) -> Result<()> {
        self.rx.ack()
    }

    /// Items got by this handle and not yet acknowledged.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let q: multiproc::redis::Queue<u8> = multiproc::redis::Queue::open(&url, "doc-unacked")?;
    /// assert_eq!(q.unfinished(), 0);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn unfinished(&self) -> usize {
        self.rx.unacked()
    }

    /// The number of items waiting (`LLEN`; not counting those being worked on).
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let q: multiproc::redis::Queue<u8> = multiproc::redis::Queue::open(&url, "doc-qsize")?;
    /// assert_eq!(q.qsize()?, 0);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn qsize(&self) -> Result<usize> {
        self.rx.pool.with(|c| self.rx.raw.len(c))
    }

    /// Whether no item is waiting.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let q: multiproc::redis::Queue<u8> = multiproc::redis::Queue::open(&url, "doc-empty")?;
    /// assert!(q.empty()?);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn empty(&self) -> Result<bool> {
        Ok(self.qsize()? == 0)
    }

    /// Requeues now the items held by consumers whose heartbeat has expired (every `get`
    /// does this on its own, at most once per heartbeat period); answers how many.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let q: multiproc::redis::Queue<u8> = multiproc::redis::Queue::open(&url, "doc-requeue")?;
    /// assert_eq!(q.requeue_dead()?, 0);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn requeue_dead(&self) -> Result<usize> {
        self.rx.pool.with(|c| self.rx.raw.reap(c))
    }

    /// Drops every waiting item (items being worked on are left to their consumers); answers
    /// how many there were. A queue lives in the server across runs: a program that must not
    /// read an earlier run's leftovers clears it first.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let q: multiproc::redis::Queue<u8> = multiproc::redis::Queue::open(&url, &format!("doc-clear-{}", std::process::id()))?;
    /// q.put(1)?;
    /// assert_eq!(q.clear()?, 1);
    /// assert!(q.empty()?);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn clear(&self) -> Result<usize> {
        self.rx.pool.with(|c| self.rx.raw.clear(c))
    }

    /// Deletes the queue from the server: waiting items, the items every consumer holds, and
    /// its bookkeeping keys. Consumes this handle (its own unacknowledged items go with the
    /// rest); other handles still open keep working, and their heartbeats recreate their own
    /// bookkeeping keys.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let q: multiproc::redis::Queue<u8> = multiproc::redis::Queue::open(&url, "doc-delete")?;
    /// q.put(1)?;
    /// q.delete()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn delete(self) -> Result<()> {
        self.rx.forget();
        self.rx.pool.with(|c| self.rx.raw.delete(c))
    }
}
