//! Shared resources: one object per key, made once, charged once to the budget, and held
//! through counted handles (Flink's shared managed-memory resources, as used for RocksDB's
//! block cache). The last holder's release runs the release callback and returns the budget.

use std::any::Any;
use std::sync::Arc;

use super::manager::{Inner, MemoryManager, lock};
use super::stats::FailureCause;
use crate::error::{Error, Result};

type ReleaseBox = Box<dyn FnOnce(Box<dyn Any + Send + Sync>) + Send>;

pub(crate) struct SharedEntry {
    size: u64,
    value: Box<dyn Any + Send + Sync>,
    /// In a mutex only to make the entry `Sync`; taken once, by the last holder.
    release: std::sync::Mutex<ReleaseBox>,
}

/// An entry of the manager's table: the resource and how many hold it.
pub(crate) struct SharedSlot {
    entry: Arc<SharedEntry>,
    holders: usize,
}

/// One holder's counted lease on a shared resource. Dropping it (or
/// [`release`](Self::release)) ends this holder's share; the last one runs the release
/// callback and gives the size back to the budget.
pub struct SharedResource {
    manager: Arc<Inner>,
    key: String,
    entry: Option<Arc<SharedEntry>>,
}

impl MemoryManager {
    /// Gets the resource under `key`, or makes it: charges `size` bytes to the budget, then
    /// runs `init(size)`; `release` runs with the value when the last holder lets go.
    ///
    /// Fails with `InvalidArgument` for an empty key, a size of 0, a size other than the one
    /// the existing resource was made with, or a type other than its type; with
    /// `BudgetExhausted` when the size does not fit; with `Closed` after close; and with
    /// `init`'s error (the budget is given back). `init` runs under the manager's table lock:
    /// other callers for any key wait for it, so it must not call back into this manager.
    pub fn shared_resource<T, I, R>(
        &self,
        key: &str,
        size: u64,
        init: I,
        release: R,
    ) -> Result<SharedResource>
    where
        T: Any + Send + Sync,
        I: FnOnce(u64) -> Result<T>,
        R: FnOnce(T) + Send + 'static,
    {
        acquire(self.inner(), key, size, init, release)
    }
}

pub(crate) fn acquire<T, I, R>(
    inner: &Arc<Inner>,
    key: &str,
    size: u64,
    init: I,
    release: R,
) -> Result<SharedResource>
where
    T: Any + Send + Sync,
    I: FnOnce(u64) -> Result<T>,
    R: FnOnce(T) + Send + 'static,
{
    if key.is_empty() {
        return Err(Error::invalid("shared resource key is empty"));
    }
    if size == 0 {
        return Err(Error::invalid(format!(
            "shared resource '{key}': size must be at least 1 byte"
        )));
    }
    let mut table = lock(&inner.shared);
    if inner.closed.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(Error::Closed(format!(
            "memory manager is closed; cannot get shared resource '{key}'"
        )));
    }
    if let Some(slot) = table.get_mut(key) {
        if slot.entry.size != size {
            return Err(Error::invalid(format!(
                "shared resource '{key}' exists with {} bytes, not {size}",
                slot.entry.size
            )));
        }
        if !slot.entry.value.is::<T>() {
            return Err(Error::invalid(format!(
                "shared resource '{key}' exists with another type"
            )));
        }
        slot.holders += 1;
        return Ok(SharedResource {
            manager: Arc::clone(inner),
            key: key.to_string(),
            entry: Some(Arc::clone(&slot.entry)),
        });
    }
    if !inner.charge(size) {
        drop(table);
        let why = format!("shared resource '{key}' of {size} bytes does not fit in the budget");
        return Err(inner.failure(FailureCause::Budget, &format!("shared:{key}"), size, why));
    }
    // Gives the charge back if `init` fails or panics.
    struct Charged<'a>(&'a Inner, u64);
    impl Drop for Charged<'_> {
        fn drop(&mut self) {
            self.0.uncharge(self.1);
        }
    }
    let charged = Charged(inner, size);
    let value = init(size)?;
    std::mem::forget(charged);
    inner
        .shared_bytes
        .fetch_add(size, std::sync::atomic::Ordering::SeqCst);
    let release: ReleaseBox = Box::new(move |value: Box<dyn Any + Send + Sync>| {
        if let Ok(value) = value.downcast::<T>() {
            release(*value);
        }
    });
    let entry = Arc::new(SharedEntry {
        size,
        value: Box::new(value),
        release: std::sync::Mutex::new(release),
    });
    table.insert(
        key.to_string(),
        SharedSlot {
            entry: Arc::clone(&entry),
            holders: 1,
        },
    );
    Ok(SharedResource {
        manager: Arc::clone(inner),
        key: key.to_string(),
        entry: Some(entry),
    })
}

impl SharedResource {
    /// The resource, if it is a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.entry.as_ref()?.value.downcast_ref::<T>()
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The bytes charged for it.
    pub fn size(&self) -> u64 {
        self.entry.as_ref().map_or(0, |e| e.size)
    }

    /// How many hold it now.
    pub fn holders(&self) -> usize {
        lock(&self.manager.shared)
            .get(&self.key)
            .map_or(0, |slot| slot.holders)
    }

    /// Ends this holder's share; the last one runs the release callback (on this thread)
    /// and gives the size back to the budget. Returns whether this was the last.
    pub fn release(mut self) -> bool {
        self.release_inner()
    }

    fn release_inner(&mut self) -> bool {
        let Some(entry) = self.entry.take() else {
            return false;
        };
        let last = {
            let mut table = lock(&self.manager.shared);
            let slot = table
                .get_mut(&self.key)
                .expect("a held resource is in the table");
            slot.holders -= 1;
            if slot.holders == 0 {
                table.remove(&self.key);
                true
            } else {
                false
            }
        };
        if last {
            let size = entry.size;
            if let Ok(entry) = Arc::try_unwrap(entry) {
                let release = entry
                    .release
                    .into_inner()
                    .unwrap_or_else(|e| e.into_inner());
                release(entry.value);
            }
            self.manager
                .shared_bytes
                .fetch_sub(size, std::sync::atomic::Ordering::SeqCst);
            self.manager.uncharge(size);
        }
        last
    }
}

impl Drop for SharedResource {
    fn drop(&mut self) {
        self.release_inner();
    }
}

impl std::fmt::Debug for SharedResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedResource")
            .field("key", &self.key)
            .field("size", &self.size())
            .finish()
    }
}
