/*
 * Foreign memory: memseg_segment_wrap() over host arrays.
 * - the release callback runs exactly once, at free (not before), with the ptr, size and
 *   ctx given to wrap, on the thread that frees the segment;
 * - it is not called when wrap fails (size 0, NULL ptr, NULL out, size above PTRDIFF_MAX),
 *   nor by a second free;
 * - a NULL callback is allowed; kind is MEMSEG_MEMORY_KIND_FOREIGN; size is the given size;
 * - the bytes are neither copied nor cleared: the host sees the segment's writes and the
 *   segment sees the host's;
 * - the wrapped pointer is what memseg_segment_raw() lends.
 */
#define _POSIX_C_SOURCE 200809L /* pthreads */
#undef NDEBUG
#include <assert.h>
#include <pthread.h>

#include "memseg_test.h"

struct release_log {
  int calls;
  void *ctx;
  void *ptr;
  size_t size;
  pthread_t thread;
};

static void record_release(void *ctx, void *ptr, size_t size) {
  struct release_log *log = (struct release_log *)ctx;
  log->calls++;
  log->ctx = ctx;
  log->ptr = ptr;
  log->size = size;
  log->thread = pthread_self();
}

static void test_release_called_once_at_free(void) {
  uint8_t host[100];
  struct release_log log;
  memseg_segment segment = {0};
  memseg_memory_kind kind = 0;
  memset(&log, 0, sizeof log);
  memset(host, 0x3C, sizeof host);

  /* Wrap a part of the array, so that ptr and size are not the array's own. */
  CHECK_OK(memseg_segment_wrap(host + 10, 77, record_release, &log, &segment));
  CHECK(segment.bits != 0);
  CHECK_EQ(log.calls, 0);
  CHECK_EQ(mt_size(segment), 77);
  CHECK_OK(memseg_segment_kind(segment, &kind));
  CHECK_EQ(kind, MEMSEG_MEMORY_KIND_FOREIGN);
  CHECK_OK(memseg_segment_put_u64_be(segment, 0, 1));
  CHECK_EQ(log.calls, 0);

  CHECK_OK(memseg_segment_free(segment));
  CHECK_EQ(log.calls, 1);
  CHECK(log.ctx == (void *)&log);
  CHECK(log.ptr == (void *)(host + 10));
  CHECK_EQ(log.size, 77);
  CHECK(pthread_equal(log.thread, pthread_self()));

  /* A second free is stale and does not call back again. */
  CHECK_STATUS(memseg_segment_free(segment), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_EQ(log.calls, 1);
}

static int null_ctx_calls;
static void *null_ctx_seen = (void *)&null_ctx_calls;

static void release_expecting_null_ctx(void *ctx, void *ptr, size_t size) {
  (void)ptr;
  (void)size;
  null_ctx_calls++;
  null_ctx_seen = ctx;
}

static void test_null_ctx(void) {
  uint8_t host[8];
  memseg_segment segment;
  null_ctx_calls = 0;
  CHECK_OK(memseg_segment_wrap(host, sizeof host, release_expecting_null_ctx, NULL, &segment));
  mt_free(segment);
  CHECK_EQ(null_ctx_calls, 1);
  CHECK(null_ctx_seen == NULL);
}

static void test_release_not_called_when_wrap_fails(void) {
  uint8_t host[16];
  struct release_log log;
  memseg_segment segment = {0x1234};
  size_t live = mt_live_count();
  memset(&log, 0, sizeof log);

  CHECK_STATUS(memseg_segment_wrap(host, 0, record_release, &log, &segment),
               MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_segment_wrap(NULL, 16, record_release, &log, &segment),
               MEMSEG_STATUS_NULL_ARGUMENT);
  /* Both NULL and empty: either status will do, but it fails. */
  CHECK(memseg_segment_wrap(NULL, 0, record_release, &log, &segment) != MEMSEG_STATUS_OK);
  CHECK_STATUS(memseg_segment_wrap(host, 16, record_release, &log, NULL),
               MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_segment_wrap(host, (size_t)PTRDIFF_MAX + 1, record_release, &log, &segment),
               MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_segment_wrap(host, SIZE_MAX, record_release, &log, &segment),
               MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_EQ(segment.bits, 0x1234); /* the out handle is written only on success */
  CHECK_EQ(log.calls, 0);
  CHECK_EQ(mt_live_count(), live);
}

static void test_null_callback_allowed(void) {
  uint8_t host[16] = {0};
  memseg_segment segment = {0};
  memseg_memory_kind kind = 0;
  CHECK_OK(memseg_segment_wrap(host, sizeof host, NULL, NULL, &segment));
  CHECK_OK(memseg_segment_kind(segment, &kind));
  CHECK_EQ(kind, MEMSEG_MEMORY_KIND_FOREIGN);
  CHECK_OK(memseg_segment_put_u16_le(segment, 14, 0xBEEF));
  mt_free(segment);
  CHECK_EQ(host[14], 0xEF);
  CHECK_EQ(host[15], 0xBE);
  /* A NULL callback with a ctx: the ctx is simply never used. */
  CHECK_OK(memseg_segment_wrap(host, sizeof host, NULL, host, &segment));
  mt_free(segment);
}

static void test_host_and_segment_share_bytes(void) {
  uint8_t host[64];
  memseg_segment segment;
  uint8_t *ptr = NULL;
  size_t size = 0, i;
  uint32_t got = 0;
  uint8_t bytes[4];
  for (i = 0; i < sizeof host; i++) {
    host[i] = (uint8_t)(200 - i);
  }
  segment = mt_wrap(host, sizeof host);

  /* Not copied, not cleared: the segment reads what the host had. */
  for (i = 0; i < sizeof host; i++) {
    uint8_t b = 0;
    CHECK_OK(memseg_segment_get_u8(segment, i, &b));
    CHECK_EQ(b, 200 - i);
  }
  /* The segment's writes land in the host array... */
  CHECK_OK(memseg_segment_put_u32_be(segment, 3, UINT32_C(0xCAFEBABE)));
  CHECK_EQ(host[3], 0xCA);
  CHECK_EQ(host[4], 0xFE);
  CHECK_EQ(host[5], 0xBA);
  CHECK_EQ(host[6], 0xBE);
  CHECK_OK(memseg_segment_fill(segment, 40, 4, 0x11));
  CHECK(host[40] == 0x11 && host[43] == 0x11 && host[44] == (uint8_t)(200 - 44));
  /* ... and the host's writes are seen by the segment. */
  host[20] = 0x01;
  host[21] = 0x02;
  host[22] = 0x03;
  host[23] = 0x04;
  CHECK_OK(memseg_segment_get_u32_le(segment, 20, &got));
  CHECK_EQ(got, UINT32_C(0x04030201));
  CHECK_OK(memseg_segment_get_bytes(segment, 20, bytes, 4));
  CHECK_MEM(bytes, host + 20, 4);
  /* The lent pointer is the host's. */
  CHECK_OK(memseg_segment_raw(segment, &ptr, &size));
  CHECK(ptr == host);
  CHECK_EQ(size, sizeof host);
  /* Out of bounds writes do not touch the host's bytes after the wrapped range. */
  mt_free(segment);
  {
    uint8_t guarded[12];
    memset(guarded, 0x55, sizeof guarded);
    segment = mt_wrap(guarded, 8);
    CHECK_STATUS(memseg_segment_put_u32(segment, 5, 0), MEMSEG_STATUS_OUT_OF_BOUNDS);
    CHECK_STATUS(memseg_segment_fill(segment, 0, 9, 0), MEMSEG_STATUS_OUT_OF_BOUNDS);
    CHECK_STATUS(memseg_segment_put_bytes(segment, 8, guarded, 1), MEMSEG_STATUS_OUT_OF_BOUNDS);
    for (i = 0; i < sizeof guarded; i++) {
      CHECK_EQ(guarded[i], 0x55);
    }
    mt_free(segment);
  }
}

/* The memory is the host's again once free returns: the callback may release it. */
static void release_free(void *ctx, void *ptr, size_t size) {
  int *calls = (int *)ctx;
  (void)size;
  (*calls)++;
  free(ptr);
}

static void test_callback_frees_host_memory(void) {
  int calls = 0, i;
  for (i = 0; i < 10; i++) {
    size_t size = 1000 + (size_t)i * 17;
    uint8_t *host = malloc(size);
    memseg_segment segment;
    CHECK(host != NULL);
    CHECK_OK(memseg_segment_wrap(host, size, release_free, &calls, &segment));
    CHECK_OK(memseg_segment_fill(segment, 0, size, (uint8_t)i));
    mt_free(segment);
    CHECK_EQ(calls, i + 1);
  }
}

struct free_job {
  memseg_segment segment;
  memseg_status status;
};

static void *free_on_thread(void *arg) {
  struct free_job *job = (struct free_job *)arg;
  job->status = memseg_segment_free(job->segment);
  return NULL;
}

static void test_release_runs_on_the_freeing_thread(void) {
  uint8_t host[32];
  struct release_log log;
  struct free_job job;
  pthread_t thread;
  memset(&log, 0, sizeof log);
  CHECK_OK(memseg_segment_wrap(host, sizeof host, record_release, &log, &job.segment));
  job.status = MEMSEG_STATUS_PANIC;
  CHECK(pthread_create(&thread, NULL, free_on_thread, &job) == 0);
  CHECK(pthread_join(thread, NULL) == 0);
  CHECK_OK(job.status);
  CHECK_EQ(log.calls, 1);
  CHECK(pthread_equal(log.thread, thread));
  CHECK(!pthread_equal(log.thread, pthread_self()));
}

/* Many wrapped segments at once, freed in another order: each callback once, its own ctx. */
static void test_many_wraps(void) {
  enum { COUNT = 50 };
  static uint8_t hosts[COUNT][24];
  struct release_log logs[COUNT];
  memseg_segment segments[COUNT];
  int i;
  memset(logs, 0, sizeof logs);
  for (i = 0; i < COUNT; i++) {
    CHECK_OK(memseg_segment_wrap(hosts[i], 24 - (size_t)(i % 5), record_release, &logs[i],
                                 &segments[i]));
  }
  for (i = COUNT - 1; i >= 0; i -= 2) {
    mt_free(segments[i]);
  }
  for (i = 0; i < COUNT; i += 2) {
    mt_free(segments[i]);
  }
  for (i = 0; i < COUNT; i++) {
    mt_context("wrap %d", i);
    CHECK_EQ(logs[i].calls, 1);
    CHECK(logs[i].ptr == (void *)hosts[i]);
    CHECK_EQ(logs[i].size, 24 - (size_t)(i % 5));
    CHECK(logs[i].ctx == (void *)&logs[i]);
  }
}

int main(void) {
  size_t live = mt_live_count();
  RUN(test_release_called_once_at_free);
  RUN(test_null_ctx);
  RUN(test_release_not_called_when_wrap_fails);
  RUN(test_null_callback_allowed);
  RUN(test_host_and_segment_share_bytes);
  RUN(test_callback_frees_host_memory);
  RUN(test_release_runs_on_the_freeing_thread);
  RUN(test_many_wraps);
  CHECK_EQ(mt_live_count(), live);
  printf("test_foreign: all passed\n");
  return 0;
}
