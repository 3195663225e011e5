"""memseg from Python, through ctypes: the C ABI as a Python host sees it.

No compiler and no build step: the module loads ``libmemseg.so`` (``MEMSEG_LIBRARY`` names it,
else the system's loader finds it) and declares the functions it uses. Handles are the C
ABI's one-field structs, passed by value; a failing call raises ``MemsegError`` with the
status name and the library's message for this thread. A segment's bytes are a
``memoryview`` over the memory ``memseg_segment_raw()`` lends (the buffer protocol: no call
per access, and ``struct.pack_into`` / ``numpy.frombuffer`` work on it directly). Like the
pointer it comes from, the view is valid until the segment or page goes back; using it after
that is the one misuse the library cannot catch.

    import memseg
    with memseg.Manager(64 * 32768, preallocate=True) as manager:
        lease = manager.open_lease("demo", quota_pages=4)
        page = lease.allocate()
        struct.pack_into(">Q", page.view(), 0, 42)     # big-endian, straight into the page
        assert page.get_u64_be(0) == 42                # the same bytes through the ABI
        lease.release(page)
        lease.close()

Covers segments, managers, leases, the external sorter (``Sorter``: records in, then out in
key order, spilling to disk when its memory is full) and buffer pools (``NetworkPool``,
``LocalPool``, ``Buffer``: counted references to pooled segments); the views follow the same
conventions.
"""

import ctypes
import ctypes.util
import os

STATUS_OK = 0
STATUS_END_OF_DATA = 13
NETWORK_POOL_HEAP = 1 << 0
NO_CHANNEL = 2**32 - 1
MEMORY_KIND_HEAP = 1
MEMORY_KIND_OFFHEAP = 2
MANAGER_PREALLOCATE = 1 << 0


def _handle_type(name):
    return type(name, (ctypes.Structure,), {"_fields_": [("bits", ctypes.c_uint64)]})


_Segment = _handle_type("memseg_segment")
_Manager = _handle_type("memseg_manager")
_Lease = _handle_type("memseg_lease")
_Sorter = _handle_type("memseg_sorter")
_NetworkPool = _handle_type("memseg_network_pool")
_LocalPool = _handle_type("memseg_local_pool")
_Buffer = _handle_type("memseg_buffer")


class _LocalPoolConfig(ctypes.Structure):
    _fields_ = [
        ("min", ctypes.c_size_t),
        ("max", ctypes.c_size_t),
        ("channels", ctypes.c_uint32),
        ("max_per_channel", ctypes.c_uint32),
        ("max_overdraft", ctypes.c_size_t),
    ]


class _ManagerConfig(ctypes.Structure):
    _fields_ = [
        ("total_bytes", ctypes.c_uint64),
        ("page_size", ctypes.c_size_t),
        ("kind", ctypes.c_int32),
        ("flags", ctypes.c_uint32),
    ]


class _LeaseUsage(ctypes.Structure):
    _fields_ = [
        ("pages", ctypes.c_size_t),
        ("peak_pages", ctypes.c_size_t),
        ("reserved_bytes", ctypes.c_uint64),
        ("quota_pages", ctypes.c_size_t),
    ]


class _SortConfig(ctypes.Structure):
    _fields_ = [
        ("memory_size", ctypes.c_size_t),
        ("page_size", ctypes.c_size_t),
        ("key_offset", ctypes.c_size_t),
        ("key_length", ctypes.c_size_t),
        ("prefix_length", ctypes.c_size_t),
        ("compare", ctypes.c_void_p),
        ("compare_ctx", ctypes.c_void_p),
        ("temp_dir", ctypes.c_char_p),
    ]


class _SortStats(ctypes.Structure):
    _fields_ = [
        ("records", ctypes.c_uint64),
        ("record_bytes", ctypes.c_uint64),
        ("spilled_runs", ctypes.c_uint64),
        ("spilled_bytes", ctypes.c_uint64),
        ("merge_passes", ctypes.c_uint64),
        ("peak_memory_bytes", ctypes.c_uint64),
        ("memory_bytes", ctypes.c_uint64),
    ]


def _load():
    path = os.environ.get("MEMSEG_LIBRARY") or ctypes.util.find_library("memseg")
    if path is None:
        raise OSError("libmemseg not found: set MEMSEG_LIBRARY to the path of libmemseg.so")
    lib = ctypes.CDLL(path)
    status = ctypes.c_int32
    size, u64, p = ctypes.c_size_t, ctypes.c_uint64, ctypes.POINTER
    signatures = {
        "memseg_status_name": (ctypes.c_char_p, [ctypes.c_int32]),
        "memseg_last_error_message": (size, [ctypes.c_char_p, size]),
        "memseg_version": (ctypes.c_uint32, []),
        "memseg_segment_new_heap": (status, [size, p(_Segment)]),
        "memseg_segment_new_offheap": (status, [size, ctypes.c_uint32, p(_Segment)]),
        "memseg_segment_free": (status, [_Segment]),
        "memseg_segment_size": (status, [_Segment, p(size)]),
        "memseg_segment_raw": (status, [_Segment, p(p(ctypes.c_uint8)), p(size)]),
        "memseg_segment_get_u64_be": (status, [_Segment, size, p(u64)]),
        "memseg_segment_put_u64_be": (status, [_Segment, size, u64]),
        "memseg_manager_config_default": (_ManagerConfig, [u64]),
        "memseg_manager_new": (status, [p(_ManagerConfig), p(_Manager)]),
        "memseg_manager_stats_json": (status, [_Manager, ctypes.c_char_p, size, p(size)]),
        "memseg_manager_close": (status, [_Manager, ctypes.c_char_p, size, p(size)]),
        "memseg_lease_open": (status, [_Manager, ctypes.c_char_p, size, p(_Lease)]),
        "memseg_lease_allocate": (status, [_Lease, p(_Segment)]),
        "memseg_lease_release": (status, [_Lease, _Segment]),
        "memseg_lease_get_usage": (status, [_Lease, p(_LeaseUsage)]),
        "memseg_lease_close": (status, [_Lease, ctypes.c_void_p]),
        "memseg_sorter_new": (status, [p(_SortConfig), p(_Sorter)]),
        "memseg_sorter_new_on_lease": (status, [_Lease, p(_SortConfig), p(_Sorter)]),
        "memseg_sorter_add": (status, [_Sorter, ctypes.c_char_p, size]),
        "memseg_sorter_finish": (status, [_Sorter]),
        "memseg_sorter_next": (status, [_Sorter, p(p(ctypes.c_uint8)), p(size)]),
        "memseg_sorter_stats": (status, [_Sorter, p(_SortStats)]),
        "memseg_sorter_free": (status, [_Sorter]),
        "memseg_network_pool_new": (status, [size, size, ctypes.c_uint32, p(_NetworkPool)]),
        "memseg_network_pool_destroy": (status, [_NetworkPool]),
        "memseg_local_pool_new": (status, [_NetworkPool, p(_LocalPoolConfig), p(_LocalPool)]),
        "memseg_local_pool_destroy": (status, [_LocalPool]),
        "memseg_local_pool_request_blocking": (
            status,
            [_LocalPool, ctypes.c_uint32, ctypes.c_int64, p(_Buffer)],
        ),
        "memseg_buffer_raw": (status, [_Buffer, p(p(ctypes.c_uint8)), p(size)]),
        "memseg_buffer_size": (status, [_Buffer, p(size)]),
        "memseg_buffer_append": (status, [_Buffer, ctypes.c_char_p, size]),
        "memseg_buffer_read": (status, [_Buffer, ctypes.c_char_p, size]),
        "memseg_buffer_retain": (status, [_Buffer]),
        "memseg_buffer_release": (status, [_Buffer]),
        "memseg_buffer_ref_count": (status, [_Buffer, p(ctypes.c_uint32)]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    return lib


_lib = _load()


class MemsegError(Exception):
    """A failed call: ``status`` is the code, ``name`` its name, and the text the message."""

    def __init__(self, status, message):
        self.status = status
        self.name = _lib.memseg_status_name(status).decode()
        super().__init__(f"{self.name}: {message}")


def _last_error_message():
    needed = _lib.memseg_last_error_message(None, 0)
    buf = ctypes.create_string_buffer(needed + 1)
    _lib.memseg_last_error_message(buf, len(buf))
    return buf.value.decode(errors="replace")


def _check(status):
    if status != STATUS_OK:
        raise MemsegError(status, _last_error_message())


def _text(call, *args):
    """Runs a call that copies text into a caller buffer, sized by a first call."""
    needed = ctypes.c_size_t(0)
    _check(call(*args, None, 0, ctypes.byref(needed)))
    buf = ctypes.create_string_buffer(needed.value + 1)
    _check(call(*args, buf, len(buf), ctypes.byref(needed)))
    return buf.value.decode()


def _lent_memory(call, handle):
    """The memory a ``*_raw`` call lends for ``handle`` as a writable memoryview (no copy)."""
    ptr = ctypes.POINTER(ctypes.c_uint8)()
    n = ctypes.c_size_t()
    _check(call(handle, ctypes.byref(ptr), ctypes.byref(n)))
    array = (ctypes.c_uint8 * n.value).from_address(ctypes.addressof(ptr.contents))
    return memoryview(array).cast("B")


def version():
    """The linked library's version as (major, minor, patch)."""
    number = _lib.memseg_version()
    return number // 1_000_000, number // 1000 % 1000, number % 1000


class Segment:
    """A segment handle. ``Segment.heap(n)`` and ``Segment.offheap(n)`` own theirs (``free``
    ends it); a lease's page is the lease's and goes back with ``Lease.release``."""

    def __init__(self, handle, owned):
        self._handle = handle
        self._owned = owned

    @classmethod
    def heap(cls, size):
        handle = _Segment()
        _check(_lib.memseg_segment_new_heap(size, ctypes.byref(handle)))
        return cls(handle, owned=True)

    @classmethod
    def offheap(cls, size, flags=0):
        handle = _Segment()
        _check(_lib.memseg_segment_new_offheap(size, flags, ctypes.byref(handle)))
        return cls(handle, owned=True)

    @property
    def bits(self):
        return self._handle.bits

    def size(self):
        n = ctypes.c_size_t()
        _check(_lib.memseg_segment_size(self._handle, ctypes.byref(n)))
        return n.value

    def view(self):
        """The segment's bytes as a writable memoryview (no copy, no call per access)."""
        return _lent_memory(_lib.memseg_segment_raw, self._handle)

    def get_u64_be(self, offset):
        value = ctypes.c_uint64()
        _check(_lib.memseg_segment_get_u64_be(self._handle, offset, ctypes.byref(value)))
        return value.value

    def put_u64_be(self, offset, value):
        _check(_lib.memseg_segment_put_u64_be(self._handle, offset, value))

    def free(self):
        if not self._owned:
            raise ValueError("a lease's page goes back with Lease.release, not free")
        _check(_lib.memseg_segment_free(self._handle))


class Lease:
    """An owner's account at a manager (``Manager.open_lease``)."""

    def __init__(self, handle):
        self._handle = handle

    def allocate(self):
        page = _Segment()
        _check(_lib.memseg_lease_allocate(self._handle, ctypes.byref(page)))
        return Segment(page, owned=False)

    def release(self, page):
        _check(_lib.memseg_lease_release(self._handle, page._handle))

    def usage(self):
        """(pages held, peak pages, reserved bytes, quota pages or 0)."""
        usage = _LeaseUsage()
        _check(_lib.memseg_lease_get_usage(self._handle, ctypes.byref(usage)))
        return usage.pages, usage.peak_pages, usage.reserved_bytes, usage.quota_pages

    def close(self):
        _check(_lib.memseg_lease_close(self._handle, None))


class Manager:
    """A memory manager; a context manager that closes it (and any lease left open)."""

    def __init__(self, total_bytes, page_size=None, heap=False, preallocate=False):
        config = _lib.memseg_manager_config_default(total_bytes)
        if page_size is not None:
            config.page_size = page_size
        config.kind = MEMORY_KIND_HEAP if heap else MEMORY_KIND_OFFHEAP
        config.flags = MANAGER_PREALLOCATE if preallocate else 0
        self._handle = _Manager()
        _check(_lib.memseg_manager_new(ctypes.byref(config), ctypes.byref(self._handle)))

    def open_lease(self, name, quota_pages=0):
        lease = _Lease()
        _check(
            _lib.memseg_lease_open(self._handle, name.encode(), quota_pages, ctypes.byref(lease))
        )
        return Lease(lease)

    def stats_json(self):
        return _text(_lib.memseg_manager_stats_json, self._handle)

    def close(self, report_capacity=1 << 16):
        """Closes the manager; returns its leak report (JSON), which names the leases left
        open. Closing happens once, so the report is cut at ``report_capacity`` bytes."""
        needed = ctypes.c_size_t(0)
        buf = ctypes.create_string_buffer(report_capacity)
        _check(_lib.memseg_manager_close(self._handle, buf, len(buf), ctypes.byref(needed)))
        return buf.value.decode(errors="replace")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Sorter:
    """An external sorter of byte records by the key at ``key_offset`` (``key_length`` bytes,
    compared as unsigned bytes). Its memory is ``memory_size`` bytes of its own pages, or of
    ``lease``'s pages (``page_size`` then defaults to the lease's); when that is full it spills
    sorted runs to ``temp_dir`` (the system's temporary directory by default) and merges them.
    A context manager that frees it, with its files."""

    def __init__(
        self,
        key_offset,
        key_length,
        memory_size=8 << 20,
        page_size=None,
        prefix_length=None,
        temp_dir=None,
        lease=None,
    ):
        config = _SortConfig()
        config.memory_size = memory_size
        config.page_size = page_size if page_size is not None else (0 if lease else 32768)
        config.key_offset = key_offset
        config.key_length = key_length
        config.prefix_length = min(key_length, 56) if prefix_length is None else prefix_length
        config.temp_dir = temp_dir.encode() if temp_dir is not None else None
        self._handle = _Sorter()
        if lease is None:
            _check(_lib.memseg_sorter_new(ctypes.byref(config), ctypes.byref(self._handle)))
        else:
            _check(
                _lib.memseg_sorter_new_on_lease(
                    lease._handle, ctypes.byref(config), ctypes.byref(self._handle)
                )
            )

    def add(self, record):
        """Adds one record (bytes-like; copied into the sorter's memory)."""
        _check(_lib.memseg_sorter_add(self._handle, bytes(record), len(record)))

    def finish(self):
        """Ends the input; the records then come out in key order by iterating."""
        _check(_lib.memseg_sorter_finish(self._handle))

    def __iter__(self):
        ptr = ctypes.POINTER(ctypes.c_uint8)()
        n = ctypes.c_size_t()
        while True:
            status = _lib.memseg_sorter_next(self._handle, ctypes.byref(ptr), ctypes.byref(n))
            if status == STATUS_END_OF_DATA:
                return
            _check(status)
            # Copied out: the sorter's memory is lent only until its next call.
            yield ctypes.string_at(ptr, n.value)

    def stats(self):
        """What the sorter did: records, bytes, spilled runs and bytes, merge passes, memory."""
        stats = _SortStats()
        _check(_lib.memseg_sorter_stats(self._handle, ctypes.byref(stats)))
        return {name: getattr(stats, name) for name, _ in _SortStats._fields_}

    def free(self):
        _check(_lib.memseg_sorter_free(self._handle))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.free()


class Buffer:
    """A counted reference to a pooled segment (``LocalPool.request``). ``release`` drops this
    reference; the last one recycles the segment to its pool."""

    def __init__(self, handle):
        self._handle = handle

    def view(self):
        """The buffer's whole capacity as a writable memoryview (valid until its last release)."""
        return _lent_memory(_lib.memseg_buffer_raw, self._handle)

    def size(self):
        """The writer index: bytes written so far."""
        n = ctypes.c_size_t()
        _check(_lib.memseg_buffer_size(self._handle, ctypes.byref(n)))
        return n.value

    def append(self, data):
        _check(_lib.memseg_buffer_append(self._handle, bytes(data), len(data)))

    def read(self, n):
        """``n`` bytes from the reader index, which moves past them."""
        out = ctypes.create_string_buffer(n)
        _check(_lib.memseg_buffer_read(self._handle, out, n))
        return out.raw

    def retain(self):
        """One more reference (the handle is the same: each reference is released once)."""
        _check(_lib.memseg_buffer_retain(self._handle))
        return Buffer(_Buffer(self._handle.bits))

    def ref_count(self):
        n = ctypes.c_uint32()
        _check(_lib.memseg_buffer_ref_count(self._handle, ctypes.byref(n)))
        return n.value

    def release(self):
        _check(_lib.memseg_buffer_release(self._handle))


class NetworkPool:
    """``count`` segments of ``segment_size`` bytes (off-heap, or heap), shared out to local
    pools. A context manager that destroys it."""

    def __init__(self, count, segment_size, heap=False):
        self._handle = _NetworkPool()
        flags = NETWORK_POOL_HEAP if heap else 0
        _check(_lib.memseg_network_pool_new(count, segment_size, flags, ctypes.byref(self._handle)))

    def local_pool(self, min_buffers, max_buffers, channels=0, max_per_channel=0, overdraft=0):
        """A local pool that may hold from ``min_buffers`` to ``max_buffers`` of the segments."""
        config = _LocalPoolConfig(min_buffers, max_buffers, channels, max_per_channel, overdraft)
        handle = _LocalPool()
        _check(_lib.memseg_local_pool_new(self._handle, ctypes.byref(config), ctypes.byref(handle)))
        return LocalPool(handle)

    def destroy(self):
        _check(_lib.memseg_network_pool_destroy(self._handle))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()


class LocalPool:
    """A task's share of a network pool (``NetworkPool.local_pool``)."""

    def __init__(self, handle):
        self._handle = handle

    def request(self, channel=None, timeout_ms=0):
        """A buffer, waiting up to ``timeout_ms`` (negative: without limit) for one to be
        recycled; raises ``MEMSEG_STATUS_TIMEOUT`` if none came."""
        buffer = _Buffer()
        channel = NO_CHANNEL if channel is None else channel
        _check(
            _lib.memseg_local_pool_request_blocking(
                self._handle, channel, timeout_ms, ctypes.byref(buffer)
            )
        )
        return Buffer(buffer)

    def destroy(self):
        _check(_lib.memseg_local_pool_destroy(self._handle))
