/*
 * Allocation of heap and off-heap segments.
 * - heap: zero-filled, kind MEMSEG_MEMORY_KIND_HEAP, 64-byte aligned, the size asked for;
 * - off-heap with every flag combination (0, HUGE_PAGES, PREFAULT, both): zero-filled, kind
 *   MEMSEG_MEMORY_KIND_OFFHEAP, page aligned, the size asked for even when it is not a
 *   multiple of the page size; unknown flag bits are MEMSEG_STATUS_INVALID_ARGUMENT;
 * - sizes 0, SIZE_MAX and PTRDIFF_MAX + 1 are MEMSEG_STATUS_INVALID_ARGUMENT, a huge but
 *   representable size (1 << 50, PTRDIFF_MAX) is MEMSEG_STATUS_ALLOCATION_FAILED, for both;
 * - a failed allocation writes no handle and allocates nothing (live count unchanged);
 * - handles are distinct and never zero; freed memory can be allocated again.
 */
#define _POSIX_C_SOURCE 200809L /* sysconf */
#undef NDEBUG
#include <assert.h>
#include <unistd.h>

#include "memseg_test.h"

static const uint32_t FLAG_COMBINATIONS[] = {
    0,
    MEMSEG_OFFHEAP_HUGE_PAGES,
    MEMSEG_OFFHEAP_PREFAULT,
    MEMSEG_OFFHEAP_HUGE_PAGES | MEMSEG_OFFHEAP_PREFAULT,
};
#define FLAG_COMBINATION_COUNT (sizeof FLAG_COMBINATIONS / sizeof FLAG_COMBINATIONS[0])

static size_t page_size(void) {
  long page = sysconf(_SC_PAGESIZE);
  CHECK(page > 0);
  return (size_t)page;
}

static void check_zero_filled(memseg_segment segment) {
  uint8_t *ptr = NULL;
  size_t size = 0, i;
  CHECK_OK(memseg_segment_raw(segment, &ptr, &size));
  for (i = 0; i < size; i++) {
    if (ptr[i] != 0) {
      mt_context("byte %zu of %zu is 0x%02x", i, size, ptr[i]);
      CHECK(ptr[i] == 0);
    }
  }
}

/* Every byte can be written and read back, the first and the last included. */
static void check_usable(memseg_segment segment) {
  size_t size = mt_size(segment);
  uint8_t got = 0;
  CHECK_OK(memseg_segment_fill(segment, 0, size, 0xC3));
  CHECK_OK(memseg_segment_get_u8(segment, 0, &got));
  CHECK_EQ(got, 0xC3);
  CHECK_OK(memseg_segment_get_u8(segment, size - 1, &got));
  CHECK_EQ(got, 0xC3);
  CHECK_STATUS(memseg_segment_get_u8(segment, size, &got), MEMSEG_STATUS_OUT_OF_BOUNDS);
}

static void test_heap(void) {
  static const size_t sizes[] = {1, 2, 3, 63, 64, 65, 4095, 4097, 32768, 1u << 20};
  size_t i;
  for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    memseg_segment segment = {0};
    memseg_memory_kind kind = 0;
    uint8_t *ptr = NULL;
    size_t size = 0;
    mt_context("heap segment of %zu bytes", sizes[i]);
    CHECK_OK(memseg_segment_new_heap(sizes[i], &segment));
    CHECK(segment.bits != 0);
    CHECK_OK(memseg_segment_kind(segment, &kind));
    CHECK_EQ(kind, MEMSEG_MEMORY_KIND_HEAP);
    CHECK_OK(memseg_segment_raw(segment, &ptr, &size));
    CHECK_EQ(size, sizes[i]);
    CHECK_EQ(mt_size(segment), sizes[i]);
    CHECK_EQ((uintptr_t)ptr % 64, 0);
    check_zero_filled(segment);
    check_usable(segment);
    mt_free(segment);
  }
}

/* Memory that comes back from the allocator dirty is still handed out zero-filled. */
static void test_heap_zero_filled_after_reuse(void) {
  int round;
  for (round = 0; round < 20; round++) {
    memseg_segment segment = mt_heap(4096);
    check_zero_filled(segment);
    CHECK_OK(memseg_segment_fill(segment, 0, 4096, 0xFF));
    mt_free(segment);
  }
}

static void test_offheap_every_flag_combination(void) {
  size_t page = page_size();
  size_t sizes[6];
  size_t i, f;
  sizes[0] = 1;
  sizes[1] = 7;
  sizes[2] = page - 1;
  sizes[3] = page;
  sizes[4] = page + 1;
  sizes[5] = 5 * page + 123;
  for (f = 0; f < FLAG_COMBINATION_COUNT; f++) {
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      memseg_segment segment = {0};
      memseg_memory_kind kind = 0;
      uint8_t *ptr = NULL;
      size_t size = 0;
      mt_context("off-heap segment of %zu bytes, flags 0x%x", sizes[i],
                 (unsigned)FLAG_COMBINATIONS[f]);
      CHECK_OK(memseg_segment_new_offheap(sizes[i], FLAG_COMBINATIONS[f], &segment));
      CHECK(segment.bits != 0);
      CHECK_OK(memseg_segment_kind(segment, &kind));
      CHECK_EQ(kind, MEMSEG_MEMORY_KIND_OFFHEAP);
      CHECK_OK(memseg_segment_raw(segment, &ptr, &size));
      CHECK_EQ(size, sizes[i]);
      CHECK_EQ((uintptr_t)ptr % page, 0);
      check_zero_filled(segment);
      check_usable(segment);
      mt_free(segment);
    }
  }
  /* A segment large enough for transparent huge pages, where the kernel has them. */
  {
    size_t size = (size_t)4 << 20;
    memseg_segment segment =
        mt_offheap(size, MEMSEG_OFFHEAP_HUGE_PAGES | MEMSEG_OFFHEAP_PREFAULT);
    check_zero_filled(segment);
    check_usable(segment);
    mt_free(segment);
  }
}

static void test_offheap_unknown_flags(void) {
  static const uint32_t bad_flags[] = {
      1u << 2, 1u << 3, 1u << 31, 0xFFFFFFFFu, (1u << 2) | MEMSEG_OFFHEAP_PREFAULT,
      (1u << 16) | MEMSEG_OFFHEAP_HUGE_PAGES,
  };
  size_t live = mt_live_count();
  size_t i;
  CHECK_EQ(MEMSEG_OFFHEAP_HUGE_PAGES & MEMSEG_OFFHEAP_PREFAULT, 0);
  for (i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++) {
    memseg_segment segment = {0x77};
    mt_context("flags 0x%x", (unsigned)bad_flags[i]);
    CHECK_STATUS(memseg_segment_new_offheap(4096, bad_flags[i], &segment),
                 MEMSEG_STATUS_INVALID_ARGUMENT);
    CHECK_EQ(segment.bits, 0x77);
    CHECK_EQ(mt_live_count(), live);
  }
}

/* One failing allocation: the status, no handle written, nothing allocated. */
static void check_refused(bool offheap, size_t size, memseg_status expected) {
  memseg_segment segment = {0x77};
  size_t live = mt_live_count();
  mt_context("%s segment of %zu bytes", offheap ? "off-heap" : "heap", size);
  if (offheap) {
    CHECK_STATUS(memseg_segment_new_offheap(size, 0, &segment), expected);
  } else {
    CHECK_STATUS(memseg_segment_new_heap(size, &segment), expected);
  }
  CHECK_EQ(segment.bits, 0x77);
  CHECK_EQ(mt_live_count(), live);
}

static void test_impossible_sizes(void) {
  int offheap;
  for (offheap = 0; offheap < 2; offheap++) {
    check_refused(offheap, 0, MEMSEG_STATUS_INVALID_ARGUMENT);
    check_refused(offheap, SIZE_MAX, MEMSEG_STATUS_INVALID_ARGUMENT);
    check_refused(offheap, SIZE_MAX / 2 + 1, MEMSEG_STATUS_INVALID_ARGUMENT);
    check_refused(offheap, (size_t)PTRDIFF_MAX + 1, MEMSEG_STATUS_INVALID_ARGUMENT);
    /* Representable, so a valid argument, but more than any machine has. */
    check_refused(offheap, (size_t)1 << 50, MEMSEG_STATUS_ALLOCATION_FAILED);
    check_refused(offheap, ((size_t)1 << 50) + 1, MEMSEG_STATUS_ALLOCATION_FAILED);
    check_refused(offheap, (size_t)1 << 62, MEMSEG_STATUS_ALLOCATION_FAILED);
  }
  /* The failures leave the allocators usable. */
  {
    memseg_segment heap = mt_heap(16), offheap_segment = mt_offheap(16, 0);
    mt_free(heap);
    mt_free(offheap_segment);
  }
}

/* PTRDIFF_MAX itself is documented as a valid size ("INVALID_ARGUMENT ... above
 * PTRDIFF_MAX"), so asking for it is refused by the allocator, not as an argument. */
static void test_ptrdiff_max_is_a_valid_size(void) {
  check_refused(true, (size_t)PTRDIFF_MAX, MEMSEG_STATUS_ALLOCATION_FAILED);
  check_refused(false, (size_t)PTRDIFF_MAX, MEMSEG_STATUS_ALLOCATION_FAILED);
}

static void test_null_out_allocates_nothing(void) {
  size_t live = mt_live_count();
  CHECK_STATUS(memseg_segment_new_heap(16, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_segment_new_offheap(16, 0, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_segment_new_offheap(16, MEMSEG_OFFHEAP_PREFAULT, NULL),
               MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_EQ(mt_live_count(), live);
}

static void test_handles_distinct_and_counted(void) {
  enum { COUNT = 200 };
  memseg_segment segments[COUNT];
  size_t live = mt_live_count();
  size_t i, j;
  for (i = 0; i < COUNT; i++) {
    segments[i] = (i % 3 == 0) ? mt_offheap(1 + i, 0) : mt_heap(1 + i);
    CHECK(segments[i].bits != 0);
    CHECK_EQ(mt_live_count(), live + i + 1);
  }
  for (i = 0; i < COUNT; i++) {
    for (j = i + 1; j < COUNT; j++) {
      CHECK(segments[i].bits != segments[j].bits);
    }
    CHECK_EQ(mt_size(segments[i]), 1 + i);
  }
  for (i = 0; i < COUNT; i++) {
    mt_free(segments[COUNT - 1 - i]);
    CHECK_EQ(mt_live_count(), live + COUNT - 1 - i);
  }
}

int main(void) {
  size_t live = mt_live_count();
  RUN(test_heap);
  RUN(test_heap_zero_filled_after_reuse);
  RUN(test_offheap_every_flag_combination);
  RUN(test_offheap_unknown_flags);
  RUN(test_impossible_sizes);
  RUN(test_null_out_allocates_nothing);
  RUN(test_handles_distinct_and_counted);
  RUN(test_ptrdiff_max_is_a_valid_size);
  CHECK_EQ(mt_live_count(), live);
  printf("test_alloc: all passed\n");
  return 0;
}
