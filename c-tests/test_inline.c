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
 *   error message alone;
 * - spans: memseg_raw_span<W>() checks its range once (at the edges, with counts whose byte
 *   size overflows, NULL arguments) and writes nothing on failure; every span accessor
 *   (12 types x 3 byte orders) reads and writes value `index` exactly as the offset accessor
 *   does at offset + index * size, refuses an index at or past the count (and a NULL out
 *   value) without touching memory or the out value.
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

/* ---- spans ---------------------------------------------------------------------------- */

/* A span accessor behind one signature: the span is given as its pointer and count. */
typedef memseg_status (*span_get_fn)(uint8_t *ptr, size_t count, size_t index, void *out_value);
typedef memseg_status (*span_put_fn)(uint8_t *ptr, size_t count, size_t index,
                                     const void *value);

struct span_accessor {
  const char *name; /* "u16_be", as in the accessor table */
  span_get_fn get;
  span_put_fn put;
};

/* Function names are pasted here, where the type name is still a bare token (bool is a
 * macro). */
#define SPAN_WRAPPERS_ORDER(get, put, span_get, span_put, span_type, ctype)                    \
  static memseg_status get(uint8_t *ptr, size_t count, size_t index, void *out_value) {       \
    span_type span;                                                                             \
    span.ptr = ptr;                                                                             \
    span.count = count;                                                                         \
    return span_get(span, index, (ctype *)out_value);                                          \
  }                                                                                             \
  static memseg_status put(uint8_t *ptr, size_t count, size_t index, const void *value) {     \
    span_type span;                                                                             \
    ctype v;                                                                                    \
    span.ptr = ptr;                                                                             \
    span.count = count;                                                                         \
    memcpy(&v, value, sizeof v);                                                                \
    return span_put(span, index, v);                                                            \
  }
#define SPAN_WRAPPERS(name, ctype, width)                                                       \
  SPAN_WRAPPERS_ORDER(span_get_##name, span_put_##name, memseg_span##width##_get_##name,        \
                      memseg_span##width##_put_##name, memseg_span##width, ctype)               \
  SPAN_WRAPPERS_ORDER(span_get_##name##_le, span_put_##name##_le,                               \
                      memseg_span##width##_get_##name##_le,                                     \
                      memseg_span##width##_put_##name##_le, memseg_span##width, ctype)          \
  SPAN_WRAPPERS_ORDER(span_get_##name##_be, span_put_##name##_be,                               \
                      memseg_span##width##_get_##name##_be,                                     \
                      memseg_span##width##_put_##name##_be, memseg_span##width, ctype)
#define SPAN_ENTRIES(name)                                                                      \
  {#name, span_get_##name, span_put_##name},                                                    \
      {#name "_le", span_get_##name##_le, span_put_##name##_le},                                \
      {#name "_be", span_get_##name##_be, span_put_##name##_be},

SPAN_WRAPPERS(u8, uint8_t, 8)
SPAN_WRAPPERS(i8, int8_t, 8)
SPAN_WRAPPERS(bool, bool, 8)
SPAN_WRAPPERS(u16, uint16_t, 16)
SPAN_WRAPPERS(i16, int16_t, 16)
SPAN_WRAPPERS(char, uint16_t, 16)
SPAN_WRAPPERS(u32, uint32_t, 32)
SPAN_WRAPPERS(i32, int32_t, 32)
SPAN_WRAPPERS(u64, uint64_t, 64)
SPAN_WRAPPERS(i64, int64_t, 64)
SPAN_WRAPPERS(f32, float, 32)
SPAN_WRAPPERS(f64, double, 64)

static const struct span_accessor span_accessors[] = {
    SPAN_ENTRIES(u8) SPAN_ENTRIES(i8) SPAN_ENTRIES(bool) SPAN_ENTRIES(u16) SPAN_ENTRIES(i16)
        SPAN_ENTRIES(char) SPAN_ENTRIES(u32) SPAN_ENTRIES(i32) SPAN_ENTRIES(u64)
            SPAN_ENTRIES(i64) SPAN_ENTRIES(f32) SPAN_ENTRIES(f64)};

/* memseg_raw_span<W>() behind one signature: `out` is a span of that width. */
#define SPAN_MAKE(width)                                                                        \
  static memseg_status span_make##width(memseg_raw raw, size_t offset, size_t count,           \
                                        uint8_t **out_ptr, size_t *out_count) {                 \
    memseg_span##width span = {(uint8_t *)(uintptr_t)0x1234, 77};                               \
    memseg_status status = memseg_raw_span##width(raw, offset, count, &span);                   \
    if (status != MEMSEG_STATUS_OK) {                                                           \
      /* Nothing written on failure. */                                                         \
      CHECK(span.ptr == (uint8_t *)(uintptr_t)0x1234);                                          \
      CHECK_EQ(span.count, 77);                                                                 \
    }                                                                                           \
    *out_ptr = span.ptr;                                                                        \
    *out_count = span.count;                                                                    \
    CHECK_STATUS(memseg_raw_span##width(raw, offset, count, NULL),                              \
                 MEMSEG_STATUS_NULL_ARGUMENT);                                                  \
    return status;                                                                              \
  }
SPAN_MAKE(8)
SPAN_MAKE(16)
SPAN_MAKE(32)
SPAN_MAKE(64)

static memseg_status span_make(size_t size, memseg_raw raw, size_t offset, size_t count,
                               uint8_t **out_ptr, size_t *out_count) {
  switch (size) {
  case 1:
    return span_make8(raw, offset, count, out_ptr, out_count);
  case 2:
    return span_make16(raw, offset, count, out_ptr, out_count);
  case 4:
    return span_make32(raw, offset, count, out_ptr, out_count);
  default:
    CHECK_EQ(size, 8);
    return span_make64(raw, offset, count, out_ptr, out_count);
  }
}

/* The range check of span creation, for values of `size` bytes, over `raw` of 41 bytes. */
static void check_span_ranges(size_t size, memseg_raw raw) {
  static const size_t offsets[] = {0, 1, 3, 8, 40, 41};
  memseg_raw null_raw = {NULL, 41};
  uint8_t *ptr;
  size_t count, k;
  for (k = 0; k < sizeof offsets / sizeof offsets[0]; k++) {
    size_t offset = offsets[k], fit = (raw.size - offset) / size;
    mt_context("span of %zu-byte values at offset %zu", size, offset);
    CHECK_OK(span_make(size, raw, offset, fit, &ptr, &count));
    CHECK(ptr == raw.ptr + offset);
    CHECK_EQ(count, fit);
    CHECK_OK(span_make(size, raw, offset, 0, &ptr, &count));
    CHECK_EQ(count, 0);
    CHECK_STATUS(span_make(size, raw, offset, fit + 1, &ptr, &count),
                 MEMSEG_STATUS_OUT_OF_BOUNDS);
    CHECK_STATUS(span_make(size, raw, offset, SIZE_MAX, &ptr, &count),
                 MEMSEG_STATUS_OUT_OF_BOUNDS);
    if (size > 1) {
      /* count * size wraps around to 0, or to `size` bytes: still refused. */
      CHECK_STATUS(span_make(size, raw, offset, SIZE_MAX / size + 1, &ptr, &count),
                   MEMSEG_STATUS_OUT_OF_BOUNDS);
      CHECK_STATUS(span_make(size, raw, offset, SIZE_MAX / size + 2, &ptr, &count),
                   MEMSEG_STATUS_OUT_OF_BOUNDS);
    }
  }
  mt_context("span of %zu-byte values past the end", size);
  CHECK_STATUS(span_make(size, raw, 42, 0, &ptr, &count), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_STATUS(span_make(size, raw, SIZE_MAX, 0, &ptr, &count), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_STATUS(span_make(size, raw, SIZE_MAX, 1, &ptr, &count), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_STATUS(span_make(size, null_raw, 0, 1, &ptr, &count), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(span_make(size, null_raw, 0, 0, &ptr, &count), MEMSEG_STATUS_NULL_ARGUMENT);
}

static const struct mt_accessor *accessor_named(const char *name) {
  size_t k;
  for (k = 0; k < accessor_count; k++) {
    if (strcmp(accessors[k].name, name) == 0) {
      return &accessors[k];
    }
  }
  CHECK(!"no accessor of that name");
  return NULL;
}

/* Span accessor `s` against the offset accessor of the same name, over a span of the
 * segment from `offset` (every value the span holds, then indexes past its end). */
static void compare_span_on(const struct span_accessor *s, memseg_segment segment,
                            size_t offset) {
  const struct mt_accessor *a = accessor_named(s->name);
  size_t size = mt_size(segment), count, index;
  uint8_t *shadow = malloc(size);
  uint8_t *ptr;
  memseg_raw raw;
  CHECK(shadow != NULL);
  CHECK_OK(memseg_raw_of(segment, &raw));
  CHECK_OK(span_make(a->size, raw, offset, (size - offset) / a->size, &ptr, &count));
  mt_pattern(segment, shadow, size, (unsigned)offset);
  for (index = 0; index < count; index++) {
    size_t at = offset + index * a->size;
    struct mt_out via_span, via_raw;
    uint8_t value[8] = {0x18, 0x29, 0x3A, 0x4B, 0x5C, 0x6D, 0x7E, 0x8F};
    if (a->class_ == MT_BOOL) {
      value[0] = (uint8_t)(index % 2);
    }
    mt_context("span %s over %zu bytes from %zu, index %zu", s->name, size, offset, index);
    mt_out_reset(&via_span);
    mt_out_reset(&via_raw);
    CHECK_OK(s->get(ptr, count, index, &via_span.value));
    CHECK_OK(a->raw_get(raw, at, &via_raw.value));
    CHECK_MEM(&via_span, &via_raw, sizeof via_span);
    CHECK(mt_out_guard_intact(&via_span, a->size));
    /* A span write stores what the offset write stores, and reads back. */
    CHECK_OK(s->put(ptr, count, index, value));
    mt_encode(a->order, value, a->size, shadow + at);
    CHECK_SEGMENT(segment, shadow);
    mt_out_reset(&via_span);
    CHECK_OK(s->get(ptr, count, index, &via_span.value));
    CHECK_MEM(via_span.value.bytes, value, a->size);
  }
  /* Past the end, and a NULL out value: refused, nothing read or written. */
  {
    static const size_t past[] = {0, 1, 2, SIZE_MAX / 2 + 1, SIZE_MAX};
    size_t k;
    for (k = 0; k < sizeof past / sizeof past[0]; k++) {
      struct mt_out out;
      uint8_t value[8] = {1, 1, 1, 1, 1, 1, 1, 1};
      index = past[k] < 3 ? count + past[k] : past[k];
      mt_context("span %s over %zu bytes from %zu, index %zu (past the end)", s->name, size,
                 offset, index);
      mt_out_reset(&out);
      CHECK_STATUS(s->get(ptr, count, index, &out.value), MEMSEG_STATUS_OUT_OF_BOUNDS);
      CHECK(mt_out_untouched(&out));
      CHECK_STATUS(s->put(ptr, count, index, value), MEMSEG_STATUS_OUT_OF_BOUNDS);
      CHECK_STATUS(s->get(ptr, count, index, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
    }
    if (count > 0) {
      CHECK_STATUS(s->get(ptr, count, 0, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
    }
    CHECK_SEGMENT(segment, shadow);
  }
  free(shadow);
}

static void test_spans_check_their_range_once(void) {
  uint8_t bytes[41];
  memseg_raw raw = {bytes, sizeof bytes};
  check_span_ranges(1, raw);
  check_span_ranges(2, raw);
  check_span_ranges(4, raw);
  check_span_ranges(8, raw);
}

static void test_span_accessors_agree_with_offset_accessors(void) {
  static const size_t sizes[] = {1, 7, 8, 9, 41};
  size_t s, k, offset;
  CHECK_EQ(sizeof span_accessors / sizeof span_accessors[0], MT_TYPED_COUNT);
  for (s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    memseg_segment segment = mt_heap(sizes[s]);
    for (k = 0; k < MT_TYPED_COUNT; k++) {
      for (offset = 0; offset <= sizes[s] && offset < 4; offset++) {
        compare_span_on(&span_accessors[k], segment, offset);
      }
      compare_span_on(&span_accessors[k], segment, sizes[s]); /* an empty span */
    }
    mt_free(segment);
  }
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
  RUN(test_spans_check_their_range_once);
  RUN(test_span_accessors_agree_with_offset_accessors);
  CHECK_EQ(mt_live_count(), live);
  printf("test_inline: all passed\n");
  return 0;
}
