//! Availability notification for a local pool: a callback, an `eventfd` that is readable while
//! a buffer is available, and the condition variable blocking requests wait on.
//!
//! The request/recycle fast path never locks. It reads one word, the pool's *attention* word,
//! which is non-zero when a slow path must run: someone waits or listens, the published
//! availability is "unavailable" (so a recycle may have to publish "available"), the pool is
//! destroyed, holds more segments than its size, has overdraft buffers out or counts buffers
//! per channel. Every publication re-checks the pool after storing the attention word, and every
//! fast path reads the attention word after its queue operation; all of these are sequentially
//! consistent (the queue's own compare-and-swap and loads are), so one side always sees the
//! other and no wake-up is lost.
//!
//! The word's layout, low bits first (the low 32 bits are what a recycle checks before giving
//! a segment back, so that one 32-bit test covers them):
//!
//! | bits | meaning |
//! |---|---|
//! | 0 | [`CHANNELS`]: the pool counts buffers per channel (for its whole life) |
//! | 1–31 | overdraft buffers out, [`OVERDRAFT`] each |
//! | 32–59 | waiting requests and registered listeners, [`WAITER`] each |
//! | 60 | [`EXCESS`]: the pool holds more segments than its size (it shrank) |
//! | 62 | [`NOT_SIGNALLED`]: the published state is "unavailable" |
//! | 63 | [`DESTROYED`] |

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::error::{Error, Result};

/// A host's availability callback: called, without locks held, each time the pool becomes
/// available (a buffer can be requested without waiting), on the thread that made it so. It
/// may call into the pool; one that releases a buffer of the pool makes it available again and
/// is called again, nested.
pub type AvailabilityCallback = Arc<dyn Fn() + Send + Sync>;

/// Attention bit: the pool has channels, whose counters each recycle updates.
pub(crate) const CHANNELS: u64 = 1;
/// Attention count: overdraft buffers out, one each.
pub(crate) const OVERDRAFT: u64 = 1 << 1;
/// The attention bits of the overdraft count.
pub(crate) const OVERDRAFT_MASK: u64 = 0xFFFF_FFFE;
/// Most overdraft buffers a pool may allow (what the count's 31 bits hold).
pub(crate) const MAX_OVERDRAFT: usize = (OVERDRAFT_MASK / OVERDRAFT) as usize;
/// Attention count: waiting requests and registered listeners, one each.
pub(crate) const WAITER: u64 = 1 << 32;
/// Attention bit: the pool holds more segments than its size.
pub(crate) const EXCESS: u64 = 1 << 60;
/// Attention bit: the published state is "unavailable".
pub(crate) const NOT_SIGNALLED: u64 = 1 << 62;
/// Attention bit: the pool is destroyed.
pub(crate) const DESTROYED: u64 = 1 << 63;

struct State {
    signalled: bool,
    closed: bool,
    waiters: usize,
    fd: Option<OwnedFd>,
    callback: Option<AvailabilityCallback>,
}

/// How a wait ended.
pub(crate) enum Waited {
    Ready,
    TimedOut,
    Closed,
}

pub(crate) struct Availability {
    state: Mutex<State>,
    cond: Condvar,
}

impl Availability {
    pub(crate) fn new() -> Availability {
        Availability {
            state: Mutex::new(State {
                signalled: false,
                closed: false,
                waiters: 0,
                fd: None,
                callback: None,
            }),
            cond: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update under this lock is a plain assignment: a poisoned lock is consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes the pool's availability as `available()` says: the attention bit, the
    /// eventfd, the callback (on becoming available) and the waiters.
    pub(crate) fn sync(&self, attention: &AtomicU64, available: impl Fn() -> bool) {
        let mut call = None;
        {
            let mut st = self.lock();
            if st.closed {
                return;
            }
            loop {
                let now = available();
                if now != st.signalled {
                    st.signalled = now;
                    if now {
                        attention.fetch_and(!NOT_SIGNALLED, Ordering::SeqCst);
                        call = st.callback.clone();
                    } else {
                        attention.fetch_or(NOT_SIGNALLED, Ordering::SeqCst);
                    }
                    if let Some(fd) = &st.fd {
                        set_readable(fd.as_raw_fd(), now);
                    }
                }
                // Re-check after publishing: a fast path that ran before the attention word
                // changed did not see it, so its effect must be visible here.
                if available() == now {
                    break;
                }
            }
            if st.waiters > 0 {
                self.cond.notify_all();
            }
        }
        if let Some(callback) = call {
            callback();
        }
    }

    /// Waits until `ready()` holds, the deadline passes or the pool is closed.
    pub(crate) fn wait(
        &self,
        attention: &AtomicU64,
        deadline: Option<Instant>,
        ready: impl Fn() -> bool,
    ) -> Waited {
        let mut st = self.lock();
        st.waiters += 1;
        attention.fetch_add(WAITER, Ordering::SeqCst);
        let result = loop {
            if st.closed {
                break Waited::Closed;
            }
            if ready() {
                break Waited::Ready;
            }
            match deadline {
                None => st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break Waited::TimedOut;
                    }
                    st = self
                        .cond
                        .wait_timeout(st, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        };
        st.waiters -= 1;
        attention.fetch_sub(WAITER, Ordering::SeqCst);
        result
    }

    /// The pool's eventfd, made on first use: readable while the pool is available.
    pub(crate) fn fd(&self) -> Result<RawFd> {
        let mut st = self.lock();
        if st.closed {
            return Err(Error::Closed("the local buffer pool is destroyed".into()));
        }
        if let Some(fd) = &st.fd {
            return Ok(fd.as_raw_fd());
        }
        // SAFETY: plain system call; the result is checked.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(Error::Io(format!(
                "eventfd: {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        if st.signalled {
            set_readable(raw, true);
        }
        st.fd = Some(fd);
        Ok(raw)
    }

    pub(crate) fn set_callback(&self, callback: Option<AvailabilityCallback>) -> Result<()> {
        let mut st = self.lock();
        if st.closed {
            return Err(Error::Closed("the local buffer pool is destroyed".into()));
        }
        st.callback = callback;
        Ok(())
    }

    /// Ends notification: closes the eventfd, drops the callback, wakes every waiter.
    pub(crate) fn close(&self, attention: &AtomicU64) {
        let mut st = self.lock();
        st.closed = true;
        st.fd = None;
        st.callback = None;
        st.signalled = false;
        attention.fetch_or(NOT_SIGNALLED, Ordering::SeqCst);
        self.cond.notify_all();
    }
}

/// Makes the eventfd readable (counter 1) or not (counter 0).
fn set_readable(fd: RawFd, readable: bool) {
    let mut value: u64 = 0;
    if readable {
        value = 1;
        // SAFETY: writes 8 bytes from a local to a descriptor this pool owns. The counter is
        // 0 here (publication alternates), so the write cannot block or overflow.
        let _ = unsafe { libc::write(fd, (&raw const value).cast(), 8) };
    } else {
        // SAFETY: reads 8 bytes into a local; non-blocking, so an empty counter is EAGAIN.
        let _ = unsafe { libc::read(fd, (&raw mut value).cast(), 8) };
    }
}
