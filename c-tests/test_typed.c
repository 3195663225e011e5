/*
 * Typed get/put through the C ABI: every type (u8 i8 bool u16 i16 char u32 i32 u64 i64 f32
 * f64) in every byte order (native, _le, _be), on heap, off-heap and foreign segments of
 * 1 byte, odd sizes and 32 KiB:
 * - at every valid offset (all of them in small segments, the first and last 64 and a
 *   stride in between in large ones) a put stores exactly the expected bytes and nothing
 *   else, and a get reads the value back and writes exactly sizeof(value) bytes;
 * - at the first invalid offset (size - sizeof + 1), at size, SIZE_MAX, SIZE_MAX - 1 and
 *   SIZE_MAX - sizeof + 1 (and at 0 when the value does not fit at all) every get and put is
 *   MEMSEG_STATUS_OUT_OF_BOUNDS, the out value stays untouched and the segment unchanged;
 * - values written in one byte order read back byte-reversed in the other;
 * - fixed values have their documented byte layout (big endian is Java's DataOutput order);
 * - floats keep NaN payloads (quiet and signalling) and negative zero;
 * - bool writes 1 or 0 and reads any non-zero byte as true.
 */
#undef NDEBUG
#include <assert.h>
#include <math.h>

#include "memseg_test.h"

static const struct mt_accessor *accessors;
static size_t accessor_count;

/* A value whose bytes are all different, so that a reversal shows. */
static void make_value(const struct mt_accessor *a, size_t offset, uint8_t *value) {
  size_t i;
  if (a->class_ == MT_BOOL) {
    value[0] = (uint8_t)(offset & 1);
    return;
  }
  for (i = 0; i < a->size && i < 8; i++) {
    value[i] = (uint8_t)(0x11u * (i + 1) + offset * 3u);
  }
}

/* The offsets to try with a value of `n` bytes in a segment of `size` bytes. */
static bool offset_is_sampled(size_t size, size_t n, size_t offset) {
  size_t last = size - n;
  return size <= 256 || offset < 64 || last - offset < 64 || offset % 251 == 0;
}

/* Every offset where a value of `n` bytes does not fit in `size` bytes. */
static size_t invalid_offsets(size_t size, size_t n, size_t *out) {
  size_t count = 0;
  out[count++] = size - n + 1; /* first invalid; wraps to a huge value when n > size + 1 */
  out[count++] = size;
  out[count++] = SIZE_MAX;
  out[count++] = SIZE_MAX - 1;
  out[count++] = SIZE_MAX - n + 1;
  if (n > size) {
    out[count++] = 0;
    out[count++] = size - 1;
  }
  return count;
}

/* Runs one accessor over every valid and invalid offset of `segment`. */
static void check_accessor_on(const struct mt_accessor *a, memseg_segment segment,
                              const char *kind) {
  size_t size = mt_size(segment);
  size_t n = a->size;
  uint8_t *shadow = malloc(size);
  uint8_t value[8], stored[8], expected[8];
  size_t offsets[8];
  size_t count, i, offset;
  struct mt_out out;

  CHECK(shadow != NULL);
  mt_pattern(segment, shadow, size, (unsigned)n);

  if (size >= n) {
    for (offset = 0; offset <= size - n; offset++) {
      if (!offset_is_sampled(size, n, offset)) {
        continue;
      }
      mt_context("%s segment of %zu bytes: %s at offset %zu", kind, size, a->name, offset);
      make_value(a, offset, value);
      CHECK_OK(a->put(segment, offset, value));
      mt_encode(a->order, value, n, expected);
      memcpy(shadow + offset, expected, n);
      CHECK_OK(memseg_segment_get_bytes(segment, offset, stored, n));
      CHECK_MEM(stored, expected, n);

      mt_out_reset(&out);
      CHECK_OK(a->get(segment, offset, &out.value));
      CHECK_MEM(out.value.bytes, value, n);
      CHECK(mt_out_guard_intact(&out, n));

      if (size <= 256) {
        CHECK_SEGMENT(segment, shadow);
      }
    }
  }

  count = invalid_offsets(size, n, offsets);
  for (i = 0; i < count; i++) {
    offset = offsets[i];
    mt_context("%s segment of %zu bytes: %s at invalid offset %zu", kind, size, a->name,
               offset);
    mt_out_reset(&out);
    CHECK_STATUS(a->get(segment, offset, &out.value), MEMSEG_STATUS_OUT_OF_BOUNDS);
    CHECK(mt_out_untouched(&out));
    make_value(a, 1, value);
    CHECK_STATUS(a->put(segment, offset, value), MEMSEG_STATUS_OUT_OF_BOUNDS);
    CHECK_SEGMENT(segment, shadow);
  }
  CHECK_SEGMENT(segment, shadow);
  free(shadow);
}

static const size_t SIZES[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 15, 16, 17, 31, 32768};
#define SIZE_COUNT (sizeof SIZES / sizeof SIZES[0])

static void test_accessor_table_is_complete(void) {
  size_t i, j, per_type;
  CHECK_EQ(accessor_count, MT_TYPED_COUNT);
  CHECK_EQ(accessor_count, 12 * 3);
  for (i = 0; i < accessor_count; i++) {
    per_type = 0;
    for (j = 0; j < accessor_count; j++) {
      if (strcmp(accessors[i].type, accessors[j].type) == 0) {
        per_type++;
        CHECK(i == j || accessors[i].order != accessors[j].order);
        CHECK(i == j || strcmp(accessors[i].name, accessors[j].name) != 0);
      }
    }
    CHECK_EQ(per_type, 3);
  }
}

static void test_heap_every_size(void) {
  size_t i, s;
  for (s = 0; s < SIZE_COUNT; s++) {
    memseg_segment segment = mt_heap(SIZES[s]);
    for (i = 0; i < accessor_count; i++) {
      check_accessor_on(&accessors[i], segment, "heap");
    }
    mt_free(segment);
  }
}

static void test_offheap_and_foreign(void) {
  static const size_t sizes[] = {1, 7, 32768};
  size_t i, s;
  for (s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    uint8_t *host = malloc(sizes[s]);
    memseg_segment offheap = mt_offheap(sizes[s], 0);
    memseg_segment foreign;
    CHECK(host != NULL);
    foreign = mt_wrap(host, sizes[s]);
    for (i = 0; i < accessor_count; i++) {
      check_accessor_on(&accessors[i], offheap, "off-heap");
      check_accessor_on(&accessors[i], foreign, "foreign");
    }
    mt_free(offheap);
    mt_free(foreign);
    free(host);
  }
}

/* Written in one order and read in each: reversed exactly when the orders differ. */
static void test_cross_order(void) {
  memseg_segment segment = mt_heap(19);
  size_t w, r, i;
  uint8_t value[8], reversed[8];
  struct mt_out out;
  for (w = 0; w < accessor_count; w++) {
    const struct mt_accessor *writer = &accessors[w];
    if (writer->class_ == MT_BOOL) {
      continue;
    }
    for (r = 0; r < accessor_count; r++) {
      const struct mt_accessor *reader = &accessors[r];
      if (strcmp(reader->type, writer->type) != 0) {
        continue;
      }
      mt_context("put %s, get %s", writer->name, reader->name);
      make_value(writer, 5, value);
      for (i = 0; i < writer->size; i++) {
        reversed[i] = value[writer->size - 1 - i];
      }
      CHECK_OK(writer->put(segment, 3, value));
      mt_out_reset(&out);
      CHECK_OK(reader->get(segment, 3, &out.value));
      if (writer->size > 1 && mt_orders_differ(writer->order, reader->order)) {
        CHECK_MEM(out.value.bytes, reversed, writer->size);
      } else {
        CHECK_MEM(out.value.bytes, value, writer->size);
      }
    }
  }
  /* The case named in the brief, spelled out: big endian written, little endian read. */
  {
    uint32_t got32 = 0;
    uint64_t got64 = 0;
    uint16_t got16 = 0;
    CHECK_OK(memseg_segment_put_u32_be(segment, 1, UINT32_C(0x11223344)));
    CHECK_OK(memseg_segment_get_u32_le(segment, 1, &got32));
    CHECK_EQ(got32, UINT32_C(0x44332211));
    CHECK_OK(memseg_segment_put_u64_be(segment, 7, UINT64_C(0x0102030405060708)));
    CHECK_OK(memseg_segment_get_u64_le(segment, 7, &got64));
    CHECK_EQ(got64, UINT64_C(0x0807060504030201));
    CHECK_OK(memseg_segment_put_char_le(segment, 0, (uint16_t)0x20AC));
    CHECK_OK(memseg_segment_get_char_be(segment, 0, &got16));
    CHECK_EQ(got16, 0xAC20);
  }
  mt_free(segment);
}

/* Fixed values and their exact bytes, independent of the machine's byte order. */
static void test_known_layouts(void) {
  memseg_segment segment = mt_heap(16);
  uint8_t bytes[16];
  {
    static const uint8_t be[4] = {0x01, 0x02, 0x03, 0x04};
    static const uint8_t le[4] = {0x04, 0x03, 0x02, 0x01};
    uint32_t native = UINT32_C(0x01020304);
    CHECK_OK(memseg_segment_put_u32_be(segment, 1, UINT32_C(0x01020304)));
    CHECK_OK(memseg_segment_get_bytes(segment, 1, bytes, 4));
    CHECK_MEM(bytes, be, 4);
    CHECK_OK(memseg_segment_put_u32_le(segment, 1, UINT32_C(0x01020304)));
    CHECK_OK(memseg_segment_get_bytes(segment, 1, bytes, 4));
    CHECK_MEM(bytes, le, 4);
    CHECK_OK(memseg_segment_put_u32(segment, 1, UINT32_C(0x01020304)));
    CHECK_OK(memseg_segment_get_bytes(segment, 1, bytes, 4));
    CHECK_MEM(bytes, &native, 4);
  }
  {
    static const uint8_t be[2] = {0xFF, 0xFE};
    static const uint8_t le[2] = {0xFE, 0xFF};
    int16_t got = 0;
    CHECK_OK(memseg_segment_put_i16_be(segment, 3, (int16_t)-2));
    CHECK_OK(memseg_segment_get_bytes(segment, 3, bytes, 2));
    CHECK_MEM(bytes, be, 2);
    CHECK_OK(memseg_segment_get_i16_be(segment, 3, &got));
    CHECK_EQ(got == -2, 1);
    CHECK_OK(memseg_segment_put_i16_le(segment, 3, (int16_t)-2));
    CHECK_OK(memseg_segment_get_bytes(segment, 3, bytes, 2));
    CHECK_MEM(bytes, le, 2);
  }
  {
    /* 1.0 as Java's DataOutput.writeDouble writes it. */
    static const uint8_t be[8] = {0x3F, 0xF0, 0, 0, 0, 0, 0, 0};
    static const uint8_t le[8] = {0, 0, 0, 0, 0, 0, 0xF0, 0x3F};
    double got = 0;
    CHECK_OK(memseg_segment_put_f64_be(segment, 5, 1.0));
    CHECK_OK(memseg_segment_get_bytes(segment, 5, bytes, 8));
    CHECK_MEM(bytes, be, 8);
    CHECK_OK(memseg_segment_get_f64_be(segment, 5, &got));
    CHECK(got == 1.0);
    CHECK_OK(memseg_segment_put_f64_le(segment, 5, 1.0));
    CHECK_OK(memseg_segment_get_bytes(segment, 5, bytes, 8));
    CHECK_MEM(bytes, le, 8);
  }
  {
    static const uint8_t be[4] = {0xC0, 0x49, 0x0F, 0xDB}; /* -3.14159274f */
    float got = 0;
    CHECK_OK(memseg_segment_put_bytes(segment, 2, be, 4));
    CHECK_OK(memseg_segment_get_f32_be(segment, 2, &got));
    CHECK(got == -3.14159274f);
  }
  {
    static const uint8_t min_be[8] = {0x80, 0, 0, 0, 0, 0, 0, 0};
    int64_t got = 0;
    int8_t got8 = 0;
    CHECK_OK(memseg_segment_put_bytes(segment, 8, min_be, 8));
    CHECK_OK(memseg_segment_get_i64_be(segment, 8, &got));
    CHECK(got == INT64_MIN);
    CHECK_OK(memseg_segment_get_i64_le(segment, 8, &got));
    CHECK(got == 0x80);
    CHECK_OK(memseg_segment_get_i8(segment, 8, &got8));
    CHECK(got8 == -128);
    CHECK_OK(memseg_segment_put_i8_be(segment, 15, (int8_t)-1));
    CHECK_OK(memseg_segment_get_bytes(segment, 15, bytes, 1));
    CHECK_EQ(bytes[0], 0xFF);
  }
  {
    static const uint8_t euro_be[2] = {0x20, 0xAC};
    uint16_t got = 0;
    CHECK_OK(memseg_segment_put_char_be(segment, 0, (uint16_t)0x20AC));
    CHECK_OK(memseg_segment_get_bytes(segment, 0, bytes, 2));
    CHECK_MEM(bytes, euro_be, 2);
    CHECK_OK(memseg_segment_get_char_be(segment, 0, &got));
    CHECK_EQ(got, 0x20AC);
  }
  mt_free(segment);
}

static uint32_t bits_of_f32(float f) {
  uint32_t bits;
  memcpy(&bits, &f, 4);
  return bits;
}

static float f32_of_bits(uint32_t bits) {
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static uint64_t bits_of_f64(double d) {
  uint64_t bits;
  memcpy(&bits, &d, 8);
  return bits;
}

static double f64_of_bits(uint64_t bits) {
  double d;
  memcpy(&d, &bits, 8);
  return d;
}

static void test_float_bits_survive(void) {
  static const uint32_t f32_bits[] = {
      UINT32_C(0x80000000), /* -0.0 */
      UINT32_C(0x00000000), /* +0.0 */
      UINT32_C(0x7FC00000), /* the quiet NaN */
      UINT32_C(0x7FC12345), /* a quiet NaN with a payload */
      UINT32_C(0xFFC00001), /* a negative quiet NaN with a payload */
      UINT32_C(0x7FA00001), /* a signalling NaN */
      UINT32_C(0x7F800000), /* +inf */
      UINT32_C(0xFF800000), /* -inf */
      UINT32_C(0x00000001), /* the smallest subnormal */
  };
  static const uint64_t f64_bits[] = {
      UINT64_C(0x8000000000000000), UINT64_C(0x0000000000000000),
      UINT64_C(0x7FF8000000000000), UINT64_C(0x7FF8000000012345),
      UINT64_C(0xFFF8DEADBEEF0001), UINT64_C(0x7FF4000000000001),
      UINT64_C(0x7FF0000000000000), UINT64_C(0xFFF0000000000000),
      UINT64_C(0x0000000000000001),
  };
  memseg_segment segment = mt_heap(23);
  size_t i, k, j;
  uint8_t bytes[8], expected[8];
  struct mt_out out;

  for (k = 0; k < accessor_count; k++) {
    const struct mt_accessor *a = &accessors[k];
    if (a->class_ != MT_FLOAT) {
      continue;
    }
    if (a->size == 4) {
      for (i = 0; i < sizeof f32_bits / sizeof f32_bits[0]; i++) {
        float value = f32_of_bits(f32_bits[i]);
        mt_context("%s with bits 0x%08" PRIx32, a->name, f32_bits[i]);
        for (j = 0; j < 4; j++) {
          /* Big-endian bytes of the bits; reversed for little endian. */
          uint8_t b = (uint8_t)(f32_bits[i] >> (24 - 8 * j));
          bool big = a->order == MT_BIG || (a->order == MT_NATIVE && !mt_host_is_little_endian());
          expected[big ? j : 3 - j] = b;
        }
        CHECK_OK(a->put(segment, 11, &value));
        CHECK_OK(memseg_segment_get_bytes(segment, 11, bytes, 4));
        CHECK_MEM(bytes, expected, 4);
        mt_out_reset(&out);
        CHECK_OK(a->get(segment, 11, &out.value));
        {
          uint32_t got;
          memcpy(&got, out.value.bytes, 4);
          CHECK_EQ(got, f32_bits[i]);
        }
        CHECK(mt_out_guard_intact(&out, 4));
      }
    } else {
      for (i = 0; i < sizeof f64_bits / sizeof f64_bits[0]; i++) {
        double value = f64_of_bits(f64_bits[i]);
        mt_context("%s with bits 0x%016" PRIx64, a->name, f64_bits[i]);
        for (j = 0; j < 8; j++) {
          uint8_t b = (uint8_t)(f64_bits[i] >> (56 - 8 * j));
          bool big = a->order == MT_BIG || (a->order == MT_NATIVE && !mt_host_is_little_endian());
          expected[big ? j : 7 - j] = b;
        }
        CHECK_OK(a->put(segment, 13, &value));
        CHECK_OK(memseg_segment_get_bytes(segment, 13, bytes, 8));
        CHECK_MEM(bytes, expected, 8);
        mt_out_reset(&out);
        CHECK_OK(a->get(segment, 13, &out.value));
        CHECK_EQ(out.value.u64, f64_bits[i]);
      }
    }
  }

  /* The same through the typed calls themselves, as C values. */
  {
    float f = 1.0f;
    double d = 1.0;
    CHECK_OK(memseg_segment_put_f32_be(segment, 0, -0.0f));
    CHECK_OK(memseg_segment_get_f32_be(segment, 0, &f));
    CHECK(f == 0.0f && signbit(f));
    CHECK_OK(memseg_segment_put_f64_le(segment, 1, -0.0));
    CHECK_OK(memseg_segment_get_f64_le(segment, 1, &d));
    CHECK(d == 0.0 && signbit(d));
    CHECK_OK(memseg_segment_put_f64(segment, 9, f64_of_bits(UINT64_C(0x7FF800000000BEEF))));
    CHECK_OK(memseg_segment_get_f64(segment, 9, &d));
    CHECK(isnan(d));
    CHECK_EQ(bits_of_f64(d), UINT64_C(0x7FF800000000BEEF));
    CHECK_OK(memseg_segment_put_f32_le(segment, 17, f32_of_bits(UINT32_C(0xFFC0BEEF))));
    CHECK_OK(memseg_segment_get_f32_le(segment, 17, &f));
    CHECK(isnan(f));
    CHECK_EQ(bits_of_f32(f), UINT32_C(0xFFC0BEEF));
  }
  mt_free(segment);
}

static void test_bool(void) {
  static const uint8_t non_zero[] = {0x01, 0x02, 0x7F, 0x80, 0xFE, 0xFF};
  memseg_segment segment = mt_heap(3);
  size_t k, i;
  uint8_t byte;
  struct mt_out out;

  for (k = 0; k < accessor_count; k++) {
    const struct mt_accessor *a = &accessors[k];
    bool t = true, f = false;
    if (a->class_ != MT_BOOL) {
      continue;
    }
    mt_context("%s", a->name);
    /* Writes 1 and 0. */
    CHECK_OK(memseg_segment_put_u8(segment, 2, 0x5A));
    CHECK_OK(a->put(segment, 2, &t));
    CHECK_OK(memseg_segment_get_u8(segment, 2, &byte));
    CHECK_EQ(byte, 1);
    CHECK_OK(a->put(segment, 2, &f));
    CHECK_OK(memseg_segment_get_u8(segment, 2, &byte));
    CHECK_EQ(byte, 0);
    mt_out_reset(&out);
    CHECK_OK(a->get(segment, 2, &out.value));
    CHECK_EQ(out.value.bytes[0], 0); /* false is stored as the byte 0 */
    CHECK(mt_out_guard_intact(&out, 1));

    /* Any non-zero byte reads as true, delivered as a proper bool (the byte 1). */
    for (i = 0; i < sizeof non_zero; i++) {
      mt_context("%s reading the byte 0x%02x", a->name, non_zero[i]);
      CHECK_OK(memseg_segment_put_u8(segment, 1, non_zero[i]));
      mt_out_reset(&out);
      CHECK_OK(a->get(segment, 1, &out.value));
      CHECK_EQ(out.value.bytes[0], 1);
      CHECK(mt_out_guard_intact(&out, 1));
    }
  }
  /* Through the typed calls as C values. */
  {
    bool value = false;
    CHECK_OK(memseg_segment_put_u8(segment, 0, 0x80));
    CHECK_OK(memseg_segment_get_bool(segment, 0, &value));
    CHECK(value == true);
    CHECK_OK(memseg_segment_get_bool_be(segment, 0, &value));
    CHECK(value == true);
    CHECK_OK(memseg_segment_put_bool_le(segment, 0, false));
    CHECK_OK(memseg_segment_get_bool_le(segment, 0, &value));
    CHECK(value == false);
    CHECK_OK(memseg_segment_put_bool_be(segment, 0, true));
    CHECK_OK(memseg_segment_get_u8(segment, 0, &byte));
    CHECK_EQ(byte, 1);
  }
  mt_free(segment);
}

/* Puts do not disturb neighbours: a whole segment written value by value, then read. */
static void test_adjacent_values(void) {
  memseg_segment segment = mt_heap(8 * 64 + 3);
  size_t i;
  uint64_t got = 0;
  uint16_t got16 = 0;
  for (i = 0; i < 64; i++) {
    CHECK_OK(memseg_segment_put_u64_be(segment, 3 + 8 * i, UINT64_C(0x0101010101010101) * i));
  }
  for (i = 0; i < 64; i++) {
    CHECK_OK(memseg_segment_get_u64_be(segment, 3 + 8 * i, &got));
    CHECK_EQ(got, UINT64_C(0x0101010101010101) * i);
  }
  CHECK_OK(memseg_segment_get_u16_le(segment, 0, &got16));
  CHECK_EQ(got16, 0);
  mt_free(segment);
}

int main(void) {
  size_t live = mt_live_count();
  accessor_count = mt_accessors(&accessors);
  RUN(test_accessor_table_is_complete);
  RUN(test_known_layouts);
  RUN(test_cross_order);
  RUN(test_float_bits_survive);
  RUN(test_bool);
  RUN(test_adjacent_values);
  RUN(test_heap_every_size);
  RUN(test_offheap_and_foreign);
  CHECK_EQ(mt_live_count(), live);
  printf("test_typed: all passed\n");
  return 0;
}
