/*
 * Threads: several pthreads allocate and free segments (heap, off-heap, foreign) and do typed
 * and bulk accesses on their own segments at the same time.
 * - every value a thread writes it reads back (no other thread's work shows in its segments);
 * - all handles alive at the same moment are distinct across threads;
 * - the live count is exact while every thread holds its segments, and back to its starting
 *   value at the end; every foreign release callback ran exactly once;
 * - errors on one thread leave the other threads' last error messages alone.
 */
#define _POSIX_C_SOURCE 200809L /* pthreads */
#undef NDEBUG
#include <assert.h>
#include <pthread.h>

#include "memseg_test.h"

#define THREADS 4
#define HELD 32     /* segments each thread holds at the barrier */
#define ROUNDS 300  /* allocate/use/free rounds per thread afterwards */

struct worker {
  int id;
  pthread_barrier_t *barrier;
  memseg_segment held[HELD];
  uint8_t hosts[HELD][64]; /* sizes are at most 16 + 39 */
  int release_calls;
  int failures;
};

static void count_release(void *ctx, void *ptr, size_t size) {
  struct worker *w = (struct worker *)ctx;
  (void)ptr;
  (void)size;
  w->release_calls++;
}

static memseg_segment make_segment(struct worker *w, int i, size_t *size) {
  memseg_segment segment = {0};
  *size = 16 + (size_t)((i * 7 + w->id) % 40);
  switch (i % 3) {
  case 0:
    CHECK_OK(memseg_segment_new_heap(*size, &segment));
    break;
  case 1:
    CHECK_OK(memseg_segment_new_offheap(*size, 0, &segment));
    break;
  default:
    CHECK_OK(memseg_segment_wrap(w->hosts[i % HELD], *size, count_release, w, &segment));
    break;
  }
  return segment;
}

/* Writes a pattern that names the thread and the round with typed puts, then reads it back. */
static void use_segment(struct worker *w, memseg_segment segment, size_t size, uint32_t round) {
  uint64_t tag = ((uint64_t)w->id << 48) | round;
  uint64_t got64 = 0;
  uint32_t got32 = 0;
  uint16_t got16 = 0;
  double gotd = 0;
  size_t offset;
  for (offset = 0; offset + 8 <= size; offset += 8) {
    CHECK_OK(memseg_segment_put_u64_be(segment, offset, tag + offset));
  }
  for (offset = 0; offset + 8 <= size; offset += 8) {
    CHECK_OK(memseg_segment_get_u64_be(segment, offset, &got64));
    CHECK_EQ(got64, tag + offset);
  }
  CHECK_OK(memseg_segment_put_u32_le(segment, 3, round * 2654435761u));
  CHECK_OK(memseg_segment_get_u32_le(segment, 3, &got32));
  CHECK_EQ(got32, round * 2654435761u);
  CHECK_OK(memseg_segment_put_char_be(segment, size - 2, (uint16_t)w->id));
  CHECK_OK(memseg_segment_get_char_be(segment, size - 2, &got16));
  CHECK_EQ(got16, w->id);
  CHECK_OK(memseg_segment_put_f64(segment, 5, (double)round + 0.5));
  CHECK_OK(memseg_segment_get_f64(segment, 5, &gotd));
  CHECK(gotd == (double)round + 0.5);
  CHECK_STATUS(memseg_segment_get_u64(segment, size - 7, &got64), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_OK(memseg_segment_fill(segment, 0, size, (uint8_t)w->id));
  {
    uint8_t bytes[64];
    size_t i;
    CHECK_OK(memseg_segment_get_bytes(segment, 0, bytes, size));
    for (i = 0; i < size; i++) {
      CHECK_EQ(bytes[i], w->id);
    }
  }
}

static void *worker_main(void *arg) {
  struct worker *w = (struct worker *)arg;
  size_t sizes[HELD];
  char message[256];
  int i;
  uint32_t round;
  mt_context("thread %d", w->id);

  /* Phase 1: allocate and hold HELD segments, so that the main thread can see all of them
   * alive at once. */
  for (i = 0; i < HELD; i++) {
    w->held[i] = make_segment(w, i, &sizes[i]);
    use_segment(w, w->held[i], sizes[i], (uint32_t)i);
  }
  pthread_barrier_wait(w->barrier);
  pthread_barrier_wait(w->barrier);

  /* Phase 2: the held segments still hold this thread's bytes; free them. */
  for (i = 0; i < HELD; i++) {
    uint8_t byte = 0;
    CHECK_OK(memseg_segment_get_u8(w->held[i], 0, &byte));
    CHECK_EQ(byte, w->id);
    use_segment(w, w->held[i], sizes[i], (uint32_t)(1000 + i));
    mt_free(w->held[i]);
  }

  /* Phase 3: churn, with an error of this thread's own in every round. */
  for (round = 0; round < ROUNDS; round++) {
    size_t size;
    memseg_segment segment = make_segment(w, (int)round, &size);
    char expected[32];
    uint8_t byte = 0;
    use_segment(w, segment, size, round);
    CHECK_STATUS(memseg_segment_get_u8(segment, 1000 + (size_t)w->id, &byte),
                 MEMSEG_STATUS_OUT_OF_BOUNDS);
    memseg_last_error_message(message, sizeof message);
    snprintf(expected, sizeof expected, "offset %d ", 1000 + w->id);
    CHECK(strstr(message, expected) != NULL);
    mt_free(segment);
    CHECK_STATUS(memseg_segment_free(segment), MEMSEG_STATUS_STALE_HANDLE);
  }
  return NULL;
}

static void test_threads(void) {
  struct worker *workers = calloc(THREADS, sizeof *workers);
  pthread_t threads[THREADS];
  pthread_barrier_t barrier;
  size_t live = mt_live_count();
  int t, u, i, j, expected_releases = 0;
  CHECK(workers != NULL);
  CHECK(pthread_barrier_init(&barrier, NULL, THREADS + 1) == 0);
  for (t = 0; t < THREADS; t++) {
    workers[t].id = t + 1;
    workers[t].barrier = &barrier;
    CHECK(pthread_create(&threads[t], NULL, worker_main, &workers[t]) == 0);
  }

  /* Every thread holds its segments: all handles distinct, all counted. */
  pthread_barrier_wait(&barrier);
  CHECK_EQ(mt_live_count(), live + THREADS * HELD);
  for (t = 0; t < THREADS; t++) {
    for (i = 0; i < HELD; i++) {
      bool freed = true;
      CHECK(workers[t].held[i].bits != 0);
      CHECK_OK(memseg_segment_is_freed(workers[t].held[i], &freed));
      CHECK(!freed);
      for (u = t; u < THREADS; u++) {
        for (j = (u == t ? i + 1 : 0); j < HELD; j++) {
          CHECK(workers[t].held[i].bits != workers[u].held[j].bits);
        }
      }
    }
  }
  pthread_barrier_wait(&barrier);

  for (t = 0; t < THREADS; t++) {
    CHECK(pthread_join(threads[t], NULL) == 0);
  }
  CHECK(pthread_barrier_destroy(&barrier) == 0);
  CHECK_EQ(mt_live_count(), live);

  /* Every foreign segment released once: i % 3 == 2 in phase 1 and in phase 3. */
  for (i = 0; i < HELD; i++) {
    expected_releases += i % 3 == 2;
  }
  for (i = 0; i < ROUNDS; i++) {
    expected_releases += i % 3 == 2;
  }
  for (t = 0; t < THREADS; t++) {
    mt_context("thread %d", workers[t].id);
    CHECK_EQ(workers[t].release_calls, expected_releases);
    for (i = 0; i < HELD; i++) {
      bool freed = false;
      CHECK_OK(memseg_segment_is_freed(workers[t].held[i], &freed));
      CHECK(freed);
    }
  }
  free(workers);
}

/* Several threads freeing and allocating while others use their own segments through the
 * same handle table: no handle is ever handed out twice. */
struct churn {
  memseg_segment seen[512];
  int count;
};

static void *churn_main(void *arg) {
  struct churn *c = (struct churn *)arg;
  int i;
  for (i = 0; i < 512; i++) {
    memseg_segment segment = mt_heap(8);
    CHECK_OK(memseg_segment_put_u64(segment, 0, (uint64_t)i));
    c->seen[c->count++] = segment;
    mt_free(segment);
  }
  return NULL;
}

static int compare_bits(const void *a, const void *b) {
  uint64_t x = ((const memseg_segment *)a)->bits;
  uint64_t y = ((const memseg_segment *)b)->bits;
  return (x > y) - (x < y);
}

static void test_handles_never_issued_twice(void) {
  struct churn *churns = calloc(THREADS, sizeof *churns);
  memseg_segment *all = malloc(sizeof(memseg_segment) * THREADS * 512);
  pthread_t threads[THREADS];
  int t, i, n = 0;
  CHECK(churns != NULL && all != NULL);
  for (t = 0; t < THREADS; t++) {
    CHECK(pthread_create(&threads[t], NULL, churn_main, &churns[t]) == 0);
  }
  for (t = 0; t < THREADS; t++) {
    CHECK(pthread_join(threads[t], NULL) == 0);
    for (i = 0; i < churns[t].count; i++) {
      all[n++] = churns[t].seen[i];
    }
  }
  CHECK_EQ(n, THREADS * 512);
  qsort(all, (size_t)n, sizeof all[0], compare_bits);
  for (i = 1; i < n; i++) {
    CHECK(all[i - 1].bits != all[i].bits);
  }
  free(all);
  free(churns);
}

int main(void) {
  size_t live = mt_live_count();
  RUN(test_threads);
  RUN(test_handles_never_issued_twice);
  CHECK_EQ(mt_live_count(), live);
  printf("test_threads: all passed\n");
  return 0;
}
