/*
 * The fast path: memseg_segment_raw(), memseg_raw_of() and the static inline accessors of
 * memseg_inline.h.
 * - memseg_raw_of() lends what memseg_segment_raw() lends; NULL out and bad handles are
 *   errors that write nothing;
 * - every inline accessor (12 types x 3 byte orders) agrees with the ABI call of the same
 *   name at every offset, valid and invalid (the same out-of-bounds matrix as test_typed.c):
 *   same status, same value, the same bytes in memory, nothing written on failure;
 * - a value written by either is read back by the other;
 * - writes through the raw pointer are seen by the ABI and the other way round;
 * - memseg_raw_in_bounds() at the edges, and the inline calls leave the thread's last
 *   error message alone.
 */
#define _POSIX_C_SOURCE 200809L /* sysconf */
#undef NDEBUG
#include <assert.h>
#include <unistd.h>

#include "memseg_inline.h"
#include "memseg_test.h"

static const struct mt_accessor *accessors;
static size_t accessor_count;

static void test_raw_of_matches_segment_raw(void) {
  uint8_t host[37];
  memseg_segment segments[3];
  size_t i;
  segments[0] = mt_heap(100);
  segments[1] = mt_offheap(5000, 0);
  segments[2] = mt_wrap(host, sizeof host);
  for (i = 0; i < 3; i++) {
    memseg_raw raw;
    uint8_t *ptr = NULL;
    size_t size = 0;
    mt_context("segment %zu", i);
    CHECK_OK(memseg_segment_raw(segments[i], &ptr, &size));
    CHECK_OK(memseg_raw_of(segments[i], &raw));
    CHECK(raw.ptr == ptr);
    CHECK_EQ(raw.size, size);
    CHECK_EQ(raw.size, mt_size(segments[i]));
    CHECK(ptr != NULL);
  }
  {
    memseg_raw raw;
    CHECK_OK(memseg_raw_of(segments[2], &raw));
    CHECK(raw.ptr == host);
    CHECK_EQ(raw.size, sizeof host);
  }
  /* NULL out pointer. */
  CHECK_STATUS(memseg_raw_of(segments[0], NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  {
    uint8_t *ptr = (uint8_t *)(uintptr_t)0x1234;
    size_t size = 77;
    CHECK_STATUS(memseg_segment_raw(segments[0], NULL, &size), MEMSEG_STATUS_NULL_ARGUMENT);
    CHECK_EQ(size, 77);
    CHECK_STATUS(memseg_segment_raw(segments[0], &ptr, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
    CHECK(ptr == (uint8_t *)(uintptr_t)0x1234);
  }
  /* Bad handles: nothing written. */
  {
    memseg_segment zero = {0};
    memseg_raw raw = {(uint8_t *)(uintptr_t)0x1234, 77};
    CHECK_STATUS(memseg_raw_of(zero, &raw), MEMSEG_STATUS_INVALID_HANDLE);
    CHECK(raw.ptr == (uint8_t *)(uintptr_t)0x1234);
    CHECK_EQ(raw.size, 77);
    mt_free(segments[1]);
    CHECK_STATUS(memseg_raw_of(segments[1], &raw), MEMSEG_STATUS_STALE_HANDLE);
    CHECK(raw.ptr == (uint8_t *)(uintptr_t)0x1234);
    CHECK_EQ(raw.size, 77);
  }
  mt_free(segments[0]);
  mt_free(segments[2]);
}

static void test_alignment_of_lent_memory(void) {
  memseg_segment heap = mt_heap(3);
  memseg_segment offheap = mt_offheap(3, 0);
  memseg_raw raw;
  CHECK_OK(memseg_raw_of(heap, &raw));
  CHECK_EQ((uintptr_t)raw.ptr % 64, 0); /* documented: heap segments are 64-byte aligned */
  CHECK_OK(memseg_raw_of(offheap, &raw));
  CHECK_EQ((uintptr_t)raw.ptr % (uintptr_t)sysconf(_SC_PAGESIZE), 0); /* page aligned */
  mt_free(heap);
  mt_free(offheap);
}

/* Every offset the inline and ABI accessors are compared at, for a value of `n` bytes. */
static size_t offsets_for(size_t size, size_t n, size_t *out) {
  size_t count = 0, offset;
  for (offset = 0; offset <= size + 2 && offset < 40; offset++) {
    out[count++] = offset;
  }
  for (offset = size > 40 ? size - 40 : 40; offset <= size + 1; offset++) {
    out[count++] = offset;
  }
  out[count++] = size - n + 1;
  out[count++] = SIZE_MAX;
  out[count++] = SIZE_MAX - 1;
  out[count++] = SIZE_MAX - n + 1;
  out[count++] = SIZE_MAX / 2;
  return count;
}

static void compare_on(const struct mt_accessor *a, memseg_segment segment) {
  size_t size = mt_size(segment);
  uint8_t *shadow = malloc(size);
  size_t offsets[128];
  size_t count = offsets_for(size, a->size, offsets);
  size_t i;
  memseg_raw raw;

  CHECK(shadow != NULL);
  CHECK_OK(memseg_raw_of(segment, &raw));
  for (i = 0; i < count; i++) {
    size_t offset = offsets[i];
    bool fits = offset <= size && size - offset >= a->size;
    struct mt_out via_abi, via_raw;
    memseg_status abi_status, raw_status;
    uint8_t value[8] = {0x81, 0x42, 0x23, 0x14, 0x95, 0x66, 0x37, 0xF8};
    if (a->class_ == MT_BOOL) {
      value[0] = 1;
    }
    mt_context("%s, segment of %zu bytes, offset %zu", a->name, size, offset);
    mt_pattern(segment, shadow, size, (unsigned)i);

    /* Reads agree. */
    mt_out_reset(&via_abi);
    mt_out_reset(&via_raw);
    abi_status = a->get(segment, offset, &via_abi.value);
    raw_status = a->raw_get(raw, offset, &via_raw.value);
    CHECK_STATUS(raw_status, abi_status);
    CHECK_STATUS(raw_status, fits ? MEMSEG_STATUS_OK : MEMSEG_STATUS_OUT_OF_BOUNDS);
    CHECK_MEM(&via_raw, &via_abi, sizeof via_raw);
    if (!fits) {
      CHECK(mt_out_untouched(&via_raw));
    } else {
      CHECK(mt_out_guard_intact(&via_raw, a->size));
      if (a->class_ != MT_BOOL) {
        /* What the ABI read is the bytes in memory, decoded in the accessor's order. */
        uint8_t encoded[8];
        mt_encode(a->order, via_raw.value.bytes, a->size, encoded);
        CHECK_MEM(encoded, shadow + offset, a->size);
      } else {
        CHECK_EQ(via_raw.value.bytes[0], shadow[offset] != 0);
      }
    }

    /* An inline write is what the ABI write would have stored, and reads back via the ABI. */
    CHECK_STATUS(a->raw_put(raw, offset, value),
                 fits ? MEMSEG_STATUS_OK : MEMSEG_STATUS_OUT_OF_BOUNDS);
    if (fits) {
      mt_encode(a->order, value, a->size, shadow + offset);
      mt_out_reset(&via_abi);
      CHECK_OK(a->get(segment, offset, &via_abi.value));
      CHECK_MEM(via_abi.value.bytes, value, a->size);
    }
    CHECK_SEGMENT(segment, shadow);

    /* An ABI write reads back inline. */
    value[0] ^= (a->class_ == MT_BOOL) ? 1 : 0xFF;
    CHECK_STATUS(a->put(segment, offset, value),
                 fits ? MEMSEG_STATUS_OK : MEMSEG_STATUS_OUT_OF_BOUNDS);
    if (fits) {
      mt_encode(a->order, value, a->size, shadow + offset);
      mt_out_reset(&via_raw);
      CHECK_OK(a->raw_get(raw, offset, &via_raw.value));
      CHECK_MEM(via_raw.value.bytes, value, a->size);
    }
    CHECK_SEGMENT(segment, shadow);
  }
  free(shadow);
}

static void test_inline_agrees_with_abi(void) {
  static const size_t sizes[] = {1, 2, 3, 7, 8, 9, 17, 32768};
  size_t s, k;
  for (s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    memseg_segment heap = mt_heap(sizes[s]);
    memseg_segment offheap = mt_offheap(sizes[s], MEMSEG_OFFHEAP_PREFAULT);
    for (k = 0; k < accessor_count; k++) {
      compare_on(&accessors[k], heap);
      compare_on(&accessors[k], offheap);
    }
    mt_free(heap);
    mt_free(offheap);
  }
}

static void test_raw_pointer_writes_are_visible(void) {
  memseg_segment segment = mt_heap(64);
  memseg_raw raw;
  uint32_t got32 = 0;
  uint8_t byte = 0;
  uint8_t bytes[4];
  size_t i;
  CHECK_OK(memseg_raw_of(segment, &raw));
  for (i = 0; i < raw.size; i++) {
    raw.ptr[i] = (uint8_t)(i + 1);
  }
  for (i = 0; i < raw.size; i++) {
    CHECK_OK(memseg_segment_get_u8(segment, i, &byte));
    CHECK_EQ(byte, i + 1);
  }
  raw.ptr[10] = 0xDE;
  raw.ptr[11] = 0xAD;
  raw.ptr[12] = 0xBE;
  raw.ptr[13] = 0xEF;
  CHECK_OK(memseg_segment_get_u32_be(segment, 10, &got32));
  CHECK_EQ(got32, UINT32_C(0xDEADBEEF));
  CHECK_OK(memseg_segment_put_u32_le(segment, 20, UINT32_C(0x01020304)));
  CHECK_EQ(raw.ptr[20], 0x04);
  CHECK_EQ(raw.ptr[21], 0x03);
  CHECK_EQ(raw.ptr[22], 0x02);
  CHECK_EQ(raw.ptr[23], 0x01);
  CHECK_OK(memseg_segment_fill(segment, 30, 4, 0x77));
  memcpy(bytes, raw.ptr + 30, 4);
  CHECK_EQ(bytes[0] == 0x77 && bytes[1] == 0x77 && bytes[2] == 0x77 && bytes[3] == 0x77, 1);
  /* The lent pointer stays the segment's across calls. */
  {
    memseg_raw again;
    CHECK_OK(memseg_raw_of(segment, &again));
    CHECK(again.ptr == raw.ptr);
    CHECK_EQ(again.size, raw.size);
  }
  mt_free(segment);
}

static void test_in_bounds_edges(void) {
  uint8_t byte = 0;
  memseg_raw raw = {&byte, 10};
  CHECK(memseg_raw_in_bounds(raw, 0, 10));
  CHECK(memseg_raw_in_bounds(raw, 10, 0));
  CHECK(memseg_raw_in_bounds(raw, 9, 1));
  CHECK(!memseg_raw_in_bounds(raw, 9, 2));
  CHECK(!memseg_raw_in_bounds(raw, 11, 0));
  CHECK(!memseg_raw_in_bounds(raw, 0, 11));
  CHECK(!memseg_raw_in_bounds(raw, 1, SIZE_MAX));
  CHECK(!memseg_raw_in_bounds(raw, SIZE_MAX, 1));
  CHECK(!memseg_raw_in_bounds(raw, SIZE_MAX, SIZE_MAX));
  CHECK(!memseg_raw_in_bounds(raw, SIZE_MAX - 5, 10));
}

static void test_inline_calls_keep_the_last_error(void) {
  memseg_segment segment = mt_heap(8);
  memseg_raw raw;
  char before[256], after[256];
  uint64_t value = 0;
  CHECK_OK(memseg_raw_of(segment, &raw));
  CHECK_STATUS(memseg_segment_get_u64(segment, 1, &value), MEMSEG_STATUS_OUT_OF_BOUNDS);
  memseg_last_error_message(before, sizeof before);
  CHECK(strlen(before) > 0);
  CHECK_STATUS(memseg_raw_get_u64(raw, 3, &value), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_STATUS(memseg_raw_put_u32_be(raw, 7, 1), MEMSEG_STATUS_OUT_OF_BOUNDS);
  memseg_last_error_message(after, sizeof after);
  CHECK_STR(after, before);
  mt_free(segment);
}

int main(void) {
  size_t live = mt_live_count();
  accessor_count = mt_accessors(&accessors);
  CHECK_EQ(accessor_count, MT_TYPED_COUNT);
  RUN(test_raw_of_matches_segment_raw);
  RUN(test_alignment_of_lent_memory);
  RUN(test_in_bounds_edges);
  RUN(test_raw_pointer_writes_are_visible);
  RUN(test_inline_calls_keep_the_last_error);
  RUN(test_inline_agrees_with_abi);
  CHECK_EQ(mt_live_count(), live);
  printf("test_inline: all passed\n");
  return 0;
}
