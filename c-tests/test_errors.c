/*
 * Errors: NULL out pointers, status names and the last error message.
 * - every NULL out pointer (and NULL buffer with a length) is MEMSEG_STATUS_NULL_ARGUMENT and
 *   nothing else happens: no segment allocated, no callback run, no other out value or byte
 *   written; the message names the argument;
 * - memseg_status_name() for every code 0..21 is the constant's name; any other number
 *   (-1, 22, 9999, INT32_MIN, INT32_MAX) is "MEMSEG_STATUS_UNKNOWN";
 * - memseg_last_error_message(): returns the length needed, truncates with a NUL, buf NULL with
 *   len 0 returns the length, writes nothing with len 0, is empty on a new thread, is kept by
 *   successful calls, mentions the offset and size of an out-of-bounds access and the
 *   handle of a stale one, and is per thread (pthreads).
 */
#define _POSIX_C_SOURCE 200809L /* pthreads */
#undef NDEBUG
#include <assert.h>
#include <pthread.h>

#include "memseg_test.h"

static const struct mt_accessor *accessors;
static size_t accessor_count;

/* Whether the last error message contains `needle`, ignoring ASCII case. */
static bool message_has(const char *needle, char *message, size_t message_len) {
  char lower_needle[128];
  size_t i;
  memseg_last_error_message(message, message_len);
  for (i = 0; needle[i] != '\0' && i + 1 < sizeof lower_needle; i++) {
    lower_needle[i] = (char)((needle[i] >= 'A' && needle[i] <= 'Z') ? needle[i] + 32 : needle[i]);
  }
  lower_needle[i] = '\0';
  for (i = 0; message[i] != '\0'; i++) {
    if (message[i] >= 'A' && message[i] <= 'Z') {
      message[i] = (char)(message[i] + 32);
    }
  }
  return strstr(message, lower_needle) != NULL;
}

/* The last error message must contain `needle` (ignoring case). */
#define CHECK_MESSAGE_HAS(needle)                                                           \
  do {                                                                                      \
    char mt_msg_[512];                                                                      \
    if (!message_has((needle), mt_msg_, sizeof mt_msg_)) {                                  \
      mt_fail_begin(__FILE__, __LINE__);                                                    \
      fprintf(stderr, "last error message \"%s\" does not mention \"%s\"", mt_msg_,         \
              (needle));                                                                    \
      mt_fail_end();                                                                        \
    }                                                                                       \
  } while (0)

static int release_calls;
static void count_release(void *ctx, void *ptr, size_t size) {
  (void)ctx;
  (void)ptr;
  (void)size;
  release_calls++;
}

static void test_null_out_pointers(void) {
  uint8_t host[16];
  memseg_segment segment = mt_heap(16);
  memseg_segment other = mt_heap(16);
  uint8_t shadow[16], other_shadow[16];
  size_t live;
  size_t k;
  mt_pattern(segment, shadow, sizeof shadow, 1);
  mt_pattern(other, other_shadow, sizeof other_shadow, 2);
  live = mt_live_count();

  /* Allocators: nothing allocated, no callback. */
  release_calls = 0;
  CHECK_STATUS(memseg_segment_new_heap(16, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_MESSAGE_HAS("out_segment");
  CHECK_STATUS(memseg_segment_new_offheap(16, 0, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_segment_wrap(host, sizeof host, count_release, NULL, NULL),
               MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_MESSAGE_HAS("out_segment");
  CHECK_EQ(release_calls, 0);
  CHECK_EQ(mt_live_count(), live);

  /* Queries. */
  CHECK_STATUS(memseg_segment_size(segment, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_MESSAGE_HAS("out_size");
  CHECK_STATUS(memseg_segment_kind(segment, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_MESSAGE_HAS("out_kind");
  CHECK_STATUS(memseg_segment_is_freed(segment, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_MESSAGE_HAS("out_freed");
  CHECK_STATUS(memseg_segment_live_count(NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_MESSAGE_HAS("out_count");
  {
    uint8_t *ptr = (uint8_t *)(uintptr_t)0x42;
    size_t size = 42;
    CHECK_STATUS(memseg_segment_raw(segment, NULL, &size), MEMSEG_STATUS_NULL_ARGUMENT);
    CHECK_MESSAGE_HAS("out_ptr");
    CHECK_EQ(size, 42);
    CHECK_STATUS(memseg_segment_raw(segment, &ptr, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
    CHECK_MESSAGE_HAS("out_size");
    CHECK(ptr == (uint8_t *)(uintptr_t)0x42);
    CHECK_STATUS(memseg_segment_raw(segment, NULL, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  }

  /* Bulk. */
  CHECK_STATUS(memseg_segment_get_bytes(segment, 0, NULL, 4), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_MESSAGE_HAS("dst");
  CHECK_STATUS(memseg_segment_put_bytes(segment, 0, NULL, 4), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_MESSAGE_HAS("src");
  CHECK_STATUS(memseg_segment_compare(segment, 0, other, 0, 4, NULL),
               MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_MESSAGE_HAS("out_order");
  CHECK_STATUS(memseg_segment_equal(segment, 0, other, 0, 4, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_MESSAGE_HAS("out_equal");

  /* Every typed getter. */
  for (k = 0; k < accessor_count; k++) {
    mt_context("%s", accessors[k].name);
    CHECK_STATUS(accessors[k].get(segment, 0, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
    CHECK_MESSAGE_HAS("out_value");
  }
  mt_context("%s", "");

  CHECK_SEGMENT(segment, shadow);
  CHECK_SEGMENT(other, other_shadow);
  CHECK_EQ(mt_live_count(), live);
  mt_free(segment);
  mt_free(other);
}

static void test_status_names(void) {
  static const char *const names[] = {
      "MEMSEG_STATUS_OK",
      "MEMSEG_STATUS_NULL_ARGUMENT",
      "MEMSEG_STATUS_INVALID_ARGUMENT",
      "MEMSEG_STATUS_OUT_OF_BOUNDS",
      "MEMSEG_STATUS_INVALID_HANDLE",
      "MEMSEG_STATUS_STALE_HANDLE",
      "MEMSEG_STATUS_WRONG_HANDLE_KIND",
      "MEMSEG_STATUS_ALLOCATION_FAILED",
      "MEMSEG_STATUS_PANIC",
      "MEMSEG_STATUS_BUDGET_EXHAUSTED",
      "MEMSEG_STATUS_QUOTA_EXHAUSTED",
      "MEMSEG_STATUS_WOULD_BLOCK",
      "MEMSEG_STATUS_TIMEOUT",
      "MEMSEG_STATUS_END_OF_DATA",
      "MEMSEG_STATUS_OUT_OF_SEGMENTS",
      "MEMSEG_STATUS_IO",
      "MEMSEG_STATUS_DISK_FULL",
      "MEMSEG_STATUS_CORRUPTED",
      "MEMSEG_STATUS_READ_ONLY",
      "MEMSEG_STATUS_IN_USE",
      "MEMSEG_STATUS_CLOSED",
      "MEMSEG_STATUS_NEED_MORE_DATA",
  };
  static const int32_t unknown[] = {-1, 22, 23, 9999, -9999, INT32_MIN, INT32_MAX, 256};
  size_t i;
  /* The header's constants have the codes the names are looked up by. */
  CHECK_EQ(MEMSEG_STATUS_OK, 0);
  CHECK_EQ(MEMSEG_STATUS_NULL_ARGUMENT, 1);
  CHECK_EQ(MEMSEG_STATUS_INVALID_ARGUMENT, 2);
  CHECK_EQ(MEMSEG_STATUS_OUT_OF_BOUNDS, 3);
  CHECK_EQ(MEMSEG_STATUS_INVALID_HANDLE, 4);
  CHECK_EQ(MEMSEG_STATUS_STALE_HANDLE, 5);
  CHECK_EQ(MEMSEG_STATUS_WRONG_HANDLE_KIND, 6);
  CHECK_EQ(MEMSEG_STATUS_ALLOCATION_FAILED, 7);
  CHECK_EQ(MEMSEG_STATUS_PANIC, 8);
  CHECK_EQ(MEMSEG_STATUS_BUDGET_EXHAUSTED, 9);
  CHECK_EQ(MEMSEG_STATUS_QUOTA_EXHAUSTED, 10);
  CHECK_EQ(MEMSEG_STATUS_WOULD_BLOCK, 11);
  CHECK_EQ(MEMSEG_STATUS_TIMEOUT, 12);
  CHECK_EQ(MEMSEG_STATUS_END_OF_DATA, 13);
  CHECK_EQ(MEMSEG_STATUS_OUT_OF_SEGMENTS, 14);
  CHECK_EQ(MEMSEG_STATUS_IO, 15);
  CHECK_EQ(MEMSEG_STATUS_DISK_FULL, 16);
  CHECK_EQ(MEMSEG_STATUS_CORRUPTED, 17);
  CHECK_EQ(MEMSEG_STATUS_READ_ONLY, 18);
  CHECK_EQ(MEMSEG_STATUS_IN_USE, 19);
  CHECK_EQ(MEMSEG_STATUS_CLOSED, 20);
  CHECK_EQ(MEMSEG_STATUS_NEED_MORE_DATA, 21);
  for (i = 0; i < sizeof names / sizeof names[0]; i++) {
    const char *name = memseg_status_name((int32_t)i);
    mt_context("code %zu", i);
    CHECK_STR(name, names[i]);
    /* Static: the same pointer every time. */
    CHECK(memseg_status_name((int32_t)i) == name);
  }
  for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    mt_context("code %" PRId32, unknown[i]);
    CHECK_STR(memseg_status_name(unknown[i]), "MEMSEG_STATUS_UNKNOWN");
  }
}

static void test_message_copy_and_truncation(void) {
  memseg_segment segment = mt_heap(777);
  char full[512], small[8];
  size_t len, again;
  uint64_t value = 0;
  CHECK_STATUS(memseg_segment_get_u64_be(segment, 12345, &value), MEMSEG_STATUS_OUT_OF_BOUNDS);

  /* buf NULL with len 0 asks for the length. */
  len = memseg_last_error_message(NULL, 0);
  CHECK(len > 0);
  CHECK(len < sizeof full);
  again = memseg_last_error_message(full, sizeof full);
  CHECK_EQ(again, len);
  CHECK_EQ(strlen(full), len);
  /* The message says which offset, length and size. */
  CHECK(strstr(full, "12345") != NULL);
  CHECK(strstr(full, "777") != NULL);

  /* A non-NULL buffer with len 0 is not written. */
  memset(small, 'x', sizeof small);
  CHECK_EQ(memseg_last_error_message(small, 0), len);
  CHECK_EQ(small[0], 'x');

  /* Truncation: at most len - 1 bytes and a NUL, the return value still the full length. */
  {
    size_t cap;
    for (cap = 1; cap <= sizeof small; cap++) {
      memset(small, 'x', sizeof small);
      mt_context("buffer of %zu bytes", cap);
      CHECK_EQ(memseg_last_error_message(small, cap), len);
      CHECK_EQ(small[cap - 1], '\0');
      CHECK_EQ(strlen(small), cap - 1);
      CHECK(strncmp(small, full, cap - 1) == 0);
      if (cap < sizeof small) {
        CHECK_EQ(small[cap], 'x'); /* nothing past the buffer's length */
      }
    }
  }
  /* Exactly the length + 1: all of it. */
  {
    char *exact = malloc(len + 2);
    CHECK(exact != NULL);
    memset(exact, 'x', len + 2);
    CHECK_EQ(memseg_last_error_message(exact, len + 1), len);
    CHECK_STR(exact, full);
    CHECK_EQ(exact[len + 1], 'x');
    /* One short: truncated by one byte. */
    memset(exact, 'x', len + 2);
    CHECK_EQ(memseg_last_error_message(exact, len), len);
    CHECK_EQ(strlen(exact), len - 1);
    free(exact);
  }

  /* Successful calls leave the message alone. */
  CHECK_OK(memseg_segment_get_u64_be(segment, 0, &value));
  CHECK_OK(memseg_segment_fill(segment, 0, 777, 1));
  mt_free(segment);
  {
    char after[512];
    memseg_last_error_message(after, sizeof after);
    CHECK_STR(after, full);
  }
}

static void test_messages_say_what_went_wrong(void) {
  memseg_segment segment = mt_heap(100);
  char hex[32];
  uint8_t buf[4];
  CHECK_STATUS(memseg_segment_put_bytes(segment, 98, buf, 4), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_MESSAGE_HAS("98");
  CHECK_MESSAGE_HAS("100");
  CHECK_STATUS(memseg_segment_fill(segment, SIZE_MAX, 2, 0), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_MESSAGE_HAS("18446744073709551615");
  CHECK_STATUS(memseg_segment_new_offheap(16, 1u << 7, &(memseg_segment){0}),
               MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_MESSAGE_HAS("0x80");
  mt_free(segment);
  /* A stale handle's message names the handle. */
  snprintf(hex, sizeof hex, "%016" PRIx64, segment.bits);
  CHECK_STATUS(memseg_segment_size(segment, &(size_t){0}), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_MESSAGE_HAS(hex);
  CHECK_STATUS(memseg_segment_free((memseg_segment){UINT64_C(0x0100000000ABCDEF)}),
               MEMSEG_STATUS_INVALID_HANDLE);
  CHECK_MESSAGE_HAS("abcdef");
}

/* Per thread: each thread has its own message, empty until its first error. */
struct thread_result {
  size_t initial_len;
  char initial[64];
  char after_own_error[512];
  memseg_status status;
  pthread_barrier_t *barrier;
};

static void *thread_main(void *arg) {
  struct thread_result *result = (struct thread_result *)arg;
  memset(result->initial, 'x', sizeof result->initial);
  result->initial_len = memseg_last_error_message(result->initial, sizeof result->initial);
  result->status = memseg_segment_live_count(NULL); /* NULL_ARGUMENT: "out_count" */
  /* Let the main thread make an error of its own now, then read ours again. */
  pthread_barrier_wait(result->barrier);
  pthread_barrier_wait(result->barrier);
  memseg_last_error_message(result->after_own_error, sizeof result->after_own_error);
  return NULL;
}

static void test_message_is_per_thread(void) {
  memseg_segment segment = mt_heap(7);
  char main_before[512], main_after[512];
  uint8_t byte = 0;
  pthread_t thread;
  pthread_barrier_t barrier;
  struct thread_result result;

  CHECK_STATUS(memseg_segment_get_u8(segment, 111, &byte), MEMSEG_STATUS_OUT_OF_BOUNDS);
  memseg_last_error_message(main_before, sizeof main_before);
  CHECK(strstr(main_before, "111") != NULL);

  CHECK(pthread_barrier_init(&barrier, NULL, 2) == 0);
  memset(&result, 0, sizeof result);
  result.barrier = &barrier;
  CHECK(pthread_create(&thread, NULL, thread_main, &result) == 0);
  pthread_barrier_wait(&barrier);
  /* The thread has made its error; ours is unchanged. */
  memseg_last_error_message(main_after, sizeof main_after);
  CHECK_STR(main_after, main_before);
  /* Now a different error here, while the thread waits. */
  CHECK_STATUS(memseg_segment_get_u32(segment, 5, &(uint32_t){0}), MEMSEG_STATUS_OUT_OF_BOUNDS);
  pthread_barrier_wait(&barrier);
  CHECK(pthread_join(thread, NULL) == 0);
  CHECK(pthread_barrier_destroy(&barrier) == 0);

  /* The new thread started with an empty message... */
  CHECK_EQ(result.initial_len, 0);
  CHECK_EQ(result.initial[0], '\0');
  /* ... and kept its own message while the main thread made another error. */
  CHECK_STATUS(result.status, MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK(strstr(result.after_own_error, "out_count") != NULL);
  CHECK(strstr(result.after_own_error, "out of bounds") == NULL);
  memseg_last_error_message(main_after, sizeof main_after);
  CHECK(strcmp(main_after, main_before) != 0);
  CHECK(strstr(main_after, "out_count") == NULL);
  mt_free(segment);
}

int main(void) {
  size_t live = mt_live_count();
  accessor_count = mt_accessors(&accessors);
  CHECK_EQ(accessor_count, MT_TYPED_COUNT);
  /* Before any error on this thread, the message is empty. */
  {
    char buf[16];
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(memseg_last_error_message(buf, sizeof buf), 0);
    CHECK_EQ(buf[0], '\0');
    CHECK_EQ(memseg_last_error_message(NULL, 0), 0);
  }
  RUN(test_status_names);
  RUN(test_null_out_pointers);
  RUN(test_message_copy_and_truncation);
  RUN(test_messages_say_what_went_wrong);
  RUN(test_message_is_per_thread);
  CHECK_EQ(mt_live_count(), live);
  printf("test_errors: all passed\n");
  return 0;
}
