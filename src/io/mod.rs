//! I/O for spilling: the block format of spill files, temporary files that remove
//! themselves, run writers and readers that move whole pages, a writer thread, and threads
//! that write behind run writers and read ahead of merges.
//!
//! Every byte read or written passes through a page (a [`Segment`](crate::Segment)) that the
//! caller hands in: this layer allocates no buffers of its own, but for the scratch in which a
//! run reader puts together a record that spans blocks (its caller counts that against its
//! pages).

pub mod block;
pub mod read_ahead;
pub mod spill;
mod write_behind;
pub mod writer;

pub use read_ahead::ReadAhead;
pub use spill::{Run, RunReader, RunWriter, SpillDir, SpillFile, WriteFault};
pub use writer::BackgroundWriter;
