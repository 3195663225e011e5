//! Paged views and serialization: the way records get into and out of segments.
//!
//! This is Flink's `AbstractPagedOutputView`/`AbstractPagedInputView`,
//! `DataOutputSerializer`/`DataInputDeserializer` and `SpanningRecordSerializer` with its
//! deserializer, for native hosts. The byte format is Java's `DataOutput`: big endian, and
//! Java's modified UTF-8 with a 2-byte length for strings — so a Java program reading with
//! `java.io.DataInputStream` sees exactly what was written here, and the reverse. Every
//! primitive also has a little-endian variant (and any [`ByteOrder`] through the generic
//! [`DataOutput::write`]/[`DataInput::read`]).
//!
//! - [`DataOutput`], [`DataInput`]: the write and read operations every view and buffer has.
//! - [`OutputView`]: writes across the segments a [`SegmentSource`] hands out ([`FixedSource`]:
//!   a list the caller gives; [`HeapSource`]: fresh heap segments up to a limit).
//! - [`InputView`]: reads across a list of segments, with seek.
//! - [`SerializationBuffer`], [`SerializationReader`]: one growable, contiguous buffer and
//!   its reader.
//! - [`RecordSerializer`], [`RecordDeserializer`]: length-prefixed records that span
//!   consecutive buffers ([`RecordTarget`], [`SegmentTarget`]).
//! - [`utf`]: Java's modified UTF-8.
//!
//! Every operation either succeeds or changes nothing: a write that does not fit is
//! `OutOfSegments` with nothing written, a read past the end is `EndOfData` with nothing
//! consumed.
//!
//! ```
//! use memseg::view::{DataInput, DataOutput, HeapSource, OutputView};
//!
//! let mut out = OutputView::new(HeapSource::new(32 * 1024, 16)?);
//! out.write_i64(-1)?;
//! out.write_utf("grüß")?;
//! let (mut input, _source) = out.into_input_view();
//! assert_eq!(input.read_i64()?, -1);
//! assert_eq!(input.read_utf()?, "grüß");
//! # Ok::<(), memseg::Error>(())
//! ```
//!
//! [`ByteOrder`]: crate::ByteOrder

mod buffer;
mod data;
mod input;
mod output;
mod reader;
mod record_deserializer;
mod record_serializer;
mod source;
pub mod utf;

pub use buffer::SerializationBuffer;
pub use data::{DataInput, DataOutput};
pub use input::{InputView, SegmentRef};
pub use output::OutputView;
pub use reader::SerializationReader;
pub use record_deserializer::{DEFAULT_MAX_RECORD_LEN, RecordDeserializer};
pub use record_serializer::{
    CopyResult, LENGTH_PREFIX_SIZE, MAX_RECORD_LEN, RecordSerializer, RecordTarget, SegmentTarget,
};
pub use source::{FixedSource, HeapSource, SegmentSource};
