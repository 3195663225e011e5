/*
 * The memory manager from C: managers, leases, pages as lent segment handles, reservations,
 * transfer, waiting, pages a lease keeps cached, shared resources, stats (struct and JSON),
 * the failure snapshot, the close report and the memory plan — and every bad input: zero and
 * huge sizes, bad page sizes, NULL arguments, double release, release through the wrong
 * lease, use after lease close, close twice, manager close with open leases, and a
 * multi-threaded conservation check.
 */
#define _POSIX_C_SOURCE 200809L /* pthread barriers */
#undef NDEBUG
#include <assert.h>
#include <pthread.h>

#include "memseg_inline.h"
#include "memseg_test.h"

#define PAGE 4096u

static memseg_manager new_manager(size_t pages, bool preallocate, int32_t kind) {
  memseg_manager_config config = memseg_manager_config_default((uint64_t)pages * PAGE);
  memseg_manager manager = {0};
  config.page_size = PAGE;
  config.kind = kind;
  config.flags = preallocate ? MEMSEG_MANAGER_PREALLOCATE : 0;
  CHECK_OK(memseg_manager_new(&config, &manager));
  CHECK(manager.bits != 0);
  return manager;
}

static void close_clean(memseg_manager manager) {
  char report[256];
  size_t len = 0;
  CHECK_OK(memseg_manager_close(manager, report, sizeof report, &len));
  CHECK_STR(report, "{\"open_leases\":[],\"open_shared\":[]}");
  CHECK_EQ(len, strlen(report));
}

static memseg_lease open_lease(memseg_manager manager, const char *name, size_t quota) {
  memseg_lease lease = {0};
  CHECK_OK(memseg_lease_open(manager, name, quota, &lease));
  return lease;
}

static memseg_manager_stats stats_of(memseg_manager manager) {
  memseg_manager_stats stats;
  CHECK_OK(memseg_manager_get_stats(manager, &stats));
  return stats;
}

static void test_defaults_and_bad_configurations(void) {
  memseg_manager_config config = memseg_manager_config_default(1u << 20);
  memseg_manager manager = {0x55};
  static const size_t bad_pages[] = {0, 1, 2048, 3 * 4096, 4095, (size_t)1 << 31};
  size_t i;
  CHECK_EQ(config.total_bytes, 1u << 20);
  CHECK_EQ(config.page_size, 32768);
  CHECK_EQ(config.kind, MEMSEG_MEMORY_KIND_OFFHEAP);
  CHECK_EQ(config.flags, 0);
  for (i = 0; i < sizeof bad_pages / sizeof bad_pages[0]; i++) {
    memseg_manager_config bad = config;
    bad.page_size = bad_pages[i];
    mt_context("page size %zu", bad_pages[i]);
    CHECK_STATUS(memseg_manager_new(&bad, &manager), MEMSEG_STATUS_INVALID_ARGUMENT);
    CHECK_EQ(manager.bits, 0x55);
  }
  mt_context("");
  {
    memseg_manager_config bad = config;
    bad.total_bytes = 0; /* zero */
    CHECK_STATUS(memseg_manager_new(&bad, &manager), MEMSEG_STATUS_INVALID_ARGUMENT);
    bad.total_bytes = 32767; /* less than a page */
    CHECK_STATUS(memseg_manager_new(&bad, &manager), MEMSEG_STATUS_INVALID_ARGUMENT);
    bad.total_bytes = UINT64_MAX; /* huge */
    CHECK_STATUS(memseg_manager_new(&bad, &manager), MEMSEG_STATUS_INVALID_ARGUMENT);
    bad = config;
    bad.kind = MEMSEG_MEMORY_KIND_FOREIGN;
    CHECK_STATUS(memseg_manager_new(&bad, &manager), MEMSEG_STATUS_INVALID_ARGUMENT);
    bad.kind = 99;
    CHECK_STATUS(memseg_manager_new(&bad, &manager), MEMSEG_STATUS_INVALID_ARGUMENT);
    bad = config;
    bad.flags = 0x80;
    CHECK_STATUS(memseg_manager_new(&bad, &manager), MEMSEG_STATUS_INVALID_ARGUMENT);
    /* A preallocated budget no machine can map: the operating system refuses. */
    bad = config;
    bad.total_bytes = UINT64_C(1) << 60;
    bad.page_size = (size_t)1 << 30;
    bad.flags = MEMSEG_MANAGER_PREALLOCATE;
    CHECK_STATUS(memseg_manager_new(&bad, &manager), MEMSEG_STATUS_ALLOCATION_FAILED);
    CHECK_EQ(manager.bits, 0x55);
  }
  CHECK_STATUS(memseg_manager_new(NULL, &manager), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_manager_new(&config, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  /* Rounded down to whole pages: 100 KiB is 3 pages of 32 KiB. */
  config.total_bytes = 100 * 1024;
  CHECK_OK(memseg_manager_new(&config, &manager));
  {
    memseg_manager_stats stats = stats_of(manager);
    CHECK_EQ(stats.pages_total, 3);
    CHECK_EQ(stats.limit_bytes, 3 * 32768);
    CHECK_EQ(stats.page_size, 32768);
  }
  close_clean(manager);
}

static void test_pages_are_segments(bool preallocate, int32_t kind) {
  memseg_manager manager = new_manager(4, preallocate, kind);
  memseg_lease lease = open_lease(manager, "sort", 0);
  memseg_segment page, more[3];
  memseg_memory_kind page_kind;
  memseg_raw raw;
  uint64_t value = 0;
  size_t size = 0, live = mt_live_count();
  memseg_lease_usage usage;
  memseg_manager_stats stats;
  mt_context("preallocate %d kind %d", (int)preallocate, (int)kind);
  CHECK_OK(memseg_lease_allocate(lease, &page));
  CHECK_EQ(mt_live_count(), live + 1);
  CHECK_OK(memseg_segment_size(page, &size));
  CHECK_EQ(size, PAGE);
  CHECK_OK(memseg_segment_kind(page, &page_kind));
  CHECK_EQ(page_kind, kind);
  CHECK_OK(memseg_segment_put_u64_be(page, PAGE - 8, 0x0102030405060708u));
  CHECK_OK(memseg_raw_of(page, &raw));
  CHECK_EQ(raw.size, PAGE);
  CHECK_OK(memseg_raw_get_u64_be(raw, PAGE - 8, &value));
  CHECK_EQ(value, 0x0102030405060708u);
  CHECK_STATUS(memseg_segment_get_u64_be(page, PAGE - 7, &value), MEMSEG_STATUS_OUT_OF_BOUNDS);
  /* A lent page is not the host's to free. */
  CHECK_STATUS(memseg_segment_free(page), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_OK(memseg_lease_allocate_many(lease, 3, more));
  stats = stats_of(manager);
  CHECK_EQ(stats.pages_used, 4);
  CHECK_EQ(stats.pages_free, 0);
  CHECK_EQ(stats.used_bytes, 4 * PAGE);
  CHECK_EQ(stats.leases, 1);
  CHECK_OK(memseg_lease_release(lease, page));
  /* Stale after release: use and double release. */
  CHECK_STATUS(memseg_segment_get_u64_be(page, 0, &value), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_raw_of(page, &raw), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_lease_release(lease, page), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_lease_release_many(lease, more, 3));
  CHECK_STATUS(memseg_lease_release_many(lease, more, 3), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_lease_get_usage(lease, &usage));
  CHECK_EQ(usage.pages, 0);
  CHECK_EQ(usage.peak_pages, 4);
  CHECK_EQ(usage.quota_pages, 0);
  CHECK_EQ(stats_of(manager).pages_free, 4);
  CHECK_EQ(mt_live_count(), live);
  CHECK_OK(memseg_lease_close(lease, NULL));
  close_clean(manager);
  mt_context("");
}

static void test_budget_quota_and_the_failure_snapshot(void) {
  memseg_manager manager = new_manager(4, true, MEMSEG_MEMORY_KIND_OFFHEAP);
  memseg_lease big = open_lease(manager, "big", 0);
  memseg_lease small = open_lease(manager, "small", 2);
  memseg_segment pages[8], sentinel = {0x77};
  memseg_failure_snapshot snapshot;
  bool present = true;
  char json[1024];
  size_t len = 0, i;
  CHECK_OK(memseg_manager_failure(manager, &snapshot, &present));
  CHECK(!present);
  CHECK_OK(memseg_manager_failure_json(manager, json, sizeof json, &len));
  CHECK_STR(json, "null");
  CHECK_OK(memseg_lease_allocate_many(big, 2, pages));
  for (i = 0; i < 8; i++) {
    pages[2 + (i % 6)] = sentinel;
  }
  /* Quota: all or nothing, nothing written. */
  CHECK_STATUS(memseg_lease_allocate_many(small, 3, pages + 2), MEMSEG_STATUS_QUOTA_EXHAUSTED);
  CHECK_EQ(pages[2].bits, 0x77);
  CHECK_EQ(stats_of(manager).pages_used, 2);
  CHECK_OK(memseg_manager_failure(manager, &snapshot, &present));
  CHECK(present);
  CHECK_EQ(snapshot.status, MEMSEG_STATUS_QUOTA_EXHAUSTED);
  CHECK_OK(memseg_lease_allocate_many(small, 2, pages + 2));
  CHECK_STATUS(memseg_lease_allocate(small, &sentinel), MEMSEG_STATUS_QUOTA_EXHAUSTED);
  CHECK_STATUS(memseg_lease_allocate(big, &sentinel), MEMSEG_STATUS_BUDGET_EXHAUSTED);
  CHECK_EQ(sentinel.bits, 0x77);
  CHECK_OK(memseg_manager_failure(manager, &snapshot, &present));
  CHECK_EQ(snapshot.status, MEMSEG_STATUS_BUDGET_EXHAUSTED);
  CHECK_EQ(snapshot.limit_bytes, 4 * PAGE);
  CHECK_EQ(snapshot.used_bytes, 4 * PAGE);
  CHECK_EQ(snapshot.requested_bytes, PAGE);
  CHECK_EQ(snapshot.top_leases, 2);
  CHECK_OK(memseg_manager_failure_json(manager, NULL, 0, &len));
  CHECK(len < sizeof json);
  CHECK_OK(memseg_manager_failure_json(manager, json, sizeof json, &len));
  CHECK(strstr(json, "\"cause\":\"budget_exhausted\",\"lease\":\"big\"") != NULL);
  CHECK(strstr(json, "\"name\":\"small\"") != NULL);
  /* The message names the holders too. */
  {
    char message[512];
    memseg_last_error_message(message, sizeof message);
    CHECK(strstr(message, "'big'") != NULL && strstr(message, "'small'") != NULL);
  }
  /* Truncated copy: NUL-terminated, full length returned. */
  {
    char tiny[8];
    size_t full = 0;
    CHECK_OK(memseg_manager_failure_json(manager, tiny, sizeof tiny, &full));
    CHECK_EQ(full, len);
    CHECK_EQ(strlen(tiny), 7);
  }
  /* Zero and huge counts. */
  CHECK_STATUS(memseg_lease_allocate_many(big, 0, pages + 4), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_lease_allocate_many(big, SIZE_MAX, pages + 4),
               MEMSEG_STATUS_BUDGET_EXHAUSTED);
  CHECK_STATUS(memseg_lease_allocate_wait(big, 5, 10000, pages + 4),
               MEMSEG_STATUS_BUDGET_EXHAUSTED);
  CHECK_STATUS(memseg_lease_allocate_wait(big, 1, 10, pages + 4), MEMSEG_STATUS_TIMEOUT);
  CHECK_STATUS(memseg_lease_allocate(big, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_lease_allocate_many(big, 1, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_OK(memseg_lease_release_many(big, pages, 2));
  CHECK_OK(memseg_lease_release_many(small, pages + 2, 2));
  CHECK_OK(memseg_lease_close(big, NULL));
  CHECK_OK(memseg_lease_close(small, NULL));
  close_clean(manager);
}

static void test_release_through_the_wrong_lease_changes_nothing(void) {
  memseg_manager manager = new_manager(4, true, MEMSEG_MEMORY_KIND_HEAP);
  memseg_lease a = open_lease(manager, "a", 0), b = open_lease(manager, "b", 0);
  memseg_segment pa, pb, list[2], own = mt_heap(16);
  memseg_lease_usage usage;
  char message[256];
  CHECK_OK(memseg_lease_allocate(a, &pa));
  CHECK_OK(memseg_lease_allocate(b, &pb));
  CHECK_STATUS(memseg_lease_release(b, pa), MEMSEG_STATUS_INVALID_ARGUMENT);
  memseg_last_error_message(message, sizeof message);
  CHECK(strstr(message, "lease 'a'") != NULL);
  CHECK_STATUS(memseg_segment_free(pa), MEMSEG_STATUS_INVALID_ARGUMENT);
  memseg_last_error_message(message, sizeof message);
  CHECK(strstr(message, "is lent by lease 'a'") != NULL);
  CHECK_OK(memseg_segment_put_u8(pa, 0, 1)); /* still a's, still live */
  CHECK_STATUS(memseg_lease_release(a, own), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_lease_release(a, (memseg_segment){0}), MEMSEG_STATUS_INVALID_HANDLE);
  /* Many: one foreign page spoils the lot; duplicates too. */
  list[0] = pa;
  list[1] = pb;
  CHECK_STATUS(memseg_lease_release_many(a, list, 2), MEMSEG_STATUS_INVALID_ARGUMENT);
  list[1] = pa;
  CHECK_STATUS(memseg_lease_release_many(a, list, 2), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_lease_release_many(a, NULL, 1), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_OK(memseg_lease_release_many(a, NULL, 0));
  CHECK_OK(memseg_lease_get_usage(a, &usage));
  CHECK_EQ(usage.pages, 1);
  CHECK_EQ(stats_of(manager).pages_used, 2);
  /* Wrong kinds of handle. */
  {
    memseg_lease as_lease;
    memseg_segment as_segment;
    as_lease.bits = pa.bits;
    as_segment.bits = a.bits;
    CHECK_STATUS(memseg_lease_release(as_lease, pa), MEMSEG_STATUS_WRONG_HANDLE_KIND);
    CHECK_STATUS(memseg_lease_release(a, as_segment), MEMSEG_STATUS_WRONG_HANDLE_KIND);
  }
  mt_free(own);
  CHECK_OK(memseg_lease_release(a, pa));
  CHECK_OK(memseg_lease_release(b, pb));
  CHECK_OK(memseg_lease_close(a, NULL));
  CHECK_OK(memseg_lease_close(b, NULL));
  close_clean(manager);
}

/* Pages a lease keeps cached never count against its quota: a request for the whole quota,
 * or a page transferred in, is served while they are kept. */
static void test_kept_pages_never_count_against_the_quota(void) {
  memseg_manager manager = new_manager(8, true, MEMSEG_MEMORY_KIND_OFFHEAP);
  memseg_lease a = open_lease(manager, "a", 3), b = open_lease(manager, "b", 0);
  memseg_segment pages[3], page, moved;
  memseg_lease_usage usage;
  CHECK_OK(memseg_lease_allocate_many(a, 3, pages));
  CHECK_OK(memseg_lease_release_many(a, pages, 3));
  CHECK_OK(memseg_lease_allocate_many(a, 3, pages));
  CHECK_STATUS(memseg_lease_allocate(a, &page), MEMSEG_STATUS_QUOTA_EXHAUSTED);
  CHECK_OK(memseg_lease_release_many(a, pages + 1, 2));
  CHECK_OK(memseg_lease_allocate(b, &page));
  CHECK_OK(memseg_lease_transfer(b, page, a, &moved));
  CHECK_OK(memseg_lease_allocate(a, &pages[1]));
  CHECK_STATUS(memseg_lease_allocate(a, &page), MEMSEG_STATUS_QUOTA_EXHAUSTED);
  CHECK_OK(memseg_lease_get_usage(a, &usage));
  CHECK_EQ(usage.pages, 3);
  CHECK_EQ(usage.peak_pages, 3);
  CHECK_OK(memseg_lease_close(a, NULL));
  CHECK_OK(memseg_lease_close(b, NULL));
  close_clean(manager);
}

static void test_transfer(void) {
  memseg_manager manager = new_manager(4, false, MEMSEG_MEMORY_KIND_OFFHEAP);
  memseg_manager other = new_manager(1, false, MEMSEG_MEMORY_KIND_OFFHEAP);
  memseg_lease a = open_lease(manager, "a", 0), b = open_lease(manager, "b", 1);
  memseg_lease c = open_lease(other, "c", 0);
  memseg_segment p, q, moved = {0x77}, same = {0};
  memseg_lease_usage ua, ub;
  uint32_t value = 0;
  CHECK_OK(memseg_lease_allocate(a, &p));
  CHECK_OK(memseg_lease_allocate(a, &q));
  CHECK_OK(memseg_segment_put_u32_le(p, 100, 0xCAFEu));
  CHECK_OK(memseg_lease_transfer(a, p, b, &moved));
  CHECK(moved.bits != p.bits);
  CHECK_STATUS(memseg_segment_get_u32_le(p, 100, &value), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_segment_get_u32_le(moved, 100, &value));
  CHECK_EQ(value, 0xCAFEu);
  CHECK_OK(memseg_lease_get_usage(a, &ua));
  CHECK_OK(memseg_lease_get_usage(b, &ub));
  CHECK_EQ(ua.pages, 1);
  CHECK_EQ(ub.pages, 1);
  CHECK_EQ(stats_of(manager).pages_used, 2);
  /* Quota of the target; a page the source does not hold; another manager. */
  CHECK_STATUS(memseg_lease_transfer(a, q, b, &same), MEMSEG_STATUS_QUOTA_EXHAUSTED);
  CHECK_STATUS(memseg_lease_transfer(a, moved, b, &same), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_lease_transfer(a, q, c, &same), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_lease_transfer(a, q, b, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_EQ(same.bits, 0);
  CHECK_OK(memseg_lease_transfer(a, q, a, &same));
  CHECK_EQ(same.bits, q.bits);
  CHECK_OK(memseg_lease_get_usage(a, &ua));
  CHECK_EQ(ua.pages, 1);
  CHECK_STATUS(memseg_lease_release(a, moved), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_OK(memseg_lease_release(b, moved));
  CHECK_OK(memseg_lease_release(a, q));
  CHECK_OK(memseg_lease_close(a, NULL));
  CHECK_OK(memseg_lease_close(b, NULL));
  CHECK_OK(memseg_lease_close(c, NULL));
  close_clean(manager);
  close_clean(other);
}

static void test_reservations(void) {
  memseg_manager manager = new_manager(4, true, MEMSEG_MEMORY_KIND_OFFHEAP);
  memseg_lease lease = open_lease(manager, "rocksdb", 0);
  memseg_segment page;
  memseg_lease_closed closed;
  CHECK_OK(memseg_lease_reserve(lease, 3 * PAGE + 1));
  CHECK_STATUS(memseg_lease_allocate(lease, &page), MEMSEG_STATUS_BUDGET_EXHAUSTED);
  CHECK_STATUS(memseg_lease_reserve(lease, PAGE), MEMSEG_STATUS_BUDGET_EXHAUSTED);
  CHECK_STATUS(memseg_lease_reserve(lease, 0), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_lease_reserve(lease, UINT64_MAX), MEMSEG_STATUS_BUDGET_EXHAUSTED);
  CHECK_STATUS(memseg_lease_unreserve(lease, 0), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_lease_unreserve(lease, 3 * PAGE + 2), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_EQ(stats_of(manager).reserved_bytes, 3 * PAGE + 1);
  CHECK_OK(memseg_lease_unreserve(lease, 1));
  CHECK_OK(memseg_lease_allocate(lease, &page));
  CHECK_OK(memseg_lease_close(lease, &closed));
  CHECK_EQ(closed.pages_reclaimed, 1);
  CHECK_EQ(closed.reserved_bytes_reclaimed, 3 * PAGE);
  /* Use after lease close: the lease and its pages are stale. */
  CHECK_STATUS(memseg_segment_put_u8(page, 0, 1), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_lease_allocate(lease, &page), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_lease_reserve(lease, 1), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_lease_release(lease, page), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_lease_close(lease, NULL), MEMSEG_STATUS_STALE_HANDLE); /* twice */
  CHECK_OK(memseg_lease_close((memseg_lease){0}, NULL));                      /* zero: no-op */
  CHECK_EQ(stats_of(manager).used_bytes, 0);
  close_clean(manager);
}

/* A lease of a preallocated manager keeps the pages it releases cached for its next
 * allocation; they count as free, and another lease (or a reservation) short of budget gets
 * them. */
static void test_released_pages_are_free_to_everyone(void) {
  memseg_manager manager = new_manager(2, true, MEMSEG_MEMORY_KIND_OFFHEAP);
  memseg_lease a = open_lease(manager, "a", 0), b = open_lease(manager, "b", 0);
  memseg_segment page, pages[2];
  memseg_manager_stats stats;
  CHECK_OK(memseg_lease_allocate(a, &page));
  CHECK_OK(memseg_lease_release(a, page));
  stats = stats_of(manager);
  CHECK_EQ(stats.pages_used, 0);
  CHECK_EQ(stats.pages_free, 2);
  CHECK_EQ(stats.used_bytes, 0);
  CHECK_OK(memseg_lease_allocate_many(b, 2, pages));
  CHECK_STATUS(memseg_lease_allocate(a, &page), MEMSEG_STATUS_BUDGET_EXHAUSTED);
  CHECK_OK(memseg_lease_release_many(b, pages, 2));
  CHECK_OK(memseg_lease_reserve(a, 2 * PAGE));
  CHECK_EQ(stats_of(manager).pages_free, 0);
  CHECK_OK(memseg_lease_unreserve(a, 2 * PAGE));
  CHECK_OK(memseg_lease_close(a, NULL));
  CHECK_OK(memseg_lease_close(b, NULL));
  stats = stats_of(manager);
  CHECK_EQ(stats.pages_free, 2);
  CHECK_EQ(stats.leases, 0);
  close_clean(manager);
}

static void test_manager_close_with_open_leases(void) {
  memseg_manager manager = new_manager(4, true, MEMSEG_MEMORY_KIND_OFFHEAP);
  memseg_lease leaky = open_lease(manager, "leaky", 0), tidy = open_lease(manager, "tidy", 3);
  memseg_segment pages[3];
  size_t live = mt_live_count(), len = 0, needed = 0;
  char report[512];
  memseg_manager_stats stats;
  CHECK_OK(memseg_lease_allocate_many(leaky, 2, pages));
  CHECK_OK(memseg_lease_reserve(leaky, 10));
  CHECK_OK(memseg_lease_allocate(tidy, &pages[2]));
  CHECK_OK(memseg_lease_release(tidy, pages[2]));
  CHECK_OK(memseg_lease_close(tidy, NULL));
  CHECK_EQ(mt_live_count(), live + 2);
  CHECK_STATUS(memseg_manager_close(manager, NULL, 8, &len), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_OK(memseg_manager_close(manager, report, sizeof report, &needed));
  CHECK_EQ(needed, strlen(report));
  CHECK(strstr(report, "\"name\":\"leaky\",\"pages\":2,\"peak_pages\":2,\"reserved_bytes\":10") !=
        NULL);
  CHECK(strstr(report, "tidy") == NULL);
  /* Its pages were taken back: stale, never dangling. */
  CHECK_EQ(mt_live_count(), live);
  CHECK_STATUS(memseg_segment_put_u8(pages[0], 0, 1), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_lease_allocate(leaky, pages), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_lease_close(leaky, NULL), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_manager_get_stats(manager, &stats), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_lease_open(manager, "late", 0, &leaky), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_manager_close(manager, NULL, 0, NULL), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_manager_close((memseg_manager){0}, NULL, 0, NULL));
}

static void test_bad_handles_and_arguments(void) {
  memseg_manager manager = new_manager(2, false, MEMSEG_MEMORY_KIND_HEAP);
  memseg_lease lease = {0}, forged;
  memseg_segment page;
  memseg_manager_stats stats;
  size_t len;
  CHECK_STATUS(memseg_lease_open(manager, NULL, 0, &lease), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_lease_open(manager, "x", 0, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_lease_open((memseg_manager){0}, "x", 0, &lease),
               MEMSEG_STATUS_INVALID_HANDLE);
  CHECK_EQ(lease.bits, 0);
  CHECK_STATUS(memseg_lease_allocate(lease, &page), MEMSEG_STATUS_INVALID_HANDLE);
  CHECK_STATUS(memseg_manager_get_stats((memseg_manager){0}, &stats), MEMSEG_STATUS_INVALID_HANDLE);
  CHECK_STATUS(memseg_manager_get_stats(manager, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_manager_stats_json(manager, NULL, 4, &len), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_manager_stats_json(manager, NULL, 0, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  lease = open_lease(manager, "x", 0);
  forged.bits = lease.bits + (UINT64_C(1) << 32);
  CHECK_STATUS(memseg_lease_allocate(forged, &page), MEMSEG_STATUS_INVALID_HANDLE);
  {
    memseg_manager as_manager;
    as_manager.bits = lease.bits;
    CHECK_STATUS(memseg_manager_get_stats(as_manager, &stats), MEMSEG_STATUS_WRONG_HANDLE_KIND);
  }
  CHECK_OK(memseg_lease_close(lease, NULL));
  close_clean(manager);
}

static void test_stats_json(void) {
  memseg_manager manager = new_manager(4, true, MEMSEG_MEMORY_KIND_OFFHEAP);
  memseg_lease lease = open_lease(manager, "j\"son", 3);
  memseg_segment page;
  char json[1024];
  size_t len = 0, needed = 0;
  CHECK_OK(memseg_lease_allocate(lease, &page));
  CHECK_OK(memseg_manager_stats_json(manager, NULL, 0, &needed));
  CHECK_OK(memseg_manager_stats_json(manager, json, sizeof json, &len));
  CHECK_EQ(len, needed);
  CHECK_EQ(strlen(json), len);
  CHECK(strncmp(json, "{\"page_size\":4096,\"pages_total\":4,\"pages_used\":1,\"pages_free\":3", 63) ==
        0);
  CHECK(strstr(json, "\"name\":\"j\\\"son\",\"pages\":1,\"peak_pages\":1,\"reserved_bytes\":0,"
                     "\"bytes\":4096,\"quota_pages\":3") != NULL);
  CHECK_OK(memseg_lease_close(lease, NULL));
  close_clean(manager);
}

/* ---- waiting ---------------------------------------------------------------------------- */

struct waiter {
  memseg_lease lease;
  memseg_status status;
  memseg_segment pages[2];
};

static void *wait_for_two(void *arg) {
  struct waiter *w = (struct waiter *)arg;
  w->status = memseg_lease_allocate_wait(w->lease, 2, 10000, w->pages);
  return NULL;
}

static void test_waiting(void) {
  memseg_manager manager = new_manager(2, true, MEMSEG_MEMORY_KIND_OFFHEAP);
  memseg_lease a = open_lease(manager, "a", 0);
  struct waiter w;
  pthread_t thread;
  memseg_segment held[2];
  w.lease = open_lease(manager, "b", 0);
  w.status = MEMSEG_STATUS_PANIC;
  CHECK_OK(memseg_lease_allocate_many(a, 2, held));
  CHECK_EQ(pthread_create(&thread, NULL, wait_for_two, &w), 0);
  CHECK_OK(memseg_lease_release(a, held[0]));
  CHECK_OK(memseg_lease_release(a, held[1]));
  CHECK_EQ(pthread_join(thread, NULL), 0);
  CHECK_OK(w.status);
  CHECK_OK(memseg_lease_release_many(w.lease, w.pages, 2));
  {
    size_t n = 99;
    CHECK_OK(memseg_lease_release_all(a, &n));
    CHECK_EQ(n, 0);
  }
  CHECK_OK(memseg_lease_close(a, NULL));
  CHECK_OK(memseg_lease_close(w.lease, NULL));
  close_clean(manager);
}

/* ---- shared resources ------------------------------------------------------------------- */

static int inits, releases;

static int32_t init_cache(void *ctx, uint64_t size, void **out) {
  (void)ctx;
  inits++;
  *out = malloc((size_t)size);
  return *out == NULL ? 1 : 0;
}

static int32_t failing_init(void *ctx, uint64_t size, void **out) {
  (void)ctx;
  (void)size;
  (void)out;
  return 7;
}

static void release_cache(void *ctx, void *resource, uint64_t size) {
  CHECK_EQ((uintptr_t)ctx, 42);
  CHECK_EQ(size, 2 * PAGE);
  free(resource);
  releases++;
}

static void test_shared_resources(void) {
  memseg_manager manager = new_manager(4, true, MEMSEG_MEMORY_KIND_OFFHEAP);
  memseg_shared first, second, bad = {0x55};
  void *r1 = NULL, *r2 = NULL, *ctx = (void *)(uintptr_t)42;
  bool last = true;
  CHECK_OK(memseg_shared_acquire(manager, "cache", 2 * PAGE, init_cache, release_cache, ctx,
                                 &first));
  CHECK_OK(memseg_shared_acquire(manager, "cache", 2 * PAGE, init_cache, release_cache, ctx,
                                 &second));
  CHECK_EQ(inits, 1);
  CHECK_OK(memseg_shared_get(first, &r1));
  CHECK_OK(memseg_shared_get(second, &r2));
  CHECK(r1 != NULL && r1 == r2);
  CHECK_EQ(stats_of(manager).shared_bytes, 2 * PAGE);
  CHECK_EQ(stats_of(manager).pages_free, 2);
  CHECK_STATUS(memseg_shared_acquire(manager, "cache", 1, init_cache, NULL, NULL, &bad),
               MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_shared_acquire(manager, "", 1, init_cache, NULL, NULL, &bad),
               MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_shared_acquire(manager, "z", 0, init_cache, NULL, NULL, &bad),
               MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_shared_acquire(manager, "z", 3 * PAGE, init_cache, NULL, NULL, &bad),
               MEMSEG_STATUS_BUDGET_EXHAUSTED);
  CHECK_STATUS(memseg_shared_acquire(manager, "z", 1, failing_init, NULL, NULL, &bad),
               MEMSEG_STATUS_ALLOCATION_FAILED);
  CHECK_STATUS(memseg_shared_acquire(manager, NULL, 1, init_cache, NULL, NULL, &bad),
               MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_shared_acquire(manager, "z", 1, NULL, NULL, NULL, &bad),
               MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_EQ(bad.bits, 0x55);
  CHECK_EQ(stats_of(manager).used_bytes, 2 * PAGE);
  CHECK_OK(memseg_shared_release(first, &last));
  CHECK(!last);
  CHECK_EQ(releases, 0);
  CHECK_STATUS(memseg_shared_release(first, NULL), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_shared_get(first, &r1), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_shared_release(second, &last));
  CHECK(last);
  CHECK_EQ(releases, 1);
  CHECK_OK(memseg_shared_release((memseg_shared){0}, NULL));
  CHECK_EQ(stats_of(manager).used_bytes, 0);
  close_clean(manager);
}

/* ---- memory plan ------------------------------------------------------------------------ */

static void test_memory_plan(void) {
  const uint64_t MiB = UINT64_C(1) << 20, GiB = UINT64_C(1) << 30;
  memseg_plan_config config = memseg_plan_config_default(4 * GiB, 1);
  memseg_memory_plan plan, untouched;
  memset(&untouched, 0x5A, sizeof untouched);
  CHECK_EQ(config.jvm, 1);
  CHECK_EQ(config.jvm_metaspace, 256 * MiB);
  CHECK_OK(memseg_plan_compute(&config, &plan));
  CHECK_EQ(plan.jvm_overhead_bytes, 4 * GiB / 10);
  CHECK_EQ(plan.jvm_metaspace_bytes + plan.jvm_overhead_bytes + plan.network_bytes +
               plan.managed_bytes + plan.rest_bytes,
           4 * GiB);
  /* A native host; explicit sizes win over fractions. */
  config = memseg_plan_config_default(GiB, 0);
  config.managed.size = 512 * MiB;
  CHECK_OK(memseg_plan_compute(&config, &plan));
  CHECK_EQ(plan.jvm_overhead_bytes, 0);
  CHECK_EQ(plan.managed_bytes, 512 * MiB);
  CHECK_EQ(plan.network_bytes, (uint64_t)((double)GiB * 0.1));
  /* Conflicts. */
  plan = untouched;
  config.managed.size = GiB;
  CHECK_STATUS(memseg_plan_compute(&config, &plan), MEMSEG_STATUS_INVALID_ARGUMENT);
  config = memseg_plan_config_default(GiB, 0);
  config.network.fraction = 1.5;
  CHECK_STATUS(memseg_plan_compute(&config, &plan), MEMSEG_STATUS_INVALID_ARGUMENT);
  config = memseg_plan_config_default(GiB, 0);
  config.network.min = 2 * GiB;
  CHECK_STATUS(memseg_plan_compute(&config, &plan), MEMSEG_STATUS_INVALID_ARGUMENT);
  config = memseg_plan_config_default(GiB, 0);
  config.managed.fraction = 0.95;
  CHECK_STATUS(memseg_plan_compute(&config, &plan), MEMSEG_STATUS_INVALID_ARGUMENT);
  config = memseg_plan_config_default(300 * MiB, 1);
  CHECK_STATUS(memseg_plan_compute(&config, &plan), MEMSEG_STATUS_INVALID_ARGUMENT);
  config = memseg_plan_config_default(0, 0);
  CHECK_STATUS(memseg_plan_compute(&config, &plan), MEMSEG_STATUS_INVALID_ARGUMENT);
  config = memseg_plan_config_default(GiB, 0);
  config.jvm = 2;
  CHECK_STATUS(memseg_plan_compute(&config, &plan), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_plan_compute(NULL, &plan), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_plan_compute(&config, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_MEM(&plan, &untouched, sizeof plan);
  /* The plan sizes a manager. */
  {
    memseg_manager_config mc;
    memseg_manager manager;
    config = memseg_plan_config_default(GiB, 0);
    CHECK_OK(memseg_plan_compute(&config, &plan));
    mc = memseg_manager_config_default(plan.managed_bytes);
    CHECK_OK(memseg_manager_new(&mc, &manager));
    CHECK_EQ(stats_of(manager).pages_total, plan.managed_bytes / 32768);
    close_clean(manager);
  }
}

/* ---- conservation under threads --------------------------------------------------------- */

#define THREADS 4
#define TOTAL 64

struct worker {
  memseg_lease lease;
  memseg_segment held[TOTAL];
  size_t count;
  uint64_t random;
};

static pthread_barrier_t barrier;

static void *churn(void *arg) {
  struct worker *w = (struct worker *)arg;
  int round, step;
  for (round = 0; round < 10; round++) {
    for (step = 0; step < 300; step++) {
      uint64_t r = mt_next_random(&w->random);
      if (r % 3 != 0 && w->count + 4 <= TOTAL) {
        size_t n = (size_t)(r >> 8) % 4 + 1;
        memseg_status s = memseg_lease_allocate_many(w->lease, n, w->held + w->count);
        CHECK(s == MEMSEG_STATUS_OK || s == MEMSEG_STATUS_BUDGET_EXHAUSTED ||
              s == MEMSEG_STATUS_QUOTA_EXHAUSTED);
        if (s == MEMSEG_STATUS_OK) {
          size_t i;
          for (i = 0; i < n; i++) {
            CHECK_OK(memseg_segment_put_u64(w->held[w->count + i], 0, w->random));
          }
          w->count += n;
        }
      } else if (w->count > 0) {
        size_t i = (size_t)(r >> 8) % w->count;
        uint64_t v = 0;
        CHECK_OK(memseg_segment_get_u64(w->held[i], 0, &v));
        CHECK_OK(memseg_lease_release(w->lease, w->held[i]));
        w->held[i] = w->held[--w->count];
      }
    }
    pthread_barrier_wait(&barrier);
    pthread_barrier_wait(&barrier);
  }
  return NULL;
}

static void test_conservation_under_threads(void) {
  memseg_manager manager = new_manager(TOTAL, true, MEMSEG_MEMORY_KIND_OFFHEAP);
  struct worker workers[THREADS];
  pthread_t threads[THREADS];
  int t, round;
  CHECK_EQ(pthread_barrier_init(&barrier, NULL, THREADS + 1), 0);
  for (t = 0; t < THREADS; t++) {
    char name[16];
    snprintf(name, sizeof name, "w%d", t);
    workers[t].lease = open_lease(manager, name, 24);
    workers[t].count = 0;
    workers[t].random = (uint64_t)t * 7919 + 11;
    CHECK_EQ(pthread_create(&threads[t], NULL, churn, &workers[t]), 0);
  }
  for (round = 0; round < 10; round++) {
    memseg_manager_stats stats;
    size_t out = 0, i, j;
    pthread_barrier_wait(&barrier);
    stats = stats_of(manager);
    for (t = 0; t < THREADS; t++) {
      memseg_lease_usage usage;
      CHECK_OK(memseg_lease_get_usage(workers[t].lease, &usage));
      CHECK_EQ(usage.pages, workers[t].count);
      out += workers[t].count;
    }
    CHECK_EQ(stats.pages_used, out);
    CHECK_EQ(stats.pages_used + stats.pages_free, stats.pages_total);
    /* No page handed to two leases: every held page's memory is distinct. */
    for (t = 0; t < THREADS; t++) {
      for (i = 0; i < workers[t].count; i++) {
        memseg_raw a;
        int u;
        CHECK_OK(memseg_raw_of(workers[t].held[i], &a));
        for (u = t; u < THREADS; u++) {
          for (j = (u == t ? i + 1 : 0); j < workers[u].count; j++) {
            memseg_raw b;
            CHECK_OK(memseg_raw_of(workers[u].held[j], &b));
            CHECK(a.ptr != b.ptr);
          }
        }
      }
    }
    pthread_barrier_wait(&barrier);
  }
  for (t = 0; t < THREADS; t++) {
    CHECK_EQ(pthread_join(threads[t], NULL), 0);
  }
  CHECK_EQ(pthread_barrier_destroy(&barrier), 0);
  /* Closing the manager takes every page back. */
  {
    char report[2048];
    CHECK_OK(memseg_manager_close(manager, report, sizeof report, NULL));
    for (t = 0; t < THREADS; t++) {
      if (workers[t].count > 0) {
        CHECK_STATUS(memseg_segment_put_u8(workers[t].held[0], 0, 1), MEMSEG_STATUS_STALE_HANDLE);
      }
    }
  }
}

int main(void) {
  size_t live = mt_live_count();
  RUN(test_defaults_and_bad_configurations);
  test_pages_are_segments(true, MEMSEG_MEMORY_KIND_OFFHEAP);
  test_pages_are_segments(true, MEMSEG_MEMORY_KIND_HEAP);
  test_pages_are_segments(false, MEMSEG_MEMORY_KIND_OFFHEAP);
  test_pages_are_segments(false, MEMSEG_MEMORY_KIND_HEAP);
  RUN(test_budget_quota_and_the_failure_snapshot);
  RUN(test_release_through_the_wrong_lease_changes_nothing);
  RUN(test_transfer);
  RUN(test_reservations);
  RUN(test_released_pages_are_free_to_everyone);
  RUN(test_kept_pages_never_count_against_the_quota);
  RUN(test_manager_close_with_open_leases);
  RUN(test_bad_handles_and_arguments);
  RUN(test_stats_json);
  RUN(test_waiting);
  RUN(test_shared_resources);
  RUN(test_memory_plan);
  RUN(test_conservation_under_threads);
  CHECK_EQ(mt_live_count(), live);
  printf("test_manager: all passed\n");
  return 0;
}
