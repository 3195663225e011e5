/*
 * The external sorter and the normalized-key helpers from C.
 * - records sort in memory and, under a small memory, spilling through several merge passes:
 *   the output is in key order and is the input (count and an order-independent checksum);
 *   spill files are unlinked as soon as they are made (the temporary directory stays empty)
 *   and closed after free;
 * - a host comparison decides ties of the prefix, with its context;
 * - a truncated spill file (reached through /proc/self/fd) is MEMSEG_STATUS_CORRUPTED, after
 *   which the sorter is CLOSED and its files are closed;
 * - bad configurations, bad records and calls out of order get their statuses and change
 *   nothing; zero and freed handles; the normalized keys order as their values;
 * - a sorter on a lease takes its pages from the lease and gives them back;
 * - records several pages long sort in memory and spilling, with keys that straddle page
 *   ends; the longest record follows the memory, and a longer one is refused.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, truncate, dirent, readlink */
#undef NDEBUG
#include <assert.h>
#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include "memseg_test.h"

#define RECORD 100
#define KEY 10

static char temp_dir[64];

static void make_temp_dir(void) {
  strcpy(temp_dir, "/tmp/memseg-test-sort-XXXXXX");
  CHECK(mkdtemp(temp_dir) != NULL);
}

static size_t files_in(const char *dir, char *first, size_t first_len) {
  size_t n = 0;
  struct dirent *e;
  DIR *d = opendir(dir);
  CHECK(d != NULL);
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') {
      continue;
    }
    if (n == 0 && first != NULL) {
      size_t dl = strlen(dir), nl = strlen(e->d_name);
      CHECK(dl + 1 + nl < first_len);
      memcpy(first, dir, dl);
      first[dl] = '/';
      memcpy(first + dl + 1, e->d_name, nl + 1);
    }
    n++;
  }
  closedir(d);
  return n;
}

/* Spill files in `dir` this process has open: the sorter unlinks them as soon as it makes
 * them, so only its descriptors reach them. Puts the /proc/self/fd path of the first one
 * into `first` (which opens the file itself). */
static size_t open_files_in(const char *dir, char *first, size_t first_len) {
  size_t n = 0, dl = strlen(dir);
  struct dirent *e;
  char fd_path[300], target[512];
  DIR *d = opendir("/proc/self/fd");
  CHECK(d != NULL);
  while ((e = readdir(d)) != NULL) {
    ssize_t tl;
    if (e->d_name[0] == '.') {
      continue;
    }
    snprintf(fd_path, sizeof fd_path, "/proc/self/fd/%s", e->d_name);
    tl = readlink(fd_path, target, sizeof target - 1);
    if (tl < 0 || (size_t)tl <= dl || memcmp(target, dir, dl) != 0 || target[dl] != '/') {
      continue;
    }
    if (n == 0 && first != NULL) {
      CHECK(strlen(fd_path) < first_len);
      strcpy(first, fd_path);
    }
    n++;
  }
  closedir(d);
  return n;
}

static memseg_sort_config config_of(size_t memory, size_t page) {
  memseg_sort_config c;
  memset(&c, 0, sizeof c);
  c.memory_size = memory;
  c.page_size = page;
  c.key_offset = 0;
  c.key_length = KEY;
  c.prefix_length = 8;
  c.compare = NULL;
  c.compare_ctx = NULL;
  c.temp_dir = temp_dir;
  return c;
}

static void make_record(uint64_t *rng, uint8_t *r, int few_keys) {
  size_t i;
  uint64_t a = mt_next_random(rng);
  uint64_t b = mt_next_random(rng);
  if (few_keys) {
    a %= 7;
    b = 0;
  }
  memcpy(r, &a, 8);
  memcpy(r + 8, &b, 2);
  for (i = KEY; i < RECORD; i++) {
    r[i] = (uint8_t)mt_next_random(rng);
  }
}

/* An order-independent checksum: the sum of a hash of every record. */
static uint64_t record_hash(const uint8_t *r, size_t len) {
  uint64_t h = UINT64_C(1469598103934665603);
  size_t i;
  for (i = 0; i < len; i++) {
    h = (h ^ r[i]) * UINT64_C(1099511628211);
  }
  return h;
}

/* Finishes `sorter` and reads every record back: in key order, `min_len` to `max_len` bytes
 * long, `n` of them with the checksum `in_sum` of the input. Then frees the sorter and checks
 * that its files are gone; returns its stats. */
static memseg_sort_stats finish_and_check(memseg_sorter sorter, size_t n, uint64_t in_sum,
                                          size_t min_len, size_t max_len) {
  memseg_sort_stats stats;
  uint64_t out_sum = 0;
  uint8_t previous[KEY];
  const uint8_t *out = NULL;
  size_t len = 0, count = 0;
  memseg_status status;

  CHECK_OK(memseg_sorter_finish(sorter));
  while ((status = memseg_sorter_next(sorter, &out, &len)) == MEMSEG_STATUS_OK) {
    CHECK(len >= min_len && len <= max_len);
    if (count > 0) {
      CHECK(memcmp(previous, out, KEY) <= 0);
    }
    memcpy(previous, out, KEY);
    out_sum += record_hash(out, len);
    count++;
  }
  CHECK_EQ(status, MEMSEG_STATUS_END_OF_DATA);
  CHECK_STATUS(memseg_sorter_next(sorter, &out, &len), MEMSEG_STATUS_END_OF_DATA);
  CHECK_EQ(count, n);
  CHECK(in_sum == out_sum);
  CHECK_OK(memseg_sorter_stats(sorter, &stats));
  CHECK(stats.records == n);
  CHECK(stats.peak_memory_bytes <= stats.memory_bytes);
  CHECK_EQ(files_in(temp_dir, NULL, 0), 0);
  CHECK_OK(memseg_sorter_free(sorter));
  CHECK_EQ(files_in(temp_dir, NULL, 0), 0);
  CHECK_EQ(open_files_in(temp_dir, NULL, 0), 0);
  return stats;
}

/* Sorts `n` records with the given memory; checks order, count and checksum. */
static memseg_sort_stats sort_and_check(size_t n, size_t memory, size_t page, int few_keys) {
  memseg_sorter sorter = {0};
  memseg_sort_config c = config_of(memory, page);
  memseg_sort_stats stats;
  uint64_t rng = 42 + n, in_sum = 0;
  uint8_t record[RECORD];
  size_t i;

  mt_context("sort %zu records in %zu bytes of %zu-byte pages", n, memory, page);
  CHECK_OK(memseg_sorter_new(&c, &sorter));
  CHECK(sorter.bits != 0);
  for (i = 0; i < n; i++) {
    make_record(&rng, record, few_keys);
    in_sum += record_hash(record, RECORD);
    CHECK_OK(memseg_sorter_add(sorter, record, RECORD));
  }
  stats = finish_and_check(sorter, n, in_sum, RECORD, RECORD);
  CHECK(stats.memory_bytes == memory);
  mt_context("");
  return stats;
}

static void test_sorts_in_memory_and_spilling(void) {
  memseg_sort_stats s;
  s = sort_and_check(0, 3 * 4096, 4096, 0);
  CHECK(s.spilled_runs == 0 && s.merge_passes == 0);
  s = sort_and_check(1, 3 * 4096, 4096, 0);
  CHECK(s.spilled_runs == 0);
  s = sort_and_check(3000, 1 << 20, 4096, 0);
  CHECK(s.spilled_runs == 0 && s.merge_passes == 0);
  /* 16 pages: runs of a few hundred records, more runs than pages, several passes. */
  s = sort_and_check(20000, 16 * 4096, 4096, 0);
  CHECK(s.spilled_runs > 16);
  CHECK(s.merge_passes >= 2);
  CHECK(s.spilled_bytes > 20000 * RECORD);
  s = sort_and_check(20000, 16 * 4096, 4096, 1);
  CHECK(s.spilled_runs > 16);
}

struct compare_log {
  long calls;
};

/* Orders ties of the 1-byte prefix by a little-endian uint32_t at offset 1. */
static int32_t compare_u32_le(void *ctx, const uint8_t *a, size_t a_len, const uint8_t *b,
                              size_t b_len) {
  uint32_t x, y;
  struct compare_log *log = (struct compare_log *)ctx;
  log->calls++;
  CHECK(a_len == 8 && b_len == 8);
  memcpy(&x, a + 1, 4);
  memcpy(&y, b + 1, 4);
  return x < y ? -1 : x > y;
}

static void test_a_host_comparison_decides_ties(void) {
  struct compare_log log = {0};
  memseg_sorter sorter = {0};
  memseg_sort_config c = config_of(8 * 4096, 4096);
  uint64_t rng = 7;
  uint8_t record[8], prev[8];
  const uint8_t *out;
  size_t len, count = 0, i;
  c.key_length = 5;
  c.prefix_length = 1;
  c.compare = compare_u32_le;
  c.compare_ctx = &log;
  CHECK_OK(memseg_sorter_new(&c, &sorter));
  for (i = 0; i < 6000; i++) {
    uint32_t v = (uint32_t)mt_next_random(&rng);
    record[0] = (uint8_t)(v % 3);
    memcpy(record + 1, &v, 4);
    memset(record + 5, 0xEE, 3);
    CHECK_OK(memseg_sorter_add(sorter, record, sizeof record));
  }
  CHECK_OK(memseg_sorter_finish(sorter));
  while (memseg_sorter_next(sorter, &out, &len) == MEMSEG_STATUS_OK) {
    if (count > 0) {
      uint32_t x, y;
      memcpy(&x, prev + 1, 4);
      memcpy(&y, out + 1, 4);
      CHECK(prev[0] < out[0] || (prev[0] == out[0] && x <= y));
    }
    memcpy(prev, out, 8);
    count++;
  }
  CHECK_EQ(count, 6000);
  CHECK(log.calls > 6000);
  CHECK_OK(memseg_sorter_free(sorter));
}

static void test_a_truncated_spill_file_is_corrupted(void) {
  memseg_sorter sorter = {0};
  memseg_sort_config c = config_of(16 * 4096, 4096);
  uint64_t rng = 9;
  uint8_t record[RECORD];
  char path[256];
  const uint8_t *out;
  size_t len, i;
  memseg_status status;
  CHECK_OK(memseg_sorter_new(&c, &sorter));
  for (i = 0; i < 3000; i++) {
    make_record(&rng, record, 0);
    CHECK_OK(memseg_sorter_add(sorter, record, RECORD));
  }
  CHECK_OK(memseg_sorter_finish(sorter));
  CHECK_EQ(files_in(temp_dir, NULL, 0), 0);
  CHECK(open_files_in(temp_dir, path, sizeof path) > 1);
  CHECK(truncate(path, 4096 + 100) == 0);
  while ((status = memseg_sorter_next(sorter, &out, &len)) == MEMSEG_STATUS_OK) {
  }
  CHECK_EQ(status, MEMSEG_STATUS_CORRUPTED);
  CHECK_EQ(open_files_in(temp_dir, NULL, 0), 0);
  CHECK_STATUS(memseg_sorter_next(sorter, &out, &len), MEMSEG_STATUS_CLOSED);
  CHECK_OK(memseg_sorter_free(sorter));
}

static void test_bad_input_changes_nothing(void) {
  memseg_sorter sorter = {0}, untouched = {0};
  memseg_sort_config c = config_of(4 * 4096, 4096);
  memseg_sort_stats stats;
  memseg_segment seg = {0};
  uint8_t record[RECORD] = {0};
  const uint8_t *out = NULL;
  size_t len = 0;

  CHECK_STATUS(memseg_sorter_new(NULL, &sorter), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_sorter_new(&c, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  c.page_size = 5000;
  CHECK_STATUS(memseg_sorter_new(&c, &sorter), MEMSEG_STATUS_INVALID_ARGUMENT);
  c.page_size = 2048;
  CHECK_STATUS(memseg_sorter_new(&c, &sorter), MEMSEG_STATUS_INVALID_ARGUMENT);
  c.page_size = 4096;
  c.memory_size = 4 * 4096 + 1;
  CHECK_STATUS(memseg_sorter_new(&c, &sorter), MEMSEG_STATUS_INVALID_ARGUMENT);
  c.memory_size = SIZE_MAX - 4095;
  CHECK_STATUS(memseg_sorter_new(&c, &sorter), MEMSEG_STATUS_INVALID_ARGUMENT);
  c.memory_size = 2 * 4096;
  CHECK_STATUS(memseg_sorter_new(&c, &sorter), MEMSEG_STATUS_BUDGET_EXHAUSTED);
  c.memory_size = 0;
  CHECK_STATUS(memseg_sorter_new(&c, &sorter), MEMSEG_STATUS_BUDGET_EXHAUSTED);
  c = config_of(4 * 4096, 4096);
  c.prefix_length = 57;
  c.key_length = 60;
  CHECK_STATUS(memseg_sorter_new(&c, &sorter), MEMSEG_STATUS_INVALID_ARGUMENT);
  c = config_of(4 * 4096, 4096);
  c.prefix_length = 11;
  CHECK_STATUS(memseg_sorter_new(&c, &sorter), MEMSEG_STATUS_INVALID_ARGUMENT);
  c = config_of(4 * 4096, 4096);
  c.key_offset = SIZE_MAX;
  CHECK_STATUS(memseg_sorter_new(&c, &sorter), MEMSEG_STATUS_INVALID_ARGUMENT);
  c = config_of(4 * 4096, 4096);
  c.temp_dir = "/nonexistent/memseg";
  CHECK_STATUS(memseg_sorter_new(&c, &sorter), MEMSEG_STATUS_IO);
  CHECK(sorter.bits == 0);

  c = config_of(4 * 4096, 4096);
  c.temp_dir = NULL; /* the system's */
  CHECK_OK(memseg_sorter_new(&c, &sorter));
  CHECK_STATUS(memseg_sorter_add(sorter, record, KEY - 1), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_sorter_add(sorter, NULL, 10), MEMSEG_STATUS_NULL_ARGUMENT);
  {
    /* 4 pages: too few to keep pages back for a record's scratch; it must fit a block. */
    size_t max = 0;
    CHECK_OK(memseg_sorter_max_record_len(sorter, &max));
    CHECK_EQ(max, 4096 - 24);
  }
  CHECK_STATUS(memseg_sorter_add(sorter, record, 4096 - 23), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_sorter_next(sorter, &out, &len), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_OK(memseg_sorter_add(sorter, record, RECORD));
  CHECK_OK(memseg_sorter_stats(sorter, &stats));
  CHECK(stats.records == 1);
  CHECK_STATUS(memseg_sorter_stats(sorter, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_OK(memseg_sorter_finish(sorter));
  CHECK_STATUS(memseg_sorter_finish(sorter), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_sorter_add(sorter, record, RECORD), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_sorter_next(sorter, NULL, &len), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_sorter_next(sorter, &out, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_OK(memseg_sorter_next(sorter, &out, &len));
  CHECK_EQ(len, RECORD);
  CHECK_STATUS(memseg_sorter_next(sorter, &out, &len), MEMSEG_STATUS_END_OF_DATA);

  CHECK_OK(memseg_sorter_free(untouched));
  CHECK_STATUS(memseg_sorter_add(untouched, record, RECORD), MEMSEG_STATUS_INVALID_HANDLE);
  CHECK_OK(memseg_segment_new_heap(8, &seg));
  {
    memseg_sorter wrong;
    wrong.bits = seg.bits;
    CHECK_STATUS(memseg_sorter_finish(wrong), MEMSEG_STATUS_WRONG_HANDLE_KIND);
    CHECK_STATUS(memseg_sorter_free(wrong), MEMSEG_STATUS_WRONG_HANDLE_KIND);
  }
  CHECK_OK(memseg_segment_free(seg));
  CHECK_OK(memseg_sorter_free(sorter));
  CHECK_STATUS(memseg_sorter_free(sorter), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_sorter_finish(sorter), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_sorter_stats(sorter, &stats), MEMSEG_STATUS_STALE_HANDLE);
}

static void test_normalized_keys_order_as_values(void) {
  uint8_t a[8], b[8], s[6];
  uint8_t guard[3] = {9, 9, 9};
  CHECK_OK(memseg_normkey_put_i64(a, 8, -5));
  CHECK_OK(memseg_normkey_put_i64(b, 8, 3));
  CHECK(memcmp(a, b, 8) < 0);
  CHECK_OK(memseg_normkey_put_u64(a, 8, UINT64_C(1) << 40));
  CHECK_OK(memseg_normkey_put_u64(b, 8, 7));
  CHECK(memcmp(a, b, 8) > 0);
  CHECK_OK(memseg_normkey_put_i32(a, 4, INT32_MIN));
  CHECK_OK(memseg_normkey_put_i32(b, 4, -1));
  CHECK(memcmp(a, b, 4) < 0);
  CHECK_OK(memseg_normkey_put_u32(a, 4, 0xFFFFFFFFu));
  CHECK_OK(memseg_normkey_put_u32(b, 4, 0));
  CHECK(memcmp(a, b, 4) > 0);
  CHECK_OK(memseg_normkey_put_f64(a, 8, -0.0));
  CHECK_OK(memseg_normkey_put_f64(b, 8, 0.0));
  CHECK(memcmp(a, b, 8) < 0);
  CHECK_OK(memseg_normkey_put_f64(a, 8, -1e300));
  CHECK(memcmp(a, b, 8) < 0);
  CHECK_OK(memseg_normkey_put_f32(a, 4, 2.5f));
  CHECK_OK(memseg_normkey_put_f32(b, 4, -3.0f));
  CHECK(memcmp(a, b, 4) > 0);
  CHECK_OK(memseg_normkey_put_bytes(s, 6, (const uint8_t *)"abc", 3));
  CHECK_MEM(s, "abc\0\0\0", 6);
  CHECK_OK(memseg_normkey_put_bytes(s, 2, (const uint8_t *)"xyz", 3));
  CHECK_MEM(s, "xyc", 3);
  CHECK_OK(memseg_normkey_put_bytes(s, 0, NULL, 0));
  CHECK_OK(memseg_normkey_invert(s, 2));
  CHECK(s[0] == (uint8_t)~'x' && s[1] == (uint8_t)~'y' && s[2] == 'c');
  CHECK_STATUS(memseg_normkey_put_u64(guard, 3, 1), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_normkey_put_f32(guard, 3, 1.0f), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_normkey_put_u64(NULL, 8, 1), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_normkey_put_bytes(s, 6, NULL, 2), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_normkey_invert(NULL, 1), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK(guard[0] == 9 && guard[1] == 9 && guard[2] == 9);
}

/* A sorter on a lease: its memory is the lease's pages (charged while the sorter lives, given
 * back on free), so a sort cannot exceed the manager's budget; a budget or quota too small is
 * refused up front and allocates nothing. */
static void test_a_sorter_on_a_lease(void) {
  memseg_manager_config mc = memseg_manager_config_default(64 * 4096);
  memseg_manager manager = {0};
  memseg_lease lease = {0}, small = {0};
  memseg_sorter sorter = {0x77};
  memseg_sort_config c = config_of(16 * 4096, 0);
  memseg_lease_usage usage;
  memseg_sort_stats stats;
  uint64_t rng = 7;
  uint8_t record[RECORD];
  const uint8_t *out = NULL;
  size_t len = 0, count = 0, i;

  mc.page_size = 4096;
  CHECK_OK(memseg_manager_new(&mc, &manager));
  CHECK_OK(memseg_lease_open(manager, "sort", 0, &lease));
  CHECK_OK(memseg_lease_open(manager, "small", 4, &small));

  CHECK_STATUS(memseg_sorter_new_on_lease(lease, NULL, &sorter), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_sorter_new_on_lease(lease, &c, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_sorter_new_on_lease((memseg_lease){0}, &c, &sorter),
               MEMSEG_STATUS_INVALID_HANDLE);
  c.page_size = 8192;
  CHECK_STATUS(memseg_sorter_new_on_lease(lease, &c, &sorter), MEMSEG_STATUS_INVALID_ARGUMENT);
  c.page_size = 0;
  CHECK_STATUS(memseg_sorter_new_on_lease(small, &c, &sorter), MEMSEG_STATUS_QUOTA_EXHAUSTED);
  c.memory_size = 128 * 4096;
  CHECK_STATUS(memseg_sorter_new_on_lease(lease, &c, &sorter), MEMSEG_STATUS_BUDGET_EXHAUSTED);
  CHECK_EQ(sorter.bits, 0x77);
  CHECK_OK(memseg_lease_get_usage(lease, &usage));
  CHECK_EQ(usage.pages, 0);

  c.memory_size = 16 * 4096;
  CHECK_OK(memseg_sorter_new_on_lease(lease, &c, &sorter));
  CHECK_OK(memseg_lease_get_usage(lease, &usage));
  CHECK_EQ(usage.pages, 16);
  for (i = 0; i < 5000; i++) { /* 500 KB through 64 KiB: it spills */
    make_record(&rng, record, 0);
    CHECK_OK(memseg_sorter_add(sorter, record, RECORD));
  }
  CHECK_OK(memseg_sorter_finish(sorter));
  while (memseg_sorter_next(sorter, &out, &len) == MEMSEG_STATUS_OK) {
    count++;
  }
  CHECK_EQ(count, 5000);
  CHECK_OK(memseg_sorter_stats(sorter, &stats));
  CHECK(stats.spilled_runs > 1);
  CHECK(stats.peak_memory_bytes <= 16 * 4096);
  CHECK_OK(memseg_sorter_free(sorter));
  CHECK_OK(memseg_lease_get_usage(lease, &usage));
  CHECK_EQ(usage.pages, 0);
  CHECK_EQ(usage.peak_pages, 16);

  CHECK_OK(memseg_lease_close(lease, NULL));
  CHECK_STATUS(memseg_sorter_new_on_lease(lease, &c, &sorter), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_lease_close(small, NULL));
  CHECK_OK(memseg_manager_close(manager, NULL, 0, NULL));
  CHECK_EQ(files_in(temp_dir, NULL, 0), 0);
}

/* Sorts `n` records of 10 to `max_len` bytes (a third of them several pages long) in
 * `pages` pages of 4096 bytes; checks order, count and checksum. */
static memseg_sort_stats sort_long_records(size_t n, size_t pages, size_t max_len) {
  memseg_sorter sorter = {0};
  memseg_sort_config c = config_of(pages * 4096, 4096);
  memseg_sort_stats stats;
  uint64_t rng = 5 + n, in_sum = 0;
  uint8_t *record = (uint8_t *)malloc(max_len);
  size_t i, j;

  CHECK(record != NULL);
  mt_context("sort %zu records up to %zu bytes in %zu pages", n, max_len, pages);
  CHECK_OK(memseg_sorter_new(&c, &sorter));
  for (i = 0; i < n; i++) {
    uint64_t r = mt_next_random(&rng);
    size_t record_len = r % 3 == 0 ? 10 + (size_t)(r >> 8) % (max_len - 9)
                                   : KEY + (size_t)(r >> 8) % 200;
    make_record(&rng, record, 1); /* few keys: ties on the prefix go to the last 2 bytes */
    record[8] = (uint8_t)(r >> 40);
    for (j = RECORD; j < record_len; j++) {
      record[j] = (uint8_t)(j * 7 + i);
    }
    in_sum += record_hash(record, record_len);
    CHECK_OK(memseg_sorter_add(sorter, record, record_len));
  }
  stats = finish_and_check(sorter, n, in_sum, KEY, max_len);
  free(record);
  mt_context("");
  return stats;
}

static void test_records_longer_than_a_page(void) {
  memseg_sorter sorter = {0};
  memseg_sort_config c = config_of(64 * 4096, 4096);
  memseg_sort_stats s;
  uint8_t *big;
  size_t max = 0;

  /* 64 pages: sort buffers of 32 and 31 pages; the smaller holds 10 pages of record, an index
   * page and 20 pages of scratch. */
  CHECK_OK(memseg_sorter_new(&c, &sorter));
  CHECK_OK(memseg_sorter_max_record_len(sorter, &max));
  CHECK_EQ(max, 10 * 4096 - 4);
  CHECK_STATUS(memseg_sorter_max_record_len(sorter, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  big = (uint8_t *)calloc(max + 1, 1);
  CHECK(big != NULL);
  CHECK_STATUS(memseg_sorter_add(sorter, big, max + 1), MEMSEG_STATUS_INVALID_ARGUMENT);
  {
    char message[256];
    memseg_last_error_message(message, sizeof message);
    CHECK(strstr(message, "exceeds the longest") != NULL);
  }
  CHECK_OK(memseg_sorter_stats(sorter, &s));
  CHECK(s.records == 0);
  CHECK_OK(memseg_sorter_add(sorter, big, max));
  CHECK_OK(memseg_sorter_finish(sorter));
  {
    const uint8_t *out = NULL;
    size_t len = 0;
    CHECK_OK(memseg_sorter_next(sorter, &out, &len));
    CHECK_EQ(len, max);
    CHECK(memcmp(out, big, max) == 0);
  }
  CHECK_OK(memseg_sorter_free(sorter));
  free(big);

  /* In memory (4 MiB), then spilling through 256 KiB in several merge passes. */
  s = sort_long_records(300, 1024, 3 * 4096 + 100);
  CHECK(s.spilled_runs == 0);
  s = sort_long_records(600, 64, 10 * 4096 - 4);
  CHECK(s.spilled_runs > 64);
  CHECK(s.merge_passes >= 2);
}

int main(void) {
  size_t live = mt_live_count();
  make_temp_dir();
  RUN(test_sorts_in_memory_and_spilling);
  RUN(test_a_host_comparison_decides_ties);
  RUN(test_a_truncated_spill_file_is_corrupted);
  RUN(test_bad_input_changes_nothing);
  RUN(test_normalized_keys_order_as_values);
  RUN(test_a_sorter_on_a_lease);
  RUN(test_records_longer_than_a_page);
  CHECK_EQ(mt_live_count(), live);
  CHECK(rmdir(temp_dir) == 0);
  printf("test_sort: all passed\n");
  return 0;
}
