//! The manager's C ABI against a model: random sequences of calls on managers, leases, their
//! pages and host segments, where every handle argument is drawn from all the handles made so
//! far — of any kind, live, released or closed — or is zero. The model predicts every status
//! exactly (wrong kind, stale, invalid, quota and budget exhausted, a page given back to the
//! wrong lease, out of bounds, the no-op closes of a zero handle), the usage each lease
//! reports, and that once everything is closed no segment handle is left live.
//!
//! One test function, so that the process-wide live count it checks belongs to it alone.

use std::ffi::CString;

use memseg::ffi::*;
use proptest::prelude::*;
use proptest::sample::Index;

const PAGE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Manager,
    Lease,
    Segment,
}

/// A handle made by the sequence, and what the model knows of it.
#[derive(Debug)]
struct Known {
    bits: u64,
    kind: Kind,
    live: bool,
    /// Manager: its page count. Lease: its quota (0: none). Segment: its size.
    size: usize,
    /// Lease: its manager. Page: its lease. Host segment: none.
    owner: Option<usize>,
    /// Lease: pages held. Manager: pages held by its leases.
    held: usize,
}

/// A handle argument: one of the handles made so far (any kind, any state), or zero.
type Pick = Option<Index>;

#[derive(Debug, Clone)]
enum Op {
    NewManager { pages: usize },
    OpenLease { manager: Pick, quota: usize },
    Allocate { lease: Pick },
    Release { lease: Pick, page: Pick },
    CloseLease { lease: Pick },
    CloseManager { manager: Pick },
    NewSegment { size: usize },
    FreeSegment { segment: Pick },
    GetU64 { segment: Pick, offset: usize },
    Usage { lease: Pick },
}

fn pick() -> impl Strategy<Value = Pick> {
    prop::option::weighted(0.92, any::<Index>())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (1usize..4).prop_map(|pages| Op::NewManager { pages }),
        2 => (pick(), 0usize..3).prop_map(|(manager, quota)| Op::OpenLease { manager, quota }),
        4 => pick().prop_map(|lease| Op::Allocate { lease }),
        4 => (pick(), pick()).prop_map(|(lease, page)| Op::Release { lease, page }),
        1 => pick().prop_map(|lease| Op::CloseLease { lease }),
        1 => pick().prop_map(|manager| Op::CloseManager { manager }),
        1 => (0usize..24).prop_map(|size| Op::NewSegment { size }),
        1 => pick().prop_map(|segment| Op::FreeSegment { segment }),
        2 => (pick(), 0usize..PAGE + 8).prop_map(|(segment, offset)| Op::GetU64 { segment, offset }),
        1 => pick().prop_map(|lease| Op::Usage { lease }),
    ]
}

#[derive(Default)]
struct Model {
    known: Vec<Known>,
}

impl Model {
    /// The handle bits `pick` names (zero for none) and the model's verdict on it as a
    /// handle of `kind`: the index of a live one, or the status the call must return.
    fn resolve(&self, pick: &Pick, kind: Kind) -> (u64, Result<usize, memseg_status>) {
        let Some(index) = pick.as_ref().filter(|_| !self.known.is_empty()) else {
            return (0, Err(memseg_status::InvalidHandle));
        };
        let i = index.index(self.known.len());
        let known = &self.known[i];
        let verdict = if known.kind != kind {
            Err(memseg_status::WrongHandleKind)
        } else if !known.live {
            Err(memseg_status::StaleHandle)
        } else {
            Ok(i)
        };
        (known.bits, verdict)
    }

    fn push(&mut self, bits: u64, kind: Kind, size: usize, owner: Option<usize>) {
        self.known.push(Known {
            bits,
            kind,
            live: true,
            size,
            owner,
            held: 0,
        });
    }

    /// A lease is closed: its pages go stale, and their charge goes back to its manager.
    fn end_lease(&mut self, lease: usize) {
        self.known[lease].live = false;
        for k in &mut self.known {
            if k.kind == Kind::Segment && k.owner == Some(lease) {
                k.live = false;
            }
        }
        let manager = self.known[lease].owner.expect("a lease has a manager");
        self.known[manager].held -= self.known[lease].held;
        self.known[lease].held = 0;
    }

    fn is_page(&self, i: usize) -> bool {
        self.known[i].kind == Kind::Segment && self.known[i].owner.is_some()
    }
}

/// A zero handle is a no-op for the calls that end objects.
fn closing(verdict: Result<usize, memseg_status>, bits: u64) -> Result<usize, memseg_status> {
    match verdict {
        Err(memseg_status::InvalidHandle) if bits == 0 => Err(memseg_status::Ok),
        other => other,
    }
}

fn status_of<T>(verdict: &Result<T, memseg_status>) -> memseg_status {
    match verdict {
        Ok(_) => memseg_status::Ok,
        Err(status) => *status,
    }
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    let name = CString::new("model").unwrap();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::NewManager { pages } => {
                let mut config = memseg_manager_config_default((pages * PAGE) as u64);
                config.page_size = PAGE;
                config.flags = MEMSEG_MANAGER_PREALLOCATE;
                let mut m = memseg_manager::default();
                // SAFETY: valid pointers.
                let status = unsafe { memseg_manager_new(&config, &mut m) };
                prop_assert_eq!(status, memseg_status::Ok);
                model.push(m.bits, Kind::Manager, *pages, None);
            }
            Op::OpenLease { manager, quota } => {
                let (bits, verdict) = model.resolve(manager, Kind::Manager);
                let mut l = memseg_lease::default();
                // SAFETY: valid pointers.
                let status = unsafe {
                    memseg_lease_open(memseg_manager { bits }, name.as_ptr(), *quota, &mut l)
                };
                prop_assert_eq!(status, status_of(&verdict), "step {}: {:?}", step, op);
                if let Ok(m) = verdict {
                    model.push(l.bits, Kind::Lease, *quota, Some(m));
                }
            }
            Op::Allocate { lease } => {
                let (bits, verdict) = model.resolve(lease, Kind::Lease);
                let expected = verdict.and_then(|l| {
                    let (quota, held) = (model.known[l].size, model.known[l].held);
                    let m = model.known[l].owner.unwrap();
                    if quota > 0 && held == quota {
                        Err(memseg_status::QuotaExhausted)
                    } else if model.known[m].held == model.known[m].size {
                        Err(memseg_status::BudgetExhausted)
                    } else {
                        Ok((l, m))
                    }
                });
                let mut page = memseg_segment::default();
                // SAFETY: a valid out pointer.
                let status = unsafe { memseg_lease_allocate(memseg_lease { bits }, &mut page) };
                prop_assert_eq!(status, status_of(&expected), "step {}: {:?}", step, op);
                if let Ok((l, m)) = expected {
                    model.known[l].held += 1;
                    model.known[m].held += 1;
                    model.push(page.bits, Kind::Segment, PAGE, Some(l));
                }
            }
            Op::Release { lease, page } => {
                let (lease_bits, lease_verdict) = model.resolve(lease, Kind::Lease);
                let (page_bits, page_verdict) = model.resolve(page, Kind::Segment);
                let expected = lease_verdict.and_then(|l| {
                    let p = page_verdict?;
                    if model.known[p].owner == Some(l) {
                        Ok((l, p))
                    } else {
                        // Another lease's page, or a host segment.
                        Err(memseg_status::InvalidArgument)
                    }
                });
                let status = memseg_lease_release(
                    memseg_lease { bits: lease_bits },
                    memseg_segment { bits: page_bits },
                );
                prop_assert_eq!(status, status_of(&expected), "step {}: {:?}", step, op);
                if let Ok((l, p)) = expected {
                    model.known[p].live = false;
                    model.known[l].held -= 1;
                    let m = model.known[l].owner.unwrap();
                    model.known[m].held -= 1;
                }
            }
            Op::CloseLease { lease } => {
                let (bits, verdict) = model.resolve(lease, Kind::Lease);
                let expected = closing(verdict, bits);
                // SAFETY: a NULL out pointer is allowed.
                let status =
                    unsafe { memseg_lease_close(memseg_lease { bits }, std::ptr::null_mut()) };
                prop_assert_eq!(status, status_of(&expected), "step {}: {:?}", step, op);
                if let Ok(l) = expected {
                    model.end_lease(l);
                }
            }
            Op::CloseManager { manager } => {
                let (bits, verdict) = model.resolve(manager, Kind::Manager);
                let expected = closing(verdict, bits);
                // SAFETY: no report buffer, as allowed.
                let status = unsafe {
                    memseg_manager_close(
                        memseg_manager { bits },
                        std::ptr::null_mut(),
                        0,
                        std::ptr::null_mut(),
                    )
                };
                prop_assert_eq!(status, status_of(&expected), "step {}: {:?}", step, op);
                if let Ok(m) = expected {
                    let leases: Vec<usize> = (0..model.known.len())
                        .filter(|&i| {
                            model.known[i].kind == Kind::Lease
                                && model.known[i].live
                                && model.known[i].owner == Some(m)
                        })
                        .collect();
                    for l in leases {
                        model.end_lease(l);
                    }
                    model.known[m].live = false;
                }
            }
            Op::NewSegment { size } => {
                let mut s = memseg_segment::default();
                // SAFETY: a valid out pointer.
                let status = unsafe { memseg_segment_new_heap(*size, &mut s) };
                let expected = if *size == 0 {
                    memseg_status::InvalidArgument
                } else {
                    memseg_status::Ok
                };
                prop_assert_eq!(status, expected, "step {}: {:?}", step, op);
                if *size > 0 {
                    model.push(s.bits, Kind::Segment, *size, None);
                }
            }
            Op::FreeSegment { segment } => {
                let (bits, verdict) = model.resolve(segment, Kind::Segment);
                let expected = closing(verdict, bits).and_then(|s| {
                    if model.is_page(s) {
                        Err(memseg_status::InvalidArgument)
                    } else {
                        Ok(s)
                    }
                });
                let status = memseg_segment_free(memseg_segment { bits });
                prop_assert_eq!(status, status_of(&expected), "step {}: {:?}", step, op);
                if let Ok(s) = expected {
                    model.known[s].live = false;
                }
            }
            Op::GetU64 { segment, offset } => {
                let (bits, verdict) = model.resolve(segment, Kind::Segment);
                let expected = verdict.and_then(|s| {
                    if offset + 8 > model.known[s].size {
                        Err(memseg_status::OutOfBounds)
                    } else {
                        Ok(s)
                    }
                });
                let mut value = 0u64;
                // SAFETY: a valid out pointer.
                let status = unsafe {
                    memseg_segment_get_u64_be(memseg_segment { bits }, *offset, &mut value)
                };
                prop_assert_eq!(status, status_of(&expected), "step {}: {:?}", step, op);
            }
            Op::Usage { lease } => {
                let (bits, verdict) = model.resolve(lease, Kind::Lease);
                let mut usage = memseg_lease_usage::default();
                // SAFETY: a valid out pointer.
                let status = unsafe { memseg_lease_get_usage(memseg_lease { bits }, &mut usage) };
                prop_assert_eq!(status, status_of(&verdict), "step {}: {:?}", step, op);
                if let Ok(l) = verdict {
                    prop_assert_eq!(usage.pages, model.known[l].held);
                    prop_assert_eq!(usage.quota_pages, model.known[l].size);
                }
            }
        }
    }
    // Everything still open is closed (a manager closes its leases); then nothing is live.
    for k in &model.known {
        if !k.live {
            continue;
        }
        match (k.kind, k.owner) {
            (Kind::Manager, _) => {
                // SAFETY: no report buffer, as allowed.
                let status = unsafe {
                    memseg_manager_close(
                        memseg_manager { bits: k.bits },
                        std::ptr::null_mut(),
                        0,
                        std::ptr::null_mut(),
                    )
                };
                prop_assert_eq!(status, memseg_status::Ok);
            }
            (Kind::Segment, None) => {
                prop_assert_eq!(
                    memseg_segment_free(memseg_segment { bits: k.bits }),
                    memseg_status::Ok
                );
            }
            _ => {}
        }
    }
    Ok(())
}

fn live_segments() -> usize {
    let mut n = 0;
    // SAFETY: a valid out pointer.
    assert_eq!(
        unsafe { memseg_segment_live_count(&mut n) },
        memseg_status::Ok
    );
    n
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_status_matches_the_model_whatever_handle_is_passed(
        ops in prop::collection::vec(op(), 1..60)
    ) {
        let before = live_segments();
        run(&ops)?;
        prop_assert_eq!(live_segments(), before, "a segment handle left live");
    }
}
