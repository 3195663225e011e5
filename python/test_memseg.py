"""memseg through ctypes, as a Python host uses it: ``MEMSEG_LIBRARY=path/to/libmemseg.so
python3 python/test_memseg.py`` (``cargo test --test python_ctypes`` runs it against the
library it built, and sets ``MEMSEG_EXPECTED_VERSION`` to the crate's version)."""

import json
import os
import random
import struct
import sys
import tempfile
import unittest

import memseg

PAGE = 32768


class SegmentTest(unittest.TestCase):
    def test_the_memoryview_and_the_abi_see_the_same_bytes(self):
        for segment in (memseg.Segment.heap(64), memseg.Segment.offheap(64)):
            view = segment.view()
            self.assertEqual((len(view), segment.size()), (64, 64))
            self.assertEqual(bytes(view), bytes(64), "zero-filled")
            struct.pack_into(">Q", view, 56, 0x0102030405060708)
            self.assertEqual(segment.get_u64_be(56), 0x0102030405060708)
            segment.put_u64_be(0, 0xCAFE)
            self.assertEqual(struct.unpack_from("<Q", view, 0)[0], 0xFECA000000000000)
            view.release()
            segment.free()

    def test_bad_input_raises_with_the_status_and_the_message(self):
        segment = memseg.Segment.heap(16)
        with self.assertRaises(memseg.MemsegError) as caught:
            segment.get_u64_be(9)
        self.assertEqual(caught.exception.name, "MEMSEG_STATUS_OUT_OF_BOUNDS")
        self.assertIn("exceeds size 16", str(caught.exception))
        with self.assertRaises(memseg.MemsegError) as caught:
            segment.put_u64_be(2**64 - 4, 1)
        self.assertEqual(caught.exception.name, "MEMSEG_STATUS_OUT_OF_BOUNDS")
        with self.assertRaises(memseg.MemsegError) as caught:
            memseg.Segment.heap(0)
        self.assertEqual(caught.exception.name, "MEMSEG_STATUS_INVALID_ARGUMENT")
        segment.free()
        for call in (segment.size, segment.free, lambda: segment.get_u64_be(0)):
            with self.assertRaises(memseg.MemsegError) as caught:
                call()
            self.assertEqual(caught.exception.name, "MEMSEG_STATUS_STALE_HANDLE")
        forged = memseg.Segment(memseg._Segment(0), owned=True)
        with self.assertRaises(memseg.MemsegError) as caught:
            forged.size()
        self.assertEqual(caught.exception.name, "MEMSEG_STATUS_INVALID_HANDLE")


class ManagerTest(unittest.TestCase):
    def test_pages_come_from_a_lease_and_go_stale_when_released(self):
        with memseg.Manager(4 * PAGE, preallocate=True) as manager:
            lease = manager.open_lease("python", quota_pages=2)
            page = lease.allocate()
            view = page.view()
            self.assertEqual(len(view), PAGE)
            struct.pack_into(">d", view, PAGE - 8, -1.5)
            self.assertEqual(page.get_u64_be(PAGE - 8), 0xBFF8000000000000)
            other = lease.allocate()
            with self.assertRaises(memseg.MemsegError) as caught:
                lease.allocate()
            self.assertEqual(caught.exception.name, "MEMSEG_STATUS_QUOTA_EXHAUSTED")
            self.assertEqual(lease.usage(), (2, 2, 0, 2))
            stats = json.loads(manager.stats_json())
            self.assertEqual((stats["pages_used"], stats["leases"][0]["name"]), (2, "python"))
            view.release()
            lease.release(page)
            with self.assertRaises(memseg.MemsegError) as caught:
                lease.release(page)
            self.assertEqual(caught.exception.name, "MEMSEG_STATUS_STALE_HANDLE")
            with self.assertRaises(ValueError):
                other.free()
            lease.release(other)
            lease.close()
            with self.assertRaises(memseg.MemsegError) as caught:
                lease.allocate()
            self.assertEqual(caught.exception.name, "MEMSEG_STATUS_STALE_HANDLE")

    def test_closing_the_manager_reports_the_leases_left_open(self):
        manager = memseg.Manager(4 * PAGE, heap=True)
        lease = manager.open_lease("left open")
        page = lease.allocate()
        report = json.loads(manager.close())
        self.assertEqual(report["open_leases"][0]["name"], "left open")
        self.assertEqual(report["open_leases"][0]["pages"], 1)
        with self.assertRaises(memseg.MemsegError) as caught:
            page.size()
        self.assertEqual(caught.exception.name, "MEMSEG_STATUS_STALE_HANDLE")
        with self.assertRaises(memseg.MemsegError):
            manager.close()
        with self.assertRaises(memseg.MemsegError) as caught:
            memseg.Manager(100)
        self.assertEqual(caught.exception.name, "MEMSEG_STATUS_INVALID_ARGUMENT")

    def test_the_version_is_the_library_version(self):
        expected = os.environ.get("MEMSEG_EXPECTED_VERSION")
        if expected is None:
            self.skipTest("MEMSEG_EXPECTED_VERSION is not set")
        self.assertEqual(memseg.version(), tuple(int(part) for part in expected.split(".")))


class SorterTest(unittest.TestCase):
    def test_records_come_out_in_key_order_after_spilling(self):
        rng = random.Random(7)
        records = [rng.randbytes(4) + struct.pack(">Q", i) + rng.randbytes(rng.randrange(0, 40))
                   for i in range(20000)]
        with tempfile.TemporaryDirectory() as spill_dir:
            with memseg.Sorter(0, 4, memory_size=8 * 4096, page_size=4096,
                               temp_dir=spill_dir) as sorter:
                for record in records:
                    sorter.add(record)
                sorter.finish()
                out = list(sorter)
                stats = sorter.stats()
            self.assertEqual(os.listdir(spill_dir), [], "spill files have no name")
        self.assertEqual([r[:4] for r in out], sorted(r[:4] for r in records))
        self.assertEqual(sorted(out), sorted(records), "every record once")
        self.assertEqual(stats["records"], len(records))
        self.assertGreater(stats["spilled_runs"], 1)
        self.assertLessEqual(stats["peak_memory_bytes"], stats["memory_bytes"])

    def test_a_sorter_on_a_lease_is_charged_to_it_and_refuses_bad_input(self):
        with memseg.Manager(16 * PAGE) as manager:
            lease = manager.open_lease("sort", quota_pages=8)
            with self.assertRaises(memseg.MemsegError) as caught:
                memseg.Sorter(0, 8, memory_size=16 * PAGE, lease=lease)
            self.assertEqual(caught.exception.name, "MEMSEG_STATUS_QUOTA_EXHAUSTED")
            with memseg.Sorter(0, 8, memory_size=8 * PAGE, lease=lease) as sorter:
                self.assertEqual(lease.usage()[0], 8)
                with self.assertRaises(memseg.MemsegError) as caught:
                    sorter.add(b"short")
                self.assertEqual(caught.exception.name, "MEMSEG_STATUS_INVALID_ARGUMENT")
                with self.assertRaises(memseg.MemsegError) as caught:
                    next(iter(sorter))
                self.assertEqual(caught.exception.name, "MEMSEG_STATUS_INVALID_ARGUMENT")
                for value in (3, 1, 2):
                    sorter.add(struct.pack(">Q", value))
                sorter.finish()
                self.assertEqual([struct.unpack(">Q", r)[0] for r in sorter], [1, 2, 3])
                self.assertEqual(sorter.stats()["spilled_runs"], 0)
            self.assertEqual(lease.usage()[0], 0, "the pages went back with the sorter")
            lease.close()


class PoolTest(unittest.TestCase):
    def test_buffers_are_counted_references_recycled_by_the_last_release(self):
        for heap in (False, True):
            with memseg.NetworkPool(4, 4096, heap=heap) as network:
                pool = network.local_pool(1, 2)
                first = pool.request()
                view = first.view()
                self.assertEqual(len(view), 4096)
                first.append(b"hello, ")
                first.append(b"pool")
                self.assertEqual((first.size(), bytes(view[:11])), (11, b"hello, pool"))
                self.assertEqual(first.read(7), b"hello, ")
                second = pool.request()
                with self.assertRaises(memseg.MemsegError) as caught:
                    pool.request(timeout_ms=10)
                self.assertEqual(caught.exception.name, "MEMSEG_STATUS_TIMEOUT")
                again = first.retain()
                self.assertEqual(first.ref_count(), 2)
                first.release()
                with self.assertRaises(memseg.MemsegError) as caught:
                    pool.request(timeout_ms=0)
                self.assertEqual(caught.exception.name, "MEMSEG_STATUS_TIMEOUT", "one ref left")
                view.release()
                again.release()
                with self.assertRaises(memseg.MemsegError) as caught:
                    again.release()
                self.assertEqual(caught.exception.name, "MEMSEG_STATUS_STALE_HANDLE")
                third = pool.request(timeout_ms=0)
                with self.assertRaises(memseg.MemsegError) as caught:
                    third.append(bytes(4097))
                self.assertEqual(caught.exception.name, "MEMSEG_STATUS_OUT_OF_BOUNDS")
                with self.assertRaises(memseg.MemsegError) as caught:
                    third.read(1)
                self.assertEqual(caught.exception.name, "MEMSEG_STATUS_END_OF_DATA")
                third.release()
                second.release()
                pool.destroy()
                with self.assertRaises(memseg.MemsegError) as caught:
                    pool.request()
                self.assertEqual(caught.exception.name, "MEMSEG_STATUS_STALE_HANDLE")
        with self.assertRaises(memseg.MemsegError) as caught:
            memseg.NetworkPool(0, 4096)
        self.assertEqual(caught.exception.name, "MEMSEG_STATUS_INVALID_ARGUMENT")


if __name__ == "__main__":
    sys.exit(0 if unittest.main(exit=False).result.wasSuccessful() else 1)
