//! What a manager reports: stats at any moment, the snapshot behind a failed allocation, and
//! what closing a lease or the manager reclaimed — as structs and as JSON text.

use std::fmt::Write as _;

/// One lease's account at a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseUsage {
    /// The lease's number in its manager (1, 2, …, in order of opening).
    pub id: u64,
    /// The name the lease was opened with.
    pub name: String,
    /// Pages it holds now.
    pub pages: usize,
    /// The most pages it held at once.
    pub peak_pages: usize,
    /// Bytes it has reserved for memory the host allocates itself.
    pub reserved_bytes: u64,
    /// Its page quota, if it has one.
    pub quota_pages: Option<usize>,
    /// Whether the lease was closed (a closed lease is listed while pages it lent are out).
    pub closed: bool,
}

impl LeaseUsage {
    /// Bytes charged to the lease: its pages and its reservations.
    pub fn bytes(&self, page_size: usize) -> u64 {
        self.pages as u64 * page_size as u64 + self.reserved_bytes
    }

    fn write_json(&self, out: &mut String, page_size: usize) {
        let _ = write!(out, "{{\"id\":{},\"name\":", self.id);
        json_string(out, &self.name);
        let _ = write!(
            out,
            ",\"pages\":{},\"peak_pages\":{},\"reserved_bytes\":{},\"bytes\":{},\"quota_pages\":",
            self.pages,
            self.peak_pages,
            self.reserved_bytes,
            self.bytes(page_size)
        );
        match self.quota_pages {
            Some(q) => {
                let _ = write!(out, "{q}");
            }
            None => out.push_str("null"),
        }
        let _ = write!(out, ",\"closed\":{}}}", self.closed);
    }
}

/// A manager's state at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerStats {
    /// Page size in bytes.
    pub page_size: usize,
    /// Pages in the budget.
    pub pages_total: usize,
    /// Pages held by leases.
    pub pages_used: usize,
    /// Pages that can still be allocated (budget left after pages, reservations and shared
    /// resources, in whole pages). Pages a lease keeps cached after releasing them count as
    /// free: any allocation short of budget takes them back.
    pub pages_free: usize,
    /// The budget in bytes (`pages_total * page_size`).
    pub limit_bytes: u64,
    /// Bytes charged: pages held, reservations and shared resources (not pages leases keep
    /// cached).
    pub used_bytes: u64,
    /// Bytes reserved by leases.
    pub reserved_bytes: u64,
    /// Bytes charged for shared resources.
    pub shared_bytes: u64,
    /// Shared resources alive.
    pub shared_resources: usize,
    /// Leases open, or closed with pages still out.
    pub leases: Vec<LeaseUsage>,
    /// Whether the manager was closed.
    pub closed: bool,
}

impl ManagerStats {
    /// The stats as one JSON object.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256 + 128 * self.leases.len());
        let _ = write!(
            out,
            "{{\"page_size\":{},\"pages_total\":{},\"pages_used\":{},\"pages_free\":{},\
             \"limit_bytes\":{},\"used_bytes\":{},\"reserved_bytes\":{},\"shared_bytes\":{},\
             \"shared_resources\":{},\"closed\":{},\"leases\":",
            self.page_size,
            self.pages_total,
            self.pages_used,
            self.pages_free,
            self.limit_bytes,
            self.used_bytes,
            self.reserved_bytes,
            self.shared_bytes,
            self.shared_resources,
            self.closed
        );
        leases_json(&mut out, &self.leases, self.page_size);
        out.push('}');
        out
    }
}

/// Why an allocation or reservation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCause {
    /// The manager's budget cannot serve it.
    Budget,
    /// The lease's quota cannot serve it.
    Quota,
    /// The operating system or the allocator refused memory (lazy managers).
    AllocationFailed,
    /// A wait for pages ran out of time.
    Timeout,
}

impl FailureCause {
    fn name(self) -> &'static str {
        match self {
            FailureCause::Budget => "budget_exhausted",
            FailureCause::Quota => "quota_exhausted",
            FailureCause::AllocationFailed => "allocation_failed",
            FailureCause::Timeout => "timeout",
        }
    }
}

/// Most leases a failure snapshot lists.
pub const SNAPSHOT_TOP_LEASES: usize = 8;

/// The state behind the most recent allocation a manager could not serve: enough to tell
/// who holds the memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureSnapshot {
    /// Why it failed.
    pub cause: FailureCause,
    /// The lease that asked.
    pub lease: String,
    /// Bytes it asked for.
    pub requested_bytes: u64,
    /// The budget in bytes.
    pub limit_bytes: u64,
    /// Bytes charged at that moment (as [`ManagerStats::used_bytes`] counts them).
    pub used_bytes: u64,
    /// The leases charged the most bytes, largest first (at most [`SNAPSHOT_TOP_LEASES`]).
    pub top_leases: Vec<LeaseUsage>,
    /// Page size, for the lease byte counts.
    pub page_size: usize,
}

impl FailureSnapshot {
    /// The snapshot as one JSON object.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("{\"cause\":");
        json_string(&mut out, self.cause.name());
        out.push_str(",\"lease\":");
        json_string(&mut out, &self.lease);
        let _ = write!(
            out,
            ",\"requested_bytes\":{},\"limit_bytes\":{},\"used_bytes\":{},\"top_leases\":",
            self.requested_bytes, self.limit_bytes, self.used_bytes
        );
        leases_json(&mut out, &self.top_leases, self.page_size);
        out.push('}');
        out
    }

    /// One line for error messages: limit, used, and the top leases by name.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "lease '{}' asked for {} bytes; limit {} bytes, used {} bytes; top leases:",
            self.lease, self.requested_bytes, self.limit_bytes, self.used_bytes
        );
        if self.top_leases.is_empty() {
            out.push_str(" none");
        }
        for (i, lease) in self.top_leases.iter().take(3).enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            let _ = write!(
                out,
                "{sep}'{}' {} bytes ({} pages)",
                lease.name,
                lease.bytes(self.page_size),
                lease.pages
            );
        }
        out
    }
}

/// What closing a lease reclaimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseClosed {
    /// The lease's name.
    pub name: String,
    /// Pages given back by the close.
    pub pages_reclaimed: usize,
    /// Reserved bytes given back by the close.
    pub reserved_bytes_reclaimed: u64,
    /// Pages the lease lent that are still out (Rust `Segment`s not yet dropped); each goes
    /// back to the manager when it is dropped.
    pub pages_outstanding: usize,
}

/// What closing a manager found: every lease still open, by name, with what it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeakReport {
    /// The leases open at the close, with what each held then.
    pub open_leases: Vec<LeaseUsage>,
    /// Shared resources still held at the close (their keys).
    pub open_shared: Vec<String>,
    /// Page size, for the byte counts.
    pub page_size: usize,
}

impl LeakReport {
    /// Whether nothing was left open.
    pub fn is_clean(&self) -> bool {
        self.open_leases.is_empty() && self.open_shared.is_empty()
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"open_leases\":");
        leases_json(&mut out, &self.open_leases, self.page_size);
        out.push_str(",\"open_shared\":[");
        for (i, key) in self.open_shared.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_string(&mut out, key);
        }
        out.push_str("]}");
        out
    }
}

fn leases_json(out: &mut String, leases: &[LeaseUsage], page_size: usize) {
    out.push('[');
    for (i, lease) in leases.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        lease.write_json(out, page_size);
    }
    out.push(']');
}

/// Appends `s` as a JSON string literal.
pub(crate) fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        let mut out = String::new();
        json_string(&mut out, "a\"b\\c\n\u{1}é");
        assert_eq!(out, r#""a\"b\\c\n\u0001é""#);
    }

    #[test]
    fn a_snapshot_names_its_leases() {
        let lease = LeaseUsage {
            id: 1,
            name: "sort".into(),
            pages: 2,
            peak_pages: 3,
            reserved_bytes: 5,
            quota_pages: None,
            closed: false,
        };
        let snapshot = FailureSnapshot {
            cause: FailureCause::Budget,
            lease: "join".into(),
            requested_bytes: 4096,
            limit_bytes: 8192,
            used_bytes: 8197,
            top_leases: vec![lease],
            page_size: 4096,
        };
        assert_eq!(
            snapshot.to_json(),
            "{\"cause\":\"budget_exhausted\",\"lease\":\"join\",\"requested_bytes\":4096,\
             \"limit_bytes\":8192,\"used_bytes\":8197,\"top_leases\":[{\"id\":1,\"name\":\"sort\",\
             \"pages\":2,\"peak_pages\":3,\"reserved_bytes\":5,\"bytes\":8197,\"quota_pages\":null,\
             \"closed\":false}]}"
        );
        assert!(snapshot.summary().contains("'sort' 8197 bytes (2 pages)"));
    }
}
