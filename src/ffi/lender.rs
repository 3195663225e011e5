//! Who lends a lent segment handle, by name, for messages.
//!
//! A lent segment records only its lender's id (one word, so lending a page copies no name
//! and touches no reference count). Messages that name the lender — a page given back to the
//! wrong owner, or freed with `memseg_segment_free()` — look the id up here: leases register
//! their names while they are open ([`LenderName`]); pools and views are named from the kind
//! tag in the top byte of their id.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use super::handle::HandleKind;
use crate::manager::manager::lock;

static NAMES: LazyLock<Mutex<HashMap<u64, String>>> = LazyLock::new(Mutex::default);

/// A lender's name, registered under its id while this lives.
pub(crate) struct LenderName {
    id: u64,
}

impl LenderName {
    /// Names lender `id` as `what` ("lease 'sort-1'") until the returned value is dropped.
    pub(crate) fn register(id: u64, what: String) -> LenderName {
        lock(&NAMES).insert(id, what);
        LenderName { id }
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for LenderName {
    fn drop(&mut self) {
        lock(&NAMES).remove(&self.id);
    }
}

/// How messages name lender `id`.
#[cold]
pub(crate) fn lender_name(id: u64) -> String {
    if let Some(name) = lock(&NAMES).get(&id) {
        return name.clone();
    }
    match HandleKind::from_tag((id >> 56) as u8) {
        Some(HandleKind::NetworkPool) => format!("network buffer pool {id:#018x}"),
        Some(HandleKind::OutputView) => {
            format!("an output view on a local buffer pool ({id:#x})")
        }
        Some(HandleKind::Lease) => format!("a lease that has been closed ({id:#x})"),
        _ => format!("lender {id:#x}"),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn registered_names_last_as_long_as_their_lender() {
        let id = (HandleKind::Lease as u64) << 56 | 0xABCDE;
        let name = LenderName::register(id, "lease 'sort'".into());
        assert_eq!(
            (name.id(), lender_name(id)),
            (id, "lease 'sort'".to_string())
        );
        drop(name);
        assert_eq!(
            lender_name(id),
            "a lease that has been closed (0x3000000000abcde)"
        );
        let pool = (HandleKind::NetworkPool as u64) << 56 | 5;
        assert_eq!(lender_name(pool), "network buffer pool 0x0500000000000005");
        // (An id no other test registers: names are process-wide.)
        assert_eq!(lender_name(0x7E57_0001), "lender 0x7e570001");
    }
}
