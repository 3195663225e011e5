//! Buffer pools as the page sources and record targets of the view layer.
//!
//! - A local buffer pool is a [`SegmentSource`]: an output view requests a buffer whenever a
//!   write does not fit, and the buffer goes back to the pool when the view (or whoever holds
//!   the segment) drops it. Without a free buffer the write fails with `WouldBlock` and
//!   writes nothing.
//! - A buffer builder is a [`RecordTarget`]: the record serializer appends length-prefixed
//!   records into consecutive builders, and each append is committed, so a consumer on
//!   another thread can hand the bytes to a record deserializer as they arrive.

use std::ptr::NonNull;

use super::{Buffer, BufferBuilder, LocalBufferPool};
use crate::error::Result;
use crate::segment::Segment;
use crate::view::{RecordTarget, SegmentSource};

/// The whole of `buffer` as a segment that holds the buffer, so the memory goes back to the
/// pool when the segment is dropped. The segment's kind is `Foreign` (pool memory).
pub fn buffer_segment(buffer: Buffer) -> Result<Segment> {
    let region = buffer.region();
    let ptr = NonNull::new(region.as_ptr()).expect("a buffer's memory is never null");
    let release = Box::new(move |_: *mut u8, _: usize| drop(buffer));
    // SAFETY: the buffer's memory belongs to its network pool and stays valid while a
    // reference to the buffer exists; the segment owns that reference until its release
    // callback drops it. A buffer handed out by a request is exclusively the requester's.
    unsafe { Segment::wrap_foreign(ptr, region.len(), Some(release)) }
}

impl SegmentSource for &LocalBufferPool {
    fn next_segment(&mut self) -> Result<Segment> {
        buffer_segment(self.request()?)
    }

    fn give_back(&mut self, segment: Segment) {
        // Dropping the segment releases its buffer to the pool.
        drop(segment);
    }
}

impl RecordTarget for BufferBuilder {
    fn append(&mut self, src: &[u8]) -> usize {
        // A finished builder takes nothing, which the serializer reports as a full target.
        let n = BufferBuilder::append(self, src).unwrap_or(0);
        self.commit();
        n
    }

    fn remaining(&self) -> usize {
        if self.is_finished() {
            0
        } else {
            self.writable_bytes()
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::error::Error;
    use crate::pool::{LocalPoolConfig, NetworkBufferPool, SegmentMemory};
    use crate::view::{DataInput, DataOutput, OutputView, RecordDeserializer, RecordSerializer};

    #[test]
    fn an_output_view_on_a_local_pool_takes_buffers_and_gives_them_back() {
        let network = NetworkBufferPool::new(4, 1024, SegmentMemory::Heap).unwrap();
        let pool = network
            .create_local_pool(LocalPoolConfig::new(3, 3))
            .unwrap();
        let mut view = OutputView::new(&pool);
        for i in 0..(3 * 1024 / 8) as u64 {
            view.write_u64(i).unwrap();
        }
        assert_eq!(pool.stats().in_use, 3);
        assert!(matches!(view.write_u8(1), Err(Error::WouldBlock(_))));
        let (mut input, _) = view.into_input_view();
        for i in 0..(3 * 1024 / 8) as u64 {
            assert_eq!(input.read_u64().unwrap(), i);
        }
        assert!(matches!(input.read_u8(), Err(Error::EndOfData(_))));
        drop(input);
        assert_eq!(pool.stats().in_use, 0, "every buffer went back");
    }

    #[test]
    fn records_span_buffer_builders_and_come_back_whole_from_the_consumers() {
        let network = NetworkBufferPool::new(16, 64, SegmentMemory::Heap).unwrap();
        let pool = network
            .create_local_pool(LocalPoolConfig::new(16, 16))
            .unwrap();
        let records: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 20 + 30 * i as usize]).collect();
        let mut serializer = RecordSerializer::new();
        let mut builder = pool.request_builder(None).unwrap();
        let mut consumers = vec![builder.create_consumer()];
        for record in &records {
            serializer.serialize_record(record).unwrap();
            while !serializer.copy_to(&mut builder).record_done {
                builder.finish();
                builder = pool.request_builder(None).unwrap();
                consumers.push(builder.create_consumer());
            }
        }
        builder.finish();
        assert!(consumers.len() > 3, "the records span several buffers");

        let mut deserializer = RecordDeserializer::<Vec<u8>>::default();
        let mut got = Vec::new();
        for mut consumer in consumers {
            let buffer = consumer.build();
            let mut bytes = vec![0; buffer.readable_bytes()];
            buffer.read(&mut bytes).unwrap();
            deserializer.set_next_buffer(bytes).unwrap();
            while let Some(record) = deserializer.next_record().unwrap() {
                got.push(record.to_vec());
            }
        }
        assert_eq!(got, records);
        drop(builder);
        assert_eq!(pool.stats().in_use, 0);
    }

    #[test]
    fn a_producer_and_a_consumer_thread_pass_records_through_a_small_pool() {
        use std::sync::mpsc;
        use std::time::Duration;
        let network = NetworkBufferPool::new(4, 256, SegmentMemory::Heap).unwrap();
        let pool = network
            .create_local_pool(LocalPoolConfig::new(2, 2))
            .unwrap();
        let (tx, rx) = mpsc::sync_channel(4);
        let records: Vec<Vec<u8>> = (0..300u32)
            .map(|i| vec![i as u8; (i % 97) as usize])
            .collect();
        let (pool_ref, records_ref) = (&pool, &records);
        std::thread::scope(|s| {
            // `tx` moves into the producer, so the consumer's loop ends when the producer does.
            s.spawn(move || {
                let pool = pool_ref;
                let wait = Some(Duration::from_secs(10));
                let mut serializer = RecordSerializer::new();
                let mut builder = pool.request_builder_blocking(None, wait).unwrap();
                tx.send(builder.create_consumer()).unwrap();
                for record in records_ref {
                    serializer.serialize_record(record).unwrap();
                    while !serializer.copy_to(&mut builder).record_done {
                        builder.finish();
                        // Only 2 buffers: this waits until the consumer recycles one.
                        builder = pool.request_builder_blocking(None, wait).unwrap();
                        tx.send(builder.create_consumer()).unwrap();
                    }
                }
                builder.finish();
            });
            let mut deserializer = RecordDeserializer::<Vec<u8>>::default();
            let mut got = 0;
            for mut consumer in rx.iter() {
                while !consumer.is_finished() {
                    let slice = consumer.build();
                    let mut bytes = vec![0; slice.readable_bytes()];
                    slice.read(&mut bytes).unwrap();
                    deserializer.set_next_buffer(bytes).unwrap();
                    while let Some(record) = deserializer.next_record().unwrap() {
                        assert_eq!(record, &records[got][..]);
                        got += 1;
                    }
                    std::thread::yield_now();
                }
            }
            assert_eq!(got, records.len());
        });
        assert_eq!(pool.stats().in_use, 0);
        assert!(pool.stats().waited_requests > 0, "the producer had to wait");
    }
}
