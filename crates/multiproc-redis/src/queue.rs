//! [`Queue`]: a FIFO queue in a Redis list, shared by every process that names it, on any
//! machine, with at-least-once delivery.
//!
//! Keys, for a queue named `N`: `multiproc:queue:N:items` (the list; `put` pushes on the left,
//! consumers take from the right), `…:consumers` (a set of consumer ids), `…:processing:ID`
//! (the items consumer `ID` holds and has not acknowledged) and `…:alive:ID` (its heartbeat,
//! a key with a TTL that a background thread renews).
//!
//! A consumer's `get` moves an item atomically (`BLMOVE`) from the list into its processing
//! list; [`Queue::task_done`] removes it there. When a consumer's heartbeat expires (its
//! process died, or the handle was dropped holding unacknowledged items), the next consumer
//! that looks (at most once per heartbeat period, and whenever a `get` finds the queue empty)
//! moves its processing list back to the head of the queue, in one Lua script, so exactly one
//! consumer requeues it.

use crate::conn::{BLOCK_CHUNK, Client, Conn, random_token};
use crate::wire::Wire;
use multiproc_sync::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a consumer's heartbeat lives, by default; it is renewed every third of it.
pub(crate) const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

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

/// The Redis side of a queue (keys and scripts), shared by [`Queue`] and the executor.
pub(crate) struct RawQueue {
    prefix: String,
    items: String,
    consumers: String,
    heartbeat: Duration,
    /// Whether a requeue counts a death in the item's first byte (the executor's tasks).
    count_deaths: bool,
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
            reap: redis::Script::new(REAP),
            reclaim: redis::Script::new(RECLAIM),
        }
    }

    fn processing(&self, id: &str) -> String {
        format!("{}:processing:{id}", self.prefix)
    }

    fn alive(&self, id: &str) -> String {
        format!("{}:alive:{id}", self.prefix)
    }

    pub(crate) fn put(&self, conn: &mut Conn, bytes: &[u8]) -> Result<()> {
        conn.run(|c| {
            redis::cmd("LPUSH")
                .arg(&self.items)
                .arg(bytes)
                .query::<()>(c)
        })
    }

    pub(crate) fn len(&self, conn: &mut Conn) -> Result<usize> {
        conn.run(|c| redis::cmd("LLEN").arg(&self.items).query(c))
    }

    /// Requeues the items of every consumer whose heartbeat has expired.
    pub(crate) fn reap(&self, conn: &mut Conn) -> Result<usize> {
        conn.run(|c| {
            self.reap
                .key(&self.items)
                .key(&self.consumers)
                .arg(&self.prefix)
                .arg(if self.count_deaths { "1" } else { "0" })
                .invoke(c)
        })
    }
}

/// One consumer's registration: its id and the thread renewing its heartbeat.
struct Consumer {
    id: String,
    processing: String,
    stop: mpsc::Sender<()>,
    beat: Option<JoinHandle<()>>,
}

impl Consumer {
    fn register(raw: &RawQueue, conn: &mut Conn) -> Result<Consumer> {
        let id = random_token();
        let alive = raw.alive(&id);
        let ttl = raw.heartbeat.as_millis() as u64;
        let consumers = raw.consumers.clone();
        let me = id.clone();
        let beat_once = move |c: &mut Wire| {
            redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(&alive)
                .arg(1)
                .arg("PX")
                .arg(ttl)
                .ignore()
                .cmd("SADD")
                .arg(&consumers)
                .arg(&me)
                .ignore()
                .query::<()>(c)
        };
        conn.run(&beat_once)?;
        let mut beat_conn = conn.client().conn()?;
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

/// The receiving side of a queue handle: a connection, its consumer and what it holds.
pub(crate) struct Receiver {
    pub(crate) raw: Arc<RawQueue>,
    pub(crate) conn: Conn,
    consumer: Option<Consumer>,
    /// Items received and not yet acknowledged, oldest first.
    unacked: VecDeque<Vec<u8>>,
    /// Items acknowledged whose `LREM` has not been sent yet: it goes in the same pipeline as
    /// the next `BLMOVE` (one round trip saved per item), or on drop.
    acked: Vec<Vec<u8>>,
    last_reap: Option<Instant>,
}

impl Receiver {
    pub(crate) fn new(raw: Arc<RawQueue>, conn: Conn) -> Receiver {
        Receiver {
            raw,
            conn,
            consumer: None,
            unacked: VecDeque::new(),
            acked: Vec::new(),
            last_reap: None,
        }
    }

    /// Waits up to `timeout` (`None`: for ever) for an item; it stays in this consumer's
    /// processing list until [`ack`](Receiver::ack).
    pub(crate) fn get_bytes(&mut self, timeout: Option<Duration>) -> Result<Vec<u8>> {
        if self.consumer.is_none() {
            self.consumer = Some(Consumer::register(&self.raw, &mut self.conn)?);
        }
        let processing = self
            .consumer
            .as_ref()
            .map(|c| c.processing.clone())
            .unwrap_or_default();
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut first = true;
        loop {
            let due = self
                .last_reap
                .is_none_or(|t| t.elapsed() >= self.raw.heartbeat);
            if due || !first {
                self.raw.reap(&mut self.conn)?;
                self.last_reap = Some(Instant::now());
            }
            first = false;
            let wait = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(BLOCK_CHUNK),
                None => BLOCK_CHUNK,
            };
            let before = self.conn.reconnects;
            let acked = std::mem::take(&mut self.acked);
            let got: Option<Vec<u8>> = self.conn.run(|c| {
                let mut p = redis::pipe();
                for bytes in &acked {
                    p.cmd("LREM").arg(&processing).arg(-1).arg(bytes).ignore();
                }
                if wait.is_zero() {
                    p.cmd("LMOVE");
                } else {
                    p.cmd("BLMOVE");
                }
                p.arg(&self.raw.items)
                    .arg(&processing)
                    .arg("RIGHT")
                    .arg("LEFT");
                if !wait.is_zero() {
                    p.arg(wait.as_secs_f64());
                }
                p.query::<(Option<Vec<u8>>,)>(c).map(|(v,)| v)
            })?;
            if self.conn.reconnects != before {
                // A BLMOVE the server ran but whose answer was lost left an item in our
                // processing list that we never saw: put it back.
                let known: Vec<&Vec<u8>> = self.unacked.iter().chain(got.as_ref()).collect();
                self.conn.run(|c| {
                    let mut inv = self.raw.reclaim.key(&processing);
                    inv.key(&self.raw.items);
                    for k in &known {
                        inv.arg(k.as_slice());
                    }
                    inv.invoke::<i64>(c)
                })?;
            }
            if let Some(bytes) = got {
                self.unacked.push_back(bytes.clone());
                return Ok(bytes);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::Empty);
            }
        }
    }

    /// Acknowledges the oldest unacknowledged item (sent with the next command of this
    /// receiver, see `acked`).
    pub(crate) fn ack(&mut self) -> Result<()> {
        let Some(bytes) = self.unacked.pop_front() else {
            return Err(Error::Invalid(
                "task_done() called more times than there were items got".into(),
            ));
        };
        self.acked.push(bytes);
        Ok(())
    }

    /// Sends the acknowledgements not sent yet.
    pub(crate) fn flush_acks(&mut self, once: bool) -> Result<()> {
        let Some(processing) = self.consumer.as_ref().map(|c| c.processing.clone()) else {
            return Ok(());
        };
        if self.acked.is_empty() {
            return Ok(());
        }
        let acked = std::mem::take(&mut self.acked);
        let send = |c: &mut Wire| {
            let mut p = redis::pipe();
            for bytes in &acked {
                p.cmd("LREM").arg(&processing).arg(-1).arg(bytes).ignore();
            }
            p.query::<()>(c)
        };
        if once {
            self.conn.run_once(send)
        } else {
            self.conn.run(send)
        }
    }

    /// Unacknowledged items (received, not yet [`ack`](Receiver::ack)ed).
    pub(crate) fn unacked(&self) -> usize {
        self.unacked.len()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.flush_acks(true);
        let Some(mut consumer) = self.consumer.take() else {
            return;
        };
        consumer.stop();
        let alive = self.raw.alive(&consumer.id);
        let consumers = self.raw.consumers.clone();
        let id = consumer.id.clone();
        let processing = consumer.processing.clone();
        let clean = self.unacked.is_empty();
        // Without a heartbeat, anything still held is requeued by the next reaper (here, at
        // once); with nothing held the consumer unregisters.
        let _ = self.conn.run_once(|c| {
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
            let _ = self.conn.run_once(|c| {
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
/// q.put(&"hello".to_string())?;
/// assert_eq!(q.qsize()?, 1);
/// assert_eq!(q.get()?, "hello");
/// q.task_done()?; // done with it: it is never delivered again
/// assert!(q.empty()?);
/// # Ok::<(), multiproc::Error>(())
/// ```
pub struct Queue<T> {
    name: String,
    rx: Mutex<Receiver>,
    tx: Mutex<Conn>,
    _items: PhantomData<fn(T) -> T>,
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
        if heartbeat < Duration::from_millis(30) {
            return Err(Error::Invalid("a heartbeat shorter than 30 ms".into()));
        }
        let raw = Arc::new(RawQueue::new(name, heartbeat));
        Ok(Queue {
            name: name.to_string(),
            rx: Mutex::new(Receiver::new(raw, client.conn()?)),
            tx: Mutex::new(client.conn()?),
            _items: PhantomData,
        })
    }

    /// Appends `item` (`LPUSH`). Once it returns `Ok`, the server holds the item.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let q = multiproc::redis::Queue::open(&url, "doc-put")?;
    /// q.put(&(1u8, "one".to_string()))?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn put(&self, item: &T) -> Result<()> {
        let bytes = postcard::to_stdvec(item).map_err(|e| Error::Codec(e.to_string()))?;
        let raw = Arc::clone(&lock(&self.rx).raw);
        raw.put(&mut lock(&self.tx), &bytes)
    }

    /// Takes the oldest item, waiting as long as it takes.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let q = multiproc::redis::Queue::open(&url, "doc-get")?;
    /// q.put(&5u64)?;
    /// assert_eq!(q.get()?, 5);
    /// q.task_done()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn get(&self) -> Result<T> {
        self.get_inner(None)
    }

    /// Takes the oldest item, waiting at most `timeout`: `Err(Empty)` after it.
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
        let mut rx = lock(&self.rx);
        let bytes = rx.get_bytes(timeout)?;
        match postcard::from_bytes(&bytes) {
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
    /// The acknowledgement travels with this handle's next `get` (in the same round trip), or
    /// when the handle drops; a process killed in between gets the item delivered again, as
    /// at-least-once allows.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let q: multiproc::redis::Queue<u8> = multiproc::redis::Queue::open(&url, "doc-task-done")?;
    /// assert!(matches!(q.task_done(), Err(multiproc::Error::Invalid(_))));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    #[doc(alias = "ack")]
    pub fn task_done(&self) -> Result<()> {
        lock(&self.rx).ack()
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
        lock(&self.rx).unacked()
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
        let raw = Arc::clone(&lock(&self.rx).raw);
        raw.len(&mut lock(&self.tx))
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
        let raw = Arc::clone(&lock(&self.rx).raw);
        raw.reap(&mut lock(&self.tx))
    }
}
