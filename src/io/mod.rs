//! I/O for spilling: the block format of spill files, temporary files that remove
//! themselves, run writers and readers that move whole pages, and a writer thread.
//!
//! Every byte read or written passes through a page (a [`Segment`](crate::Segment)) that the
//! caller hands in: this layer allocates no buffers of its own.

pub mod block;
pub mod spill;
pub mod writer;

pub use spill::{Run, RunReader, RunWriter, SpillDir, SpillFile, WriteFault};
pub use writer::BackgroundWriter;
