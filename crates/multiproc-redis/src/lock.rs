//! [`Lock`]: a lease-based mutual-exclusion lock in Redis (`SET key token NX PX lease`), released
//! by a script only while the caller's token still holds it.

use crate::conn::{Client, Pool, random_token};
use multiproc_sync::{Error, Result};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Deletes the key only if it still holds this token. KEYS: lock. ARGV: token.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Renews the lease only if the key still holds this token. KEYS: lock. ARGV: token, lease ms.
const EXTEND: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
";

/// A lock shared by every process that names it, on any machine (a `multiprocessing.Lock`
/// across machines, Redis' single-instance lock pattern).
///
/// Holding it is a lease: it lapses `lease` after [`acquire`](Lock::acquire) unless
/// [`extend`](Lock::extend)ed, so a holder that crashes never blocks the others for longer
/// than its lease. A holder whose lease lapsed has lost the lock: [`release`](Lock::release)
/// and [`extend`](Lock::extend) then answer `Ok(false)` and touch nothing.
///
/// A handle is `Sync` and works like a `threading.Lock` between the threads that share it
/// (`Arc<Lock>`): a thread waiting in `acquire` holds no connection or lock that the others
/// need, so the holder's `release`, `extend` and `owned` answer meanwhile, and the release
/// lets the waiter in. The lease belongs to the handle, not to a thread: any thread of the
/// handle may release it.
///
/// ```
/// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
/// use multiproc::redis::Lock;
/// use std::time::Duration;
/// let a = Lock::open(&url, "doc-lock", Duration::from_secs(10))?;
/// let b = Lock::open(&url, "doc-lock", Duration::from_secs(10))?;
/// assert!(a.acquire_timeout(Duration::ZERO)?);
/// assert!(!b.acquire_timeout(Duration::from_millis(20))?); // a holds it
/// assert!(a.release()?);
/// assert!(b.acquire_timeout(Duration::ZERO)?);
/// b.release()?;
/// # Ok::<(), multiproc::Error>(())
/// ```
pub struct Lock {
    key: String,
    lease: Duration,
    /// The token of this handle's lease, if it holds the lock. Never held across a command.
    token: Mutex<Option<String>>,
    pool: Pool,
    release: redis::Script,
    extend: redis::Script,
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("key", &self.key)
            .field("lease", &self.lease)
            .finish()
    }
}

impl Lock {
    /// Opens the lock `name` on the server at `url`, with leases of `lease`.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let l = multiproc::redis::Lock::open(&url, "doc-open-lock", std::time::Duration::from_secs(5))?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn open(url: &str, name: &str, lease: Duration) -> Result<Lock> {
        Self::with_client(&Client::open(url)?, name, lease)
    }

    /// Like [`open`](Lock::open), through an existing client.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// use multiproc::redis::{Client, Lock};
    /// let l = Lock::with_client(&Client::open(&url)?, "doc-lock-client", std::time::Duration::from_secs(5))?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn with_client(client: &Client, name: &str, lease: Duration) -> Result<Lock> {
        if lease < Duration::from_millis(1) {
            return Err(Error::Invalid("a lock lease shorter than 1 ms".into()));
        }
        Ok(Lock {
            key: format!("multiproc:lock:{name}"),
            lease,
            token: Mutex::new(None),
            pool: Pool::new(client)?,
            release: redis::Script::new(RELEASE),
            extend: redis::Script::new(EXTEND),
        })
    }

    fn token(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.token.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn try_once(&self, deadline: Option<Instant>) -> Result<bool> {
        let token = random_token();
        let key = &self.key;
        let ms = crate::conn::redis_millis(self.lease);
        let won = self.pool.with(|conn| {
            let got: Option<String> = conn.run_until(deadline, |c| {
                redis::cmd("SET")
                    .arg(key)
                    .arg(&token)
                    .arg("NX")
                    .arg("PX")
                    .arg(ms)
                    .query(c)
            })?;
            if got.is_some() {
                return Ok(true);
            }
            // A SET whose reply was lost to a reconnect may have taken the lock for this token.
            let holder: Option<String> =
                conn.run_until(deadline, |c| redis::cmd("GET").arg(key).query(c))?;
            Ok(holder.as_deref() == Some(token.as_str()))
        })?;
        if won {
            *self.token() = Some(token);
        }
        Ok(won)
    }

    /// Waits until the lock is free and takes it.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let l = multiproc::redis::Lock::open(&url, "doc-acquire", std::time::Duration::from_secs(5))?;
    /// l.acquire()?;
    /// l.release()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn acquire(&self) -> Result<()> {
        self.acquire_inner(None).map(|_| ())
    }

    /// Tries for at most `timeout` (`Duration::ZERO`: once): `Ok(true)` when taken,
    /// `Ok(false)` when it stayed held (by another handle, or by this one: another thread
    /// of it must release it first), or when the server stayed out of reach until the
    /// deadline (which holds within about a quarter of a second; `Err(Redis)` when the
    /// client's reconnect window runs out first). A `SET` whose reply was lost to such a
    /// cut may have taken the lock for a token this handle then forgets: it stays taken
    /// until its lease ends.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let l = multiproc::redis::Lock::open(&url, "doc-acquire-timeout", std::time::Duration::from_secs(5))?;
    /// assert!(l.acquire_timeout(std::time::Duration::ZERO)?);
    /// l.release()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        self.acquire_inner(Some(timeout))
    }

    fn acquire_inner(&self, timeout: Option<Duration>) -> Result<bool> {
        // `None` (no limit) also for a timeout past the end of the clock (`Duration::MAX`).
        let deadline = timeout.and_then(multiproc_sync::raw::deadline_after);
        // Redis has no blocking SET NX: retry with a growing pause (the holder's release or
        // lease end cannot be waited on without polling or a pub/sub side channel).
        let mut pause = Duration::from_millis(1);
        loop {
            match self.try_once(deadline) {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                // The deadline passed with the server out of reach (a network cut).
                Err(Error::Timeout) => return Ok(false),
                Err(e) => return Err(e),
            }
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    return Ok(false);
                }
                pause = pause.min(d - now);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Releases the lock if this handle still holds it: `Ok(false)` when its lease had
    /// lapsed (and someone else may hold it now, untouched). `Err(Invalid)` if this handle
    /// never acquired it.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let l = multiproc::redis::Lock::open(&url, "doc-release", std::time::Duration::from_secs(5))?;
    /// l.acquire()?;
    /// assert!(l.release()?);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn release(&self) -> Result<bool> {
        let Some(token) = self.token().take() else {
            return Err(Error::Invalid(format!("lock {:?} is not held", self.key)));
        };
        let n: i64 = self
            .pool
            .run(|c| self.release.key(&self.key).arg(&token).invoke(c))?;
        Ok(n == 1)
    }

    /// Renews the lease for another `lease` from now: `Ok(false)` (and the handle no longer
    /// holds it) when it had lapsed already.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let l = multiproc::redis::Lock::open(&url, "doc-extend", std::time::Duration::from_secs(5))?;
    /// l.acquire()?;
    /// assert!(l.extend()?);
    /// l.release()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn extend(&self) -> Result<bool> {
        let Some(token) = self.token().clone() else {
            return Err(Error::Invalid(format!("lock {:?} is not held", self.key)));
        };
        let ms = crate::conn::redis_millis(self.lease);
        let n: i64 = self
            .pool
            .run(|c| self.extend.key(&self.key).arg(&token).arg(ms).invoke(c))?;
        if n != 1 {
            let mut held = self.token();
            // Unless another thread of this handle took a new lease meanwhile.
            if held.as_deref() == Some(token.as_str()) {
                *held = None;
            }
        }
        Ok(n == 1)
    }

    /// Whether this handle holds the lock as far as the server knows now.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let l = multiproc::redis::Lock::open(&url, "doc-owned", std::time::Duration::from_secs(5))?;
    /// assert!(!l.owned()?);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn owned(&self) -> Result<bool> {
        let Some(token) = self.token().clone() else {
            return Ok(false);
        };
        let holder: Option<String> = self
            .pool
            .run(|c| redis::cmd("GET").arg(&self.key).query(c))?;
        Ok(holder.as_deref() == Some(token.as_str()))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let token = self
            .token
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(token) = token {
            let _ = self
                .pool
                .run_once(|c| self.release.key(&self.key).arg(&token).invoke::<i64>(c));
        }
    }
}
