//! The external sorter against the standard library's sort, in memory and spilling, and its
//! faults: a full disk, truncated and corrupted spill files, too little memory.

#![cfg(not(miri))] // files and threads

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memseg::io::WriteFault;
use memseg::sort::{DirectIo, ExternalSorter, KeyConfig, SortConfig, SortStats};
use memseg::{Error, Segment};
use proptest::prelude::*;

fn pages(n: usize, size: usize) -> Vec<Segment> {
    (0..n)
        .map(|_| Segment::allocate_heap(size).unwrap())
        .collect()
}

fn config(key: KeyConfig, dir: &Path) -> SortConfig {
    SortConfig {
        temp_dir: Some(dir.to_path_buf()),
        ..SortConfig::new(key)
    }
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

/// The spill files in `dir` that process `pid` ("self" for this one) has open, each as one of
/// its `/proc/<pid>/fd` entries (which open the file itself), in the order of their names.
/// The sorter unlinks its files as soon as it creates them, so the directory lists none.
fn open_spill_files(pid: &str, dir: &Path) -> Vec<PathBuf> {
    let dir = dir.canonicalize().unwrap();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut files: Vec<(PathBuf, PathBuf)> = fds
        .filter_map(|fd| {
            let fd = fd.ok()?.path();
            let target = std::fs::read_link(&fd).ok()?;
            target.starts_with(&dir).then_some((target, fd))
        })
        .collect();
    files.sort();
    // A direct file has a second descriptor for buffered reads: one entry per file.
    files.dedup_by(|a, b| a.0 == b.0);
    files.into_iter().map(|(_, fd)| fd).collect()
}

/// Sorts `records` with `n` pages of `size` bytes; returns the output and the stats.
fn sort_all(
    records: &[Vec<u8>],
    key: &KeyConfig,
    n: usize,
    size: usize,
) -> (Vec<Vec<u8>>, SortStats) {
    let dir = tempfile::tempdir().unwrap();
    let mut sorter = ExternalSorter::new(pages(n, size), config(key.clone(), dir.path())).unwrap();
    for r in records {
        sorter.add(r).unwrap();
    }
    sorter.finish().unwrap();
    let mut out = Vec::new();
    while let Some(r) = sorter.next_record().unwrap() {
        out.push(r.to_vec());
    }
    assert_eq!(sorter.next_record().unwrap(), None, "stays at the end");
    let stats = sorter.stats();
    drop(sorter);
    assert_eq!(files_in(dir.path()), 0, "spill files removed");
    assert!(
        open_spill_files("self", dir.path()).is_empty(),
        "and closed"
    );
    assert!(stats.peak_memory_bytes <= stats.memory_bytes);
    assert_eq!(stats.memory_bytes, (n * size) as u64);
    (out, stats)
}

/// The output is the input sorted: the same multiset of records, keys in the order the
/// standard library's stable sort gives them.
fn assert_sorted_like_std(input: &[Vec<u8>], output: &[Vec<u8>], key: &KeyConfig) {
    assert_eq!(output.len(), input.len());
    let mut expected = input.to_vec();
    expected.sort_by(|a, b| key.compare_records(a, b));
    for (i, (got, want)) in output.iter().zip(&expected).enumerate() {
        assert_eq!(
            key.compare_records(got, want),
            Ordering::Equal,
            "record {i}"
        );
    }
    let (mut a, mut b) = (output.to_vec(), expected);
    a.sort();
    b.sort();
    assert_eq!(a, b, "the same records");
}

/// Input shapes: random, few distinct keys, sorted, reversed.
fn input() -> impl Strategy<Value = (Vec<Vec<u8>>, u8)> {
    (
        prop::collection::vec((any::<u32>(), 0usize..40), 0..1500),
        0u8..4,
        1u32..64,
    )
        .prop_map(|(raw, shape, distinct)| {
            let mut records: Vec<Vec<u8>> = raw
                .iter()
                .enumerate()
                .map(|(i, &(k, extra))| {
                    let k = if shape == 1 { k % distinct } else { k };
                    let mut r = vec![0u8; 2];
                    r.extend_from_slice(&k.to_be_bytes());
                    r.extend_from_slice(&[(k >> 3) as u8, 0x5A]);
                    r.extend((0..extra).map(|j| (i + j) as u8));
                    r
                })
                .collect();
            match shape {
                2 => records.sort(),
                3 => {
                    records.sort();
                    records.reverse();
                }
                _ => {}
            }
            (records, shape)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn sorted_output_equals_std_sort_in_memory_and_spilling((records, _shape) in input(),
                                                           prefix in 0usize..7) {
        // Key: 6 bytes at offset 2; the prefix may be shorter, so ties go to the records.
        let key = KeyConfig { key_offset: 2, key_length: 6, prefix_length: prefix, compare: None };
        // Plenty of memory: sorted in memory.
        let (out, stats) = sort_all(&records, &key, 64, 4096);
        assert_sorted_like_std(&records, &out, &key);
        prop_assert_eq!(stats.spilled_runs, 0);
        prop_assert_eq!(stats.records, records.len() as u64);
        // 256-byte pages, 12 of them: records straddle nothing, but pages fill after a few
        // records, so runs are many and short and merges take several passes.
        let (out, stats) = sort_all(&records, &key, 12, 256);
        assert_sorted_like_std(&records, &out, &key);
        if records.len() > 1000 {
            prop_assert!(stats.spilled_runs > 12, "{stats:?}");
            prop_assert!(stats.merge_passes >= 2, "{stats:?}");
        }
    }
}

/// Records of 9 bytes to several 256-byte pages long, whose 6-byte key (at `key_offset`)
/// takes few values, so that prefixes tie and the rest of the key decides.
fn long_records() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec((any::<u16>(), 0u8..4, 0usize..1640, any::<u8>()), 0..160).prop_map(
        |raw| {
            raw.iter()
                .map(|&(k, class, len, fill)| {
                    let len = match class {
                        0 => 140 + len % 40,     // within a page
                        1 => 220 + len % 40,     // about a block's payload
                        _ => 140 + len.max(300), // several pages long
                    };
                    let mut r = vec![fill; len];
                    for key_offset in [2, 110] {
                        r[key_offset..key_offset + 6].copy_from_slice(&[
                            (k % 3) as u8,
                            0,
                            (k >> 4) as u8 % 4,
                            (k >> 8) as u8,
                            0,
                            (k >> 12) as u8,
                        ]);
                    }
                    r
                })
                .collect()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn records_longer_than_a_page_sort_like_std_in_memory_and_spilling(
        records in long_records(), prefix in 0usize..7, far_key in any::<bool>(),
    ) {
        // The key at offset 110 straddles a page end whenever a record starts in the last
        // 110..116 bytes of one; at offset 2 when it starts in the last 6.
        let key_offset = if far_key { 110 } else { 2 };
        let key = KeyConfig { key_offset, key_length: 6, prefix_length: prefix, compare: None };
        let (out, stats) = sort_all(&records, &key, 4096, 256);
        assert_sorted_like_std(&records, &out, &key);
        prop_assert_eq!(stats.spilled_runs, 0);
        // 48 pages of 256 bytes: a run is a few records, merges take several passes, and
        // records span up to 8 blocks.
        let (out, stats) = sort_all(&records, &key, 48, 256);
        assert_sorted_like_std(&records, &out, &key);
        if records.len() > 100 {
            prop_assert!(stats.spilled_runs > 10, "{stats:?}");
            prop_assert!(stats.merge_passes >= 2, "{stats:?}");
        }
    }
}

#[test]
fn a_host_comparison_orders_ties_of_long_records_in_memory_and_spilling() {
    // Prefix: the first byte; the host orders ties by a big-endian u32 at the record's end.
    let key = KeyConfig {
        key_offset: 0,
        key_length: 1,
        prefix_length: 1,
        compare: Some(Arc::new(|a: &[u8], b: &[u8]| {
            let v = |r: &[u8]| u32::from_be_bytes(r[r.len() - 4..].try_into().unwrap());
            v(a).cmp(&v(b))
        })),
    };
    let records: Vec<Vec<u8>> = (0..600u32)
        .map(|i| {
            let v = i.wrapping_mul(2_654_435_761);
            let mut r = vec![(v % 3) as u8; 5 + (v % 1400) as usize];
            r.extend_from_slice(&v.to_be_bytes());
            r
        })
        .collect();
    let (out, stats) = sort_all(&records, &key, 4096, 256);
    assert_eq!(stats.spilled_runs, 0);
    assert_sorted_like_std(&records, &out, &key);
    let (out, stats) = sort_all(&records, &key, 40, 256);
    assert!(
        stats.spilled_runs > 40 && stats.merge_passes > 1,
        "{stats:?}"
    );
    assert_sorted_like_std(&records, &out, &key);
}

#[test]
fn the_longest_record_grows_with_the_memory_and_a_longer_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyConfig::bytes(0, 8);
    let make = |n| ExternalSorter::new(pages(n, 256), config(key.clone(), dir.path())).unwrap();
    // 3 pages: a record must fit a block whole (256 - 24 bytes).
    assert_eq!(make(3).max_record_len(), 232);
    // 1024 pages: 8 spill pages, buffers of 508 pages, each holding 169 pages of record with
    // an index page and 338 pages of scratch.
    assert_eq!(make(1024).max_record_len(), 169 * 256 - 4);
    // 48 pages: buffers of 24 and 23, the smaller holds 7 pages of record, an index page and
    // 14 pages of scratch.
    let mut sorter = make(48);
    assert_eq!(sorter.max_record_len(), 7 * 256 - 4);
    let longest = vec![0xABu8; sorter.max_record_len()];
    let e = sorter.add(&[0u8; 7 * 256 - 3]).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("exceeds the longest")),
        "{e}"
    );
    for _ in 0..20 {
        sorter.add(&longest).unwrap();
    }
    sorter.finish().unwrap();
    let stats = sorter.stats();
    assert_eq!(stats.spilled_runs, 20);
    assert!(stats.peak_memory_bytes <= stats.memory_bytes, "{stats:?}");
    let mut n = 0;
    while let Some(r) = sorter.next_record().unwrap() {
        assert_eq!(r, &longest[..]);
        n += 1;
    }
    assert_eq!(n, 20);
    assert_eq!(sorter.stats().records, 20);
}

#[test]
fn zero_one_and_all_equal_records_sort_with_and_without_spilling() {
    let key = KeyConfig::bytes(0, 10);
    for n in [0usize, 1] {
        let records: Vec<Vec<u8>> = (0..n).map(|_| b"0123456789abc".to_vec()).collect();
        for (pages, size) in [(3, 64), (40, 4096)] {
            let (out, stats) = sort_all(&records, &key, pages, size);
            assert_eq!(out, records);
            assert_eq!(stats.spilled_runs, 0);
            assert_eq!(stats.merge_passes, 0);
        }
    }
    let records: Vec<Vec<u8>> = (0..5000u32)
        .map(|i| {
            let mut r = b"same-key!!".to_vec();
            r.extend_from_slice(&i.to_le_bytes());
            r
        })
        .collect();
    let (out, stats) = sort_all(&records, &key, 3, 256);
    assert_sorted_like_std(&records, &out, &key);
    assert!(stats.merge_passes > 1, "{stats:?}");
}

#[test]
fn a_host_comparison_orders_ties_while_spilling() {
    // Prefix: the first byte; the host orders ties by a little-endian u32 at offset 1.
    let key = KeyConfig {
        key_offset: 0,
        key_length: 5,
        prefix_length: 1,
        compare: Some(Arc::new(|a: &[u8], b: &[u8]| {
            let v = |r: &[u8]| u32::from_le_bytes(r[1..5].try_into().unwrap());
            v(a).cmp(&v(b))
        })),
    };
    let records: Vec<Vec<u8>> = (0..4000u32)
        .map(|i| {
            let v = i.wrapping_mul(2_654_435_761);
            let mut r = vec![(v % 3) as u8];
            r.extend_from_slice(&v.to_le_bytes());
            r
        })
        .collect();
    let (out, stats) = sort_all(&records, &key, 10, 512);
    assert!(stats.spilled_runs > 1);
    assert_sorted_like_std(&records, &out, &key);
}

fn spilled_sorter(dir: &Path, fault: Option<Arc<WriteFault>>) -> ExternalSorter {
    let config = SortConfig {
        write_fault: fault,
        ..config(KeyConfig::bytes(0, 8), dir)
    };
    ExternalSorter::new(pages(16, 1024), config).unwrap()
}

fn add_many(sorter: &mut ExternalSorter, n: u64) -> Result<(), Error> {
    for i in 0..n {
        let mut r = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .to_be_bytes()
            .to_vec();
        r.extend_from_slice(&[7; 20]);
        sorter.add(&r)?;
    }
    Ok(())
}

#[test]
fn a_full_disk_is_disk_full_and_removes_the_spill_files() {
    let dir = tempfile::tempdir().unwrap();
    let fault = Arc::new(WriteFault::new(20 * 1024, libc::ENOSPC));
    let mut sorter = spilled_sorter(dir.path(), Some(fault));
    let e = add_many(&mut sorter, 5000)
        .and_then(|()| sorter.finish())
        .unwrap_err();
    assert!(matches!(e, Error::DiskFull(_)), "{e}");
    assert_eq!(files_in(dir.path()), 0, "removed on error");
    assert!(
        open_spill_files("self", dir.path()).is_empty(),
        "closed on error"
    );
    let e = sorter.add(&[0; 8]).unwrap_err();
    assert!(
        matches!(&e, Error::Closed(m) if m.contains("disk full")),
        "{e}"
    );
}

#[test]
fn a_small_tmpfs_fills_up_as_disk_full() {
    let dir = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(dir.path())
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (needs root and mount rights)");
        return;
    }
    let mut sorter = spilled_sorter(dir.path(), None);
    let e = add_many(&mut sorter, 20_000)
        .and_then(|()| sorter.finish())
        .unwrap_err();
    drop(sorter);
    let files = files_in(dir.path());
    let _ = std::process::Command::new("umount")
        .arg(dir.path())
        .status();
    assert!(matches!(e, Error::DiskFull(_)), "{e}");
    assert_eq!(files, 0);
}

/// A sorter in 4 KiB off-heap pages, which spills with direct I/O where the file system has it.
fn spilled_sorter_off_heap(dir: &Path, _fault: Option<Arc<WriteFault>>) -> ExternalSorter {
    let pages = (0..16)
        .map(|_| Segment::allocate_off_heap(4096, memseg::OffHeapOptions::default()).unwrap())
        .collect();
    let config = SortConfig {
        direct_io: DirectIo::Always,
        ..config(KeyConfig::bytes(0, 8), dir)
    };
    ExternalSorter::new(pages, config).unwrap()
}

/// Spills, finishes, and damages the first spill file with `damage` before reading.
fn read_damaged(damage: impl Fn(&Path)) -> Error {
    read_damaged_with(spilled_sorter, damage)
}

fn read_damaged_with(
    make: fn(&Path, Option<Arc<WriteFault>>) -> ExternalSorter,
    damage: impl Fn(&Path),
) -> Error {
    let dir = tempfile::tempdir().unwrap();
    let mut sorter = make(dir.path(), None);
    add_many(&mut sorter, 3000).unwrap();
    sorter.finish().unwrap();
    assert!(sorter.stats().spilled_runs > 2);
    assert_eq!(files_in(dir.path()), 0, "unlinked at once");
    let files = open_spill_files("self", dir.path());
    assert!(!files.is_empty(), "the runs to merge are open");
    damage(&files[files.len() / 2]);
    let e = loop {
        match sorter.next_record() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a damaged run was read to the end"),
            Err(e) => break e,
        }
    };
    assert!(
        open_spill_files("self", dir.path()).is_empty(),
        "closed on error"
    );
    e
}

#[test]
fn a_truncated_spill_file_is_corrupted() {
    let e = read_damaged(|path| {
        let len = std::fs::metadata(path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.set_len(len - 1000).unwrap();
    });
    assert!(
        matches!(&e, Error::Corrupted(m) if m.contains("truncated")),
        "{e}"
    );
}

#[test]
fn a_flipped_byte_in_a_spill_file_is_corrupted() {
    let e = read_damaged(|path| {
        let mut bytes = std::fs::read(path).unwrap();
        let at = bytes.len() - 700;
        bytes[at] ^= 0x04;
        std::fs::write(path, bytes).unwrap();
    });
    assert!(
        matches!(&e, Error::Corrupted(m) if m.contains("checksum")),
        "{e}"
    );
}

#[test]
fn too_little_memory_and_bad_records_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = ExternalSorter::new(pages(2, 4096), config(KeyConfig::bytes(0, 8), dir.path()))
        .unwrap_err();
    assert!(
        matches!(&e, Error::BudgetExhausted(m) if m.contains("at least 3")),
        "{e}"
    );
    let e = ExternalSorter::new(
        pages(3, 4096),
        config(KeyConfig::bytes(0, 8), &dir.path().join("nope")),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Io(_)), "{e}");

    let mut sorter =
        ExternalSorter::new(pages(3, 256), config(KeyConfig::bytes(0, 8), dir.path())).unwrap();
    assert!(matches!(
        sorter.add(&[1; 7]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        sorter.add(&[1; 233]),
        Err(Error::InvalidArgument(_))
    ));
    sorter.add(&[1; 232]).unwrap();
    assert!(matches!(
        sorter.next_record(),
        Err(Error::InvalidArgument(_))
    ));
    sorter.finish().unwrap();
    assert!(sorter.add(&[1; 8]).is_err(), "no adds after finish");
    assert!(sorter.finish().is_err());
    assert_eq!(sorter.next_record().unwrap(), Some(&[1u8; 232][..]));
    assert_eq!(sorter.stats().records, 1);
}

#[test]
fn with_direct_io_damaged_spill_files_are_corrupted_too() {
    let e = read_damaged_with(spilled_sorter_off_heap, |path| {
        let len = std::fs::metadata(path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.set_len(len - 1000).unwrap();
    });
    assert!(
        matches!(&e, Error::Corrupted(m) if m.contains("truncated")),
        "{e}"
    );
    let e = read_damaged_with(spilled_sorter_off_heap, |path| {
        // In place, in the last block: the first blocks may be read ahead already (from the
        // file as it was), and rewriting the whole file would race with those reads.
        use std::os::unix::fs::FileExt;
        let bytes = std::fs::read(path).unwrap();
        let at = bytes.len() - 700;
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.write_all_at(&[bytes[at] ^ 0x80], at as u64).unwrap();
    });
    assert!(
        matches!(&e, Error::Corrupted(m) if m.contains("checksum")),
        "{e}"
    );
}

#[test]
fn off_heap_pages_sort_with_direct_io_as_with_the_page_cache() {
    let records: Vec<Vec<u8>> = (0..20_000u64)
        .map(|i| {
            let mut r = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes().to_vec();
            r.extend_from_slice(&[(i % 251) as u8; 30]);
            r
        })
        .collect();
    let key = KeyConfig::bytes(0, 8);
    let mut outputs = Vec::new();
    for direct_io in [DirectIo::Always, DirectIo::Never] {
        let dir = tempfile::tempdir().unwrap();
        let pages = (0..16)
            .map(|_| Segment::allocate_off_heap(4096, memseg::OffHeapOptions::default()).unwrap())
            .collect();
        let config = SortConfig {
            direct_io,
            ..config(key.clone(), dir.path())
        };
        let mut sorter = ExternalSorter::new(pages, config).unwrap();
        for r in &records {
            sorter.add(r).unwrap();
        }
        sorter.finish().unwrap();
        assert!(sorter.stats().spilled_runs > 16);
        let mut out = Vec::new();
        while let Some(r) = sorter.next_record().unwrap() {
            out.push(r.to_vec());
        }
        drop(sorter);
        assert_eq!(files_in(dir.path()), 0);
        assert_sorted_like_std(&records, &out, &key);
        outputs.push(out);
    }
    assert_eq!(outputs[0].len(), outputs[1].len());
}

/// Set in the child process of [`a_sort_killed_while_spilling_leaves_no_files`]: the directory
/// it spills to.
const KILLED_CHILD_DIR: &str = "MEMSEG_TEST_KILLED_CHILD_DIR";

/// Kills the child when dropped, should the test fail before it does.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_sort_killed_while_spilling_leaves_no_files() {
    if let Some(dir) = std::env::var_os(KILLED_CHILD_DIR) {
        // The child: sorts and spills until it is killed (or, if never, for a while).
        let mut sorter = spilled_sorter(Path::new(&dir), None);
        add_many(&mut sorter, 50_000_000).unwrap();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_sort_killed_while_spilling_leaves_no_files",
            "--test-threads=1",
        ])
        .env(KILLED_CHILD_DIR, dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let pid = child.0.id().to_string();
    let start = std::time::Instant::now();
    while open_spill_files(&pid, dir.path()).len() < 3 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the child never spilled"
        );
        assert!(child.0.try_wait().unwrap().is_none(), "the child ended");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.0.kill().unwrap(); // SIGKILL: no destructor runs
    let status = child.0.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert_eq!(files_in(dir.path()), 0, "no spill file left behind");
}
