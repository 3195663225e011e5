//! The demo's tour of the layers between segments and the sort: a memory manager's lease
//! feeding an output view (Java's `DataOutput` bytes across pages), and records passed from a
//! producer thread to a consumer thread through a small local buffer pool, spanning buffers.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use memseg::manager::{Allocation, ManagerConfig, MemoryKind, MemoryManager};
use memseg::pool::{LocalPoolConfig, NetworkBufferPool, SegmentMemory};
use memseg::view::{DataInput, DataOutput, OutputView, RecordDeserializer, RecordSerializer};
use memseg::{Error, OffHeapOptions};

use crate::records::human;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Writes `values` (u64, string) pairs through an output view whose pages come from a lease
/// of a 4 MiB manager, until the budget says no; reads them back and checks them.
pub fn views_on_a_lease() -> Result<()> {
    let manager = MemoryManager::new(
        ManagerConfig::new(4 << 20)
            .with_kind(MemoryKind::OffHeap)
            .with_allocation(Allocation::Preallocated),
    )?;
    let lease = manager.open_lease("views", None)?;
    let started = Instant::now();
    let mut view = OutputView::new(&lease);
    let mut written = 0u64;
    let budget_error = loop {
        let result = view
            .write_u64(written.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .and_then(|()| view.write_utf(&format!("record {written}")));
        match result {
            Ok(()) => written += 1,
            Err(e) => break e,
        }
    };
    let write_time = started.elapsed();
    if !matches!(budget_error, Error::BudgetExhausted(_)) {
        return Err(format!("the view stopped with {budget_error}, not at the budget").into());
    }
    let pages = lease.usage().pages;
    let (mut input, _) = view.into_input_view();
    let mut read = 0u64;
    let mut text = String::new();
    loop {
        let value = match input.read_u64() {
            Ok(v) => v,
            Err(Error::EndOfData(_)) => break,
            Err(e) => return Err(e.into()),
        };
        if value != read.wrapping_mul(0x9E37_79B9_7F4A_7C15) {
            return Err(format!("value {read} read back wrong").into());
        }
        text.clear();
        match input.read_utf() {
            Ok(t) => text.push_str(&t),
            // The pair the budget cut: its u64 was written, its string was not.
            Err(Error::EndOfData(_)) if read == written => break,
            Err(e) => return Err(e.into()),
        }
        if text != format!("record {read}") {
            return Err(format!("string {read} read back as {text:?}").into());
        }
        read += 1;
    }
    if read != written {
        return Err(format!("{written} pairs written, {read} read").into());
    }
    drop(input);
    println!(
        "views: {written} (u64, string) pairs through an output view on a lease, {} pages of {}, \
         until BUDGET_EXHAUSTED ({:.1} ms); read back and checked; pages back: {}",
        pages,
        human(manager.page_size() as u64),
        write_time.as_secs_f64() * 1e3,
        manager.stats().pages_used == 0
    );
    Ok(())
}

/// A producer thread serializes `count` records into buffer builders of a 4-buffer local pool
/// (waiting whenever the consumer has not recycled one yet); the consumer thread reassembles
/// them from the builders' consumers and checks every byte.
pub fn records_through_a_pool(count: u32) -> Result<()> {
    let network = NetworkBufferPool::new(
        16,
        32 << 10,
        SegmentMemory::OffHeap(OffHeapOptions::default()),
    )?;
    let pool = network.create_local_pool(LocalPoolConfig::new(4, 4))?;
    let record_of = |i: u32| -> Vec<u8> {
        let len = 16 + (i.wrapping_mul(2_654_435_761) % 3000) as usize;
        (0..len).map(|k| (i as usize + k) as u8).collect()
    };
    let (tx, rx) = mpsc::sync_channel(8);
    let started = Instant::now();
    let pool_ref = &pool;
    let (received, bytes) = std::thread::scope(|s| -> Result<(u32, u64)> {
        let producer = s.spawn(move || -> std::result::Result<(), Error> {
            let wait = Some(Duration::from_secs(30));
            let mut serializer = RecordSerializer::new();
            let mut builder = pool_ref.request_builder_blocking(None, wait)?;
            let _ = tx.send(builder.create_consumer());
            for i in 0..count {
                serializer.serialize_record(&record_of(i))?;
                while !serializer.copy_to(&mut builder).record_done {
                    builder.finish();
                    builder = pool_ref.request_builder_blocking(None, wait)?;
                    let _ = tx.send(builder.create_consumer());
                }
            }
            builder.finish();
            Ok(())
        });
        let mut deserializer = RecordDeserializer::<Vec<u8>>::default();
        let (mut received, mut bytes) = (0u32, 0u64);
        for mut consumer in rx.iter() {
            loop {
                let done = consumer.is_finished();
                let slice = consumer.build();
                if slice.readable_bytes() > 0 {
                    let mut chunk = vec![0; slice.readable_bytes()];
                    slice.read(&mut chunk)?;
                    drop(slice);
                    deserializer.set_next_buffer(chunk)?;
                    while let Some(record) = deserializer.next_record()? {
                        if record != record_of(received).as_slice() {
                            return Err(format!("record {received} arrived damaged").into());
                        }
                        received += 1;
                        bytes += record.len() as u64;
                    }
                } else if done {
                    break;
                } else {
                    std::thread::yield_now();
                }
            }
        }
        producer.join().expect("the producer thread")?;
        Ok((received, bytes))
    })?;
    let elapsed = started.elapsed();
    if received != count {
        return Err(format!("{received} of {count} records arrived").into());
    }
    let stats = pool.stats();
    println!(
        "pools: {count} records ({}) from a producer to a consumer thread through {} buffers of \
         {} ({:.1} ms, {:.0} MB/s); {} requests waited for a recycled buffer; all buffers back: {}",
        human(bytes),
        stats.max,
        human(network.stats().segment_size as u64),
        elapsed.as_secs_f64() * 1e3,
        bytes as f64 / elapsed.as_secs_f64() / 1e6,
        stats.waited_requests,
        stats.in_use == 0
    );
    Ok(())
}
