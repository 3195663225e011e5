//! Sorting binary records in managed memory, in the way of Flink's `NormalizedKeySorter` and
//! `UnilateralSortMerger`.
//!
//! - [`normkey`]: normalized keys — integers, floats and byte strings as bytes whose `memcmp`
//!   order is the values' order.
//! - [`key`]: where the key is in a record and how records compare ([`KeyConfig`]).
//! - [`buffer`]: the in-memory sort buffer ([`SortBuffer`]): a record area and an index area of
//!   (key prefix, pointer) entries in the pages it is given; it reports full when they are spent.
//! - `record_area` (internal): records laid end to end across pages, longer ones straddling
//!   them ([`RecordRef`]).
//! - [`index_sort`](self) (internal): the in-place sort of the index across page boundaries.
//! - [`merge`]: the k-way merge of sorted runs.
//! - [`external`]: the external sorter ([`ExternalSorter`]), which spills sorted runs through
//!   [`crate::io`] and merges them, never using more memory than its pages.

pub mod buffer;
pub mod external;
mod index_sort;
pub mod key;
pub mod merge;
pub mod normkey;
mod record_area;

pub use buffer::SortBuffer;
pub use external::{
    DIRECT_IO_MIN_PAGE, DirectIo, ExternalSorter, MIN_PAGES, SortConfig, SortStats,
};
pub use key::{CompareFn, KeyConfig};
pub use record_area::RecordRef;
