//! Password hashes, and the process-wide pool that checks them: a few at a time on Tokio's
//! blocking threads, a bounded number waiting, and a refusal (503) beyond that.
//!
//! A bcrypt or argon2 check takes milliseconds of CPU on purpose. Unbounded, a flood of wrong
//! passwords queues hashes without end and pins every core; here at most `max_concurrent_hashes`
//! run at once and `max_queued_hashes` wait, so the flood costs a fixed share of the CPU and the
//! excess is refused at once without hashing.

use argon2::PasswordVerifier;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use tokio::sync::Semaphore;

/// Which scheme a stored password hash uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scheme {
    Bcrypt,
    Argon2,
}

impl Scheme {
    /// Recognises and fully parses `hash`, so a bad hash is a config error, not a 401 later.
    pub(super) fn of(hash: &str) -> Option<Scheme> {
        if ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
            return hash.parse::<bcrypt::HashParts>().is_ok().then_some(Scheme::Bcrypt);
        }
        let parsed = argon2::PasswordHash::new(hash).ok()?;
        let known = [argon2::ARGON2ID_IDENT, argon2::ARGON2I_IDENT, argon2::ARGON2D_IDENT];
        known.contains(&parsed.algorithm).then_some(Scheme::Argon2)
    }

    /// Whether `password` matches `hash`; slow, call it off the event loop.
    fn verify(self, password: &[u8], hash: &str) -> bool {
        match self {
            Scheme::Bcrypt => bcrypt::verify(password, hash).unwrap_or(false),
            Scheme::Argon2 => argon2::Argon2::default().verify_password(password, hash).is_ok(),
        }
    }
}

/// The default `max_concurrent_hashes`: half the CPUs, at least one, so that a flood of logins
/// leaves the other half to proxying.
pub(super) fn default_max_concurrent() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(2))
}

/// The default `max_queued_hashes`: with bcrypt's usual cost (50 to 100 ms a hash) a login waits
/// about a second at most on one hashing thread.
pub(super) const DEFAULT_MAX_QUEUED: usize = 16;

/// Hashes being checked (running or waiting) in one process, bounded.
#[derive(Debug)]
pub(super) struct HashPool {
    /// One permit per hash that may run at once.
    running: Arc<Semaphore>,
    /// Hashes admitted and not finished: running, or waiting for a permit.
    admitted: AtomicUsize,
    /// `max_concurrent_hashes + max_queued_hashes`.
    capacity: usize,
}

/// A place in the pool, given back when dropped (once the hash is done, or the login that
/// waited for it is gone).
pub(super) struct Admission(Arc<HashPool>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Logins refused with 503 because the pool was full, since the process started.
static OVERLOADED: AtomicU64 = AtomicU64::new(0);

/// How many logins every `basic_auth` filter of this process refused because its hashing pool was
/// full (503 `overloaded`): a counter for metrics, never reset.
pub fn overloaded_total() -> u64 {
    OVERLOADED.load(Ordering::Relaxed)
}

impl HashPool {
    /// The pool of every `basic_auth` filter with these numbers, in any config that runs now: by
    /// default, one pool for the whole process, carried across reloads (hashes still running for
    /// the old config count against the new one).
    pub(super) fn shared(max_concurrent: usize, max_queued: usize) -> Arc<HashPool> {
        type Pools = Mutex<HashMap<(usize, usize), Weak<HashPool>>>;
        static POOLS: LazyLock<Pools> = LazyLock::new(Default::default);
        let mut pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
        pools.retain(|_, pool| pool.strong_count() > 0);
        if let Some(pool) = pools.get(&(max_concurrent, max_queued)).and_then(Weak::upgrade) {
            return pool;
        }
        let pool = Arc::new(HashPool::new(max_concurrent, max_queued));
        pools.insert((max_concurrent, max_queued), Arc::downgrade(&pool));
        pool
    }

    /// A pool of its own (for tests).
    pub(super) fn new(max_concurrent: usize, max_queued: usize) -> HashPool {
        HashPool {
            running: Arc::new(Semaphore::new(max_concurrent)),
            admitted: AtomicUsize::new(0),
            capacity: max_concurrent.saturating_add(max_queued),
        }
    }

    /// A place for one more hash, or `None` when the pool is full (the caller answers 503;
    /// counted in [`overloaded_total`]).
    pub(super) fn try_admit(self: &Arc<Self>) -> Option<Admission> {
        let admitted =
            self.admitted.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.capacity).then_some(n + 1));
        match admitted {
            Ok(_) => Some(Admission(Arc::clone(self))),
            Err(_) => {
                OVERLOADED.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Hashes admitted and not finished.
    #[cfg(test)]
    pub(super) fn admitted(&self) -> usize {
        self.admitted.load(Ordering::Acquire)
    }

    /// Waits for a hashing thread, then checks `password` against `hash` there. The permit and
    /// the place in the pool go with the hash: a login whose client went away lets go of its
    /// place only when its hash is done, so the bound holds for CPU actually in use.
    pub(super) async fn verify(&self, admission: Admission, scheme: Scheme, password: Vec<u8>, hash: Arc<str>) -> bool {
        // The semaphore is never closed, so this waits for a permit and never fails.
        let Ok(permit) = Arc::clone(&self.running).acquire_owned().await else {
            return false;
        };
        tokio::task::spawn_blocking(move || {
            let _held = (permit, admission);
            scheme.verify(&password, &hash)
        })
        .await
        .unwrap_or(false)
    }
}
