/*
 * Paged views, the serialization buffer and reader, and spanning records through the C ABI:
 * - every type in both byte orders written through an output view over segments of 5, 7 and
 *   64 bytes (so values straddle segment boundaries), the exact big-endian bytes checked in
 *   the segments, and read back through an input view over the same handles;
 * - strings (NUL, non-ASCII, supplementary characters, unpaired surrogates, the empty string),
 *   bytes, skip; positions recorded while writing are sought (by segment and offset, and by
 *   absolute offset) and read again;
 * - out of segments writes nothing and keeps what was written; reading past the end is
 *   END_OF_DATA and consumes nothing;
 * - bad inputs: a NULL or empty source, zero, duplicate, freed and wrong-kind handles, a view
 *   used after its segments were freed (STALE_HANDLE, not a crash), seeks out of range, a fill
 *   beyond the last segment, a string too long or not UTF-8, buffers too small, double frees;
 * - the serialization buffer (grow, lend, prune) and its reader;
 * - records split over small segments and reassembled, NEED_MORE_DATA between buffers, and a
 *   length prefix above the bound (CORRUPTED);
 * - the windows of the fast path: a hot loop writing and reading with memseg_inline.h over
 *   the window, the view's own calls for values that straddle; the same with spans of the
 *   window (memseg_raw_span64, checked once, then access by index), a span longer than the
 *   window refused.
 */
#undef NDEBUG
#include <assert.h>

#include "memseg_inline.h"
#include "memseg_test.h"

static memseg_output_view out_view(const memseg_segment *segments, size_t count) {
  memseg_output_view view = {0};
  CHECK_OK(memseg_output_view_new(segments, count, &view));
  CHECK(view.bits != 0);
  return view;
}

static memseg_input_view in_view(const memseg_segment *segments, size_t count, size_t fill) {
  memseg_input_view view = {0};
  CHECK_OK(memseg_input_view_new(segments, count, fill, &view));
  CHECK(view.bits != 0);
  return view;
}

static void check_position(memseg_output_view view, size_t segment, size_t offset) {
  size_t s = 99, o = 99;
  CHECK_OK(memseg_output_view_position(view, &s, &o));
  CHECK_EQ(s, segment);
  CHECK_EQ(o, offset);
}

static void check_offset(memseg_input_view view, size_t offset, size_t available) {
  size_t o = 99, a = 99;
  CHECK_OK(memseg_input_view_offset(view, &o, &a));
  CHECK_EQ(o, offset);
  CHECK_EQ(a, available);
}

/* The bytes of a list of segments, concatenated. */
static size_t gather(const memseg_segment *segments, size_t count, uint8_t *out) {
  size_t i, n = 0;
  for (i = 0; i < count; i++) {
    size_t size = mt_size(segments[i]);
    CHECK_OK(memseg_segment_get_bytes(segments[i], 0, out + n, size));
    n += size;
  }
  return n;
}

static void test_every_type_round_trips_across_segments(void) {
  memseg_segment segs[3] = {mt_heap(5), mt_heap(7), mt_heap(64)};
  memseg_output_view w = out_view(segs, 3);
  memseg_input_view r;
  uint8_t all[76];
  size_t count = 0;
  memseg_segment listed[3];
  bool b = false;
  int8_t i8 = 0;
  uint8_t u8 = 0;
  uint16_t u16 = 0;
  int16_t i16 = 0;
  uint32_t u32 = 0;
  int32_t i32 = 0;
  uint64_t u64 = 0;
  int64_t i64 = 0;
  float f32 = 0;
  double f64 = 0;
  const double neg_zero = -0.0;
  uint64_t bits;

  CHECK_OK(memseg_output_view_write_u32(w, 0x01020304u)); /* 4 bytes: segment 0 */
  CHECK_OK(memseg_output_view_write_u64(w, UINT64_C(0x1112131415161718))); /* straddles 0|1 */
  check_position(w, 1, 7);
  CHECK_OK(memseg_output_view_write_bool(w, true)); /* starts segment 2 */
  CHECK_OK(memseg_output_view_write_i8(w, -2));
  CHECK_OK(memseg_output_view_write_u8_le(w, 0xAB));
  CHECK_OK(memseg_output_view_write_i16(w, -3));
  CHECK_OK(memseg_output_view_write_char(w, 0xD83D));
  CHECK_OK(memseg_output_view_write_u16_le(w, 0x1234));
  CHECK_OK(memseg_output_view_write_i32_le(w, -5));
  CHECK_OK(memseg_output_view_write_i64(w, INT64_MIN));
  CHECK_OK(memseg_output_view_write_f32(w, 1.5f));
  CHECK_OK(memseg_output_view_write_f64(w, neg_zero));
  CHECK_OK(memseg_output_view_write_f64_le(w, 2.0));
  CHECK_OK(memseg_output_view_write_u64_le(w, UINT64_C(0x0102030405060708)));
  check_position(w, 2, 49);

  CHECK_OK(memseg_output_view_segments(w, NULL, 0, &count));
  CHECK_EQ(count, 3);
  CHECK_STATUS(memseg_output_view_segments(w, listed, 2, &count), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_OK(memseg_output_view_segments(w, listed, 3, &count));
  CHECK_EQ(listed[0].bits, segs[0].bits);
  CHECK_EQ(listed[2].bits, segs[2].bits);

  /* The exact bytes: big endian unless _le, split where the segments end. */
  gather(segs, 3, all);
  {
    const uint8_t head[] = {1, 2, 3, 4, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
                            1, 0xFE, 0xAB, 0xFF, 0xFD, 0xD8, 0x3D, 0x34, 0x12, 0xFB, 0xFF,
                            0xFF, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x3F, 0xC0, 0, 0, 0x80};
    CHECK_MEM(all, head, sizeof head);
  }

  r = in_view(segs, 3, 49);
  CHECK_OK(memseg_input_view_read_u32(r, &u32));
  CHECK_EQ(u32, 0x01020304u);
  CHECK_OK(memseg_input_view_read_u64(r, &u64));
  CHECK_EQ(u64, UINT64_C(0x1112131415161718));
  CHECK_OK(memseg_input_view_read_bool(r, &b));
  CHECK(b);
  CHECK_OK(memseg_input_view_read_i8(r, &i8));
  CHECK_EQ(i8, -2);
  CHECK_OK(memseg_input_view_read_u8_le(r, &u8));
  CHECK_EQ(u8, 0xAB);
  CHECK_OK(memseg_input_view_read_i16(r, &i16));
  CHECK_EQ(i16, -3);
  CHECK_OK(memseg_input_view_read_char(r, &u16));
  CHECK_EQ(u16, 0xD83D);
  CHECK_OK(memseg_input_view_read_u16_le(r, &u16));
  CHECK_EQ(u16, 0x1234);
  CHECK_OK(memseg_input_view_read_i32_le(r, &i32));
  CHECK_EQ(i32, -5);
  CHECK_OK(memseg_input_view_read_i64(r, &i64));
  CHECK(i64 == INT64_MIN);
  CHECK_OK(memseg_input_view_read_f32(r, &f32));
  CHECK(f32 == 1.5f);
  CHECK_OK(memseg_input_view_read_f64(r, &f64));
  memcpy(&bits, &f64, sizeof bits);
  CHECK_EQ(bits, UINT64_C(0x8000000000000000)); /* negative zero kept */
  CHECK_OK(memseg_input_view_read_f64_le(r, &f64));
  CHECK(f64 == 2.0);
  CHECK_OK(memseg_input_view_read_u64_le(r, &u64));
  CHECK_EQ(u64, UINT64_C(0x0102030405060708));
  check_offset(r, 61, 0);

  /* Past the end: END_OF_DATA, nothing consumed, the out value untouched. */
  u32 = 7;
  CHECK_STATUS(memseg_input_view_read_u32(r, &u32), MEMSEG_STATUS_END_OF_DATA);
  CHECK_EQ(u32, 7);
  CHECK_OK(memseg_input_view_seek(r, 59));
  CHECK_STATUS(memseg_input_view_read_u32(r, &u32), MEMSEG_STATUS_END_OF_DATA);
  check_offset(r, 59, 2);
  CHECK_OK(memseg_input_view_read_u16(r, &u16));
  CHECK_EQ(u16, 0x0201); /* the last two bytes of the little-endian u64 */

  /* Seeks: by segment and offset, and absolute. */
  CHECK_OK(memseg_input_view_seek_to(r, 0, 4));
  CHECK_OK(memseg_input_view_read_u64(r, &u64));
  CHECK_EQ(u64, UINT64_C(0x1112131415161718));
  {
    size_t s = 0, o = 0;
    CHECK_OK(memseg_input_view_position(r, &s, &o));
    CHECK_EQ(s, 1);
    CHECK_EQ(o, 7);
  }
  CHECK_STATUS(memseg_input_view_seek(r, 62), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_STATUS(memseg_input_view_seek(r, SIZE_MAX), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_STATUS(memseg_input_view_seek_to(r, 3, 0), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_input_view_seek_to(r, 0, 6), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_STATUS(memseg_input_view_seek_to(r, 2, 50), MEMSEG_STATUS_OUT_OF_BOUNDS);
  check_offset(r, 12, 49); /* failed seeks moved nothing */
  CHECK_OK(memseg_input_view_skip(r, 49));
  CHECK_STATUS(memseg_input_view_skip(r, 1), MEMSEG_STATUS_END_OF_DATA);

  CHECK_OK(memseg_input_view_free(r));
  CHECK_STATUS(memseg_input_view_free(r), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_output_view_free(w));
  CHECK_STATUS(memseg_output_view_free(w), MEMSEG_STATUS_STALE_HANDLE);
  mt_free(segs[0]);
  mt_free(segs[1]);
  mt_free(segs[2]);
}

static void test_strings_bytes_and_skip(void) {
  memseg_segment segs[4] = {mt_heap(3), mt_heap(3), mt_heap(5), mt_heap(200)};
  memseg_output_view w = out_view(segs, 4);
  memseg_input_view r;
  const char text[] = "a\0b \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"; /* a NUL b é € 😀 */
  const size_t text_len = sizeof text - 1;
  const uint16_t lone[] = {0xD800, 0x41};
  char buf[64];
  uint16_t units[8];
  uint8_t raw[4];
  size_t len = 0, s = 0, o = 0, total = 0;
  size_t mark_segment, mark_offset;

  CHECK_OK(memseg_output_view_write_utf(w, "", 0));
  CHECK_OK(memseg_output_view_write_utf(w, NULL, 0));
  CHECK_OK(memseg_output_view_write_utf(w, text, text_len));
  CHECK_OK(memseg_output_view_position(w, &mark_segment, &mark_offset));
  CHECK_OK(memseg_output_view_write_utf16(w, lone, 2));
  CHECK_OK(memseg_output_view_skip(w, 3));
  CHECK_OK(memseg_output_view_write_bytes(w, (const uint8_t *)"\x01\x02\x03\x04", 4));
  CHECK_OK(memseg_output_view_write_bytes(w, NULL, 0));
  CHECK_STATUS(memseg_output_view_write_bytes(w, NULL, 1), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_output_view_write_utf(w, "\xC3", 1), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_OK(memseg_output_view_bytes_written(w, &total));
  /* 2 + 2 + (2 + 1+2+1+1+2+1+3+1+6) + (2 + 3 + 1) + 3 + 4 */
  CHECK_EQ(total, 4 + 20 + 6 + 3 + 4);
  CHECK_OK(memseg_output_view_position(w, &s, &o));
  CHECK_EQ(s, 3);

  {
    uint8_t all[211];
    const uint8_t encoded[] = {0, 18, 'a', 0xC0, 0x80, 'b', ' ', 0xC3, 0xA9, ' ', 0xE2, 0x82,
                               0xAC, ' ', 0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80};
    gather(segs, 4, all);
    CHECK_MEM(all + 4, encoded, sizeof encoded); /* modified UTF-8, as Java writes it */
  }

  r = in_view(segs, 4, o);
  CHECK_OK(memseg_input_view_read_utf(r, buf, sizeof buf, &len));
  CHECK_EQ(len, 0);
  CHECK_OK(memseg_input_view_read_utf(r, NULL, 0, &len));
  CHECK_EQ(len, 0);
  /* A buffer too small: OUT_OF_BOUNDS, nothing consumed. */
  CHECK_STATUS(memseg_input_view_read_utf(r, buf, text_len - 1, &len), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_OK(memseg_input_view_read_utf(r, buf, sizeof buf, &len));
  CHECK_EQ(len, text_len);
  CHECK_MEM(buf, text, text_len);
  /* An unpaired surrogate cannot be UTF-8: INVALID_ARGUMENT; as UTF-16 it reads. */
  CHECK_STATUS(memseg_input_view_read_utf(r, buf, sizeof buf, &len), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_input_view_read_utf16(r, units, 1, &len), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_OK(memseg_input_view_read_utf16(r, units, 8, &len));
  CHECK_EQ(len, 2);
  CHECK_EQ(units[0], 0xD800);
  CHECK_EQ(units[1], 0x41);
  CHECK_OK(memseg_input_view_skip(r, 3));
  CHECK_OK(memseg_input_view_read_bytes(r, raw, 4));
  CHECK_MEM(raw, "\x01\x02\x03\x04", 4);
  CHECK_STATUS(memseg_input_view_read_bytes(r, raw, 1), MEMSEG_STATUS_END_OF_DATA);
  CHECK_STATUS(memseg_input_view_read_bytes(r, NULL, 1), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_OK(memseg_input_view_read_bytes(r, NULL, 0));

  /* Back to a recorded position. */
  CHECK_OK(memseg_input_view_seek_to(r, mark_segment, mark_offset));
  CHECK_OK(memseg_input_view_read_utf16(r, units, 8, &len));
  CHECK_EQ(len, 2);
  CHECK_OK(memseg_input_view_seek(r, 4));
  CHECK_OK(memseg_input_view_read_utf(r, buf, sizeof buf, &len));
  CHECK_EQ(len, text_len);

  /* A string of more than 65535 encoded bytes: INVALID_ARGUMENT, nothing written. */
  {
    size_t n = 70000, before = 0, after = 0;
    char *big = (char *)malloc(n);
    CHECK(big != NULL);
    memset(big, 'x', n);
    CHECK_OK(memseg_output_view_bytes_written(w, &before));
    CHECK_STATUS(memseg_output_view_write_utf(w, big, n), MEMSEG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(memseg_output_view_write_utf(w, big, 65535), MEMSEG_STATUS_OUT_OF_SEGMENTS);
    CHECK_OK(memseg_output_view_bytes_written(w, &after));
    CHECK_EQ(after, before);
    free(big);
  }

  CHECK_OK(memseg_input_view_free(r));
  CHECK_OK(memseg_output_view_free(w));
  mt_free(segs[0]);
  mt_free(segs[1]);
  mt_free(segs[2]);
  mt_free(segs[3]);
}

static void test_out_of_segments_keeps_what_was_written(void) {
  memseg_segment segs[2] = {mt_heap(4), mt_heap(4)};
  memseg_output_view w = out_view(segs, 2);
  memseg_input_view r;
  uint32_t u32 = 0;
  uint16_t u16 = 0;
  CHECK_OK(memseg_output_view_write_u32(w, 0xCAFEBABEu));
  CHECK_OK(memseg_output_view_write_u16(w, 0xBEEF));
  CHECK_STATUS(memseg_output_view_write_u32(w, 1), MEMSEG_STATUS_OUT_OF_SEGMENTS);
  CHECK_STATUS(memseg_output_view_skip(w, 3), MEMSEG_STATUS_OUT_OF_SEGMENTS);
  check_position(w, 1, 2);
  CHECK_OK(memseg_output_view_write_u16(w, 0x0102));
  CHECK_STATUS(memseg_output_view_write_u8(w, 1), MEMSEG_STATUS_OUT_OF_SEGMENTS);
  check_position(w, 1, 4);

  r = in_view(segs, 2, 4);
  CHECK_OK(memseg_input_view_read_u32(r, &u32));
  CHECK_EQ(u32, 0xCAFEBABEu);
  CHECK_OK(memseg_input_view_read_u16(r, &u16));
  CHECK_EQ(u16, 0xBEEF);
  CHECK_OK(memseg_input_view_read_u16(r, &u16));
  CHECK_EQ(u16, 0x0102);
  CHECK_OK(memseg_input_view_free(r));

  /* Reset: written again from the first segment. */
  CHECK_OK(memseg_output_view_reset(w));
  check_position(w, 0, 0);
  CHECK_OK(memseg_output_view_write_u8(w, 9));
  CHECK_OK(memseg_segment_get_u8(segs[0], 0, (uint8_t *)&u16));
  CHECK_EQ(u16 & 0xFF, 9);
  CHECK_OK(memseg_output_view_free(w));

  /* A view of no segments: every write is OUT_OF_SEGMENTS. */
  w = out_view(NULL, 0);
  CHECK_STATUS(memseg_output_view_write_u8(w, 1), MEMSEG_STATUS_OUT_OF_SEGMENTS);
  CHECK_OK(memseg_output_view_write_bytes(w, NULL, 0));
  check_position(w, 0, 0);
  CHECK_OK(memseg_output_view_free(w));
  r = in_view(NULL, 0, 0);
  CHECK_STATUS(memseg_input_view_read_u8(r, (uint8_t *)&u16), MEMSEG_STATUS_END_OF_DATA);
  CHECK_OK(memseg_input_view_free(r));
  mt_free(segs[0]);
  mt_free(segs[1]);
}

static void test_bad_sources_and_handles(void) {
  memseg_segment segs[2] = {mt_heap(8), mt_heap(8)};
  memseg_segment dup[2];
  memseg_segment zero[1] = {{0}};
  memseg_output_view w = {0};
  memseg_input_view r = {0};
  uint64_t v = 0;

  CHECK_STATUS(memseg_output_view_new(NULL, 2, &w), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_output_view_new(segs, 2, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_input_view_new(NULL, 1, 0, &r), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_output_view_new(zero, 1, &w), MEMSEG_STATUS_INVALID_HANDLE);
  CHECK_STATUS(memseg_input_view_new(zero, 1, 0, &r), MEMSEG_STATUS_INVALID_HANDLE);
  dup[0] = segs[0];
  dup[1] = segs[0];
  CHECK_STATUS(memseg_output_view_new(dup, 2, &w), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_input_view_new(segs, 2, 9, &r), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_STATUS(memseg_input_view_new(NULL, 0, 1, &r), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_EQ(w.bits, 0); /* nothing written on failure */
  CHECK_EQ(r.bits, 0);

  /* Zero handles: free is a no-op, anything else INVALID_HANDLE. */
  CHECK_OK(memseg_output_view_free(w));
  CHECK_OK(memseg_input_view_free(r));
  CHECK_STATUS(memseg_output_view_write_u64(w, 1), MEMSEG_STATUS_INVALID_HANDLE);
  CHECK_STATUS(memseg_input_view_read_u64(r, &v), MEMSEG_STATUS_INVALID_HANDLE);

  w = out_view(segs, 2);
  r = in_view(segs, 2, 8);
  /* Wrong kinds. */
  {
    memseg_input_view as_input = {w.bits};
    memseg_output_view as_output = {r.bits};
    CHECK_STATUS(memseg_input_view_read_u64(as_input, &v), MEMSEG_STATUS_WRONG_HANDLE_KIND);
    CHECK_STATUS(memseg_output_view_write_u64(as_output, 1), MEMSEG_STATUS_WRONG_HANDLE_KIND);
    CHECK_STATUS(memseg_input_view_read_u64(r, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  }
  CHECK_OK(memseg_output_view_write_u64(w, 5));
  CHECK_OK(memseg_output_view_write_u32(w, 6));

  /* Segments freed under the views: STALE_HANDLE, nothing read or written. */
  mt_free(segs[1]);
  CHECK_STATUS(memseg_output_view_write_u32(w, 7), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_input_view_read_u64(r, &v)); /* segment 0 is still there */
  CHECK_EQ(v, 5);
  v = 99;
  CHECK_STATUS(memseg_input_view_read_u32(r, (uint32_t *)&v), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_EQ(v, 99);
  mt_free(segs[0]);
  CHECK_OK(memseg_input_view_seek(r, 0)); /* moving touches no memory */
  CHECK_STATUS(memseg_input_view_read_u8(r, (uint8_t *)&v), MEMSEG_STATUS_STALE_HANDLE);
  {
    char buf[8];
    size_t len = 0;
    CHECK_STATUS(memseg_input_view_read_utf(r, buf, sizeof buf, &len), MEMSEG_STATUS_STALE_HANDLE);
  }
  CHECK_OK(memseg_input_view_free(r));
  CHECK_OK(memseg_output_view_free(w));
  CHECK_STATUS(memseg_output_view_new(segs, 1, &w), MEMSEG_STATUS_STALE_HANDLE);
}

static void test_serialization_buffer_and_reader(void) {
  memseg_serialization_buffer buf = {0};
  memseg_serialization_reader rd = {0};
  const uint8_t *bytes = NULL;
  size_t len = 0, cap = 0, off = 0, avail = 0;
  char text[16];
  int64_t i64 = 0;
  uint16_t u16 = 0;
  double f64 = 0;

  CHECK_STATUS(memseg_serialization_buffer_new(4, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_OK(memseg_serialization_buffer_new(4, &buf));
  CHECK_OK(memseg_serialization_buffer_write_i64(buf, -2));
  CHECK_OK(memseg_serialization_buffer_write_u16_le(buf, 0x1234));
  CHECK_OK(memseg_serialization_buffer_write_utf(buf, "h\xC3\xA9", 3));
  CHECK_OK(memseg_serialization_buffer_write_f64(buf, 0.5));
  CHECK_OK(memseg_serialization_buffer_length(buf, &len, &cap));
  CHECK_EQ(len, 8 + 2 + 5 + 8);
  CHECK(cap >= len);
  CHECK_OK(memseg_serialization_buffer_bytes(buf, &bytes, &len));
  CHECK_EQ(len, 23);
  CHECK_EQ(bytes[7], 0xFE);
  CHECK_EQ(bytes[8], 0x34);
  CHECK_EQ(bytes[11], 3); /* the length of "hé" in modified UTF-8 */

  CHECK_OK(memseg_serialization_reader_new(bytes, len, &rd));
  CHECK_OK(memseg_serialization_buffer_prune(buf)); /* the reader has its own copy */
  CHECK_OK(memseg_serialization_buffer_length(buf, &len, &cap));
  CHECK_EQ(len, 0);
  CHECK_EQ(cap, 4);
  CHECK_OK(memseg_serialization_reader_read_i64(rd, &i64));
  CHECK_EQ(i64, -2);
  CHECK_OK(memseg_serialization_reader_read_u16_le(rd, &u16));
  CHECK_EQ(u16, 0x1234);
  CHECK_STATUS(memseg_serialization_reader_read_utf(rd, text, 2, &len), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_OK(memseg_serialization_reader_read_utf(rd, text, sizeof text, &len));
  CHECK_EQ(len, 3);
  CHECK_MEM(text, "h\xC3\xA9", 3);
  CHECK_OK(memseg_serialization_reader_read_f64(rd, &f64));
  CHECK(f64 == 0.5);
  CHECK_STATUS(memseg_serialization_reader_read_u16(rd, &u16), MEMSEG_STATUS_END_OF_DATA);
  CHECK_OK(memseg_serialization_reader_offset(rd, &off, &avail));
  CHECK_EQ(off, 23);
  CHECK_EQ(avail, 0);
  CHECK_STATUS(memseg_serialization_reader_seek(rd, 24), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_OK(memseg_serialization_reader_seek(rd, 10));
  CHECK_OK(memseg_serialization_reader_skip(rd, 5));
  CHECK_STATUS(memseg_serialization_reader_skip(rd, 9), MEMSEG_STATUS_END_OF_DATA);
  CHECK_OK(memseg_serialization_reader_set_buffer(rd, (const uint8_t *)"\x00\x01", 2));
  CHECK_OK(memseg_serialization_reader_read_u16(rd, &u16));
  CHECK_EQ(u16, 1);
  CHECK_STATUS(memseg_serialization_reader_set_buffer(rd, NULL, 1), MEMSEG_STATUS_NULL_ARGUMENT);

  CHECK_OK(memseg_serialization_buffer_skip(buf, 3));
  CHECK_OK(memseg_serialization_buffer_clear(buf));
  CHECK_OK(memseg_serialization_buffer_free(buf));
  CHECK_STATUS(memseg_serialization_buffer_free(buf), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_serialization_buffer_write_u8(buf, 1), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_serialization_reader_free(rd));
  CHECK_STATUS(memseg_serialization_reader_free(rd), MEMSEG_STATUS_STALE_HANDLE);
}

static void test_records_span_segments(void) {
  enum { SEGS = 12, SIZE = 6 };
  memseg_segment segs[SEGS];
  size_t fills[SEGS] = {0};
  memseg_record_serializer ser = {0};
  memseg_record_deserializer de = {0};
  memseg_serialization_buffer buf = {0};
  const char *records[] = {"first", "", "a record longer than a segment", "z"};
  size_t i, current = 0, got = 0;
  const uint8_t *rec = NULL;
  size_t rec_len = 0;

  for (i = 0; i < SEGS; i++) {
    segs[i] = mt_heap(SIZE);
  }
  CHECK_OK(memseg_record_serializer_new(&ser));
  for (i = 0; i < 4; i++) {
    bool done = false;
    CHECK_OK(memseg_record_serializer_serialize(ser, (const uint8_t *)records[i],
                                                strlen(records[i])));
    while (!done) {
      size_t written = 0;
      CHECK(current < SEGS);
      CHECK_OK(memseg_record_serializer_copy_to_segment(ser, segs[current], fills[current],
                                                        &written, &done));
      fills[current] += written;
      if (!done) {
        CHECK_EQ(fills[current], SIZE);
        CHECK_STATUS(memseg_record_serializer_serialize(ser, (const uint8_t *)"x", 1),
                     MEMSEG_STATUS_INVALID_ARGUMENT); /* the previous one is pending */
        current++;
      }
    }
  }
  /* A record from a serialization buffer. */
  CHECK_OK(memseg_serialization_buffer_new(0, &buf));
  CHECK_OK(memseg_serialization_buffer_write_u16(buf, 0xABCD));
  CHECK_OK(memseg_record_serializer_serialize_buffer(ser, buf));
  {
    size_t pending = 0, written = 0;
    bool done = false;
    CHECK_OK(memseg_record_serializer_pending(ser, &pending));
    CHECK_EQ(pending, 6);
    CHECK_STATUS(memseg_record_serializer_copy_to_segment(ser, segs[current], SIZE + 1, &written,
                                                          &done),
                 MEMSEG_STATUS_OUT_OF_BOUNDS);
    while (!done) {
      if (fills[current] == SIZE) {
        current++;
      }
      CHECK_OK(memseg_record_serializer_copy_to_segment(ser, segs[current], fills[current],
                                                        &written, &done));
      fills[current] += written;
    }
  }

  CHECK_OK(memseg_record_deserializer_new(MEMSEG_RECORD_DEFAULT_MAX_LEN, &de));
  CHECK_STATUS(memseg_record_deserializer_next_record(de, &rec, &rec_len),
               MEMSEG_STATUS_NEED_MORE_DATA);
  for (i = 0; i <= current; i++) {
    memseg_status status;
    CHECK_OK(memseg_record_deserializer_set_next_buffer(de, segs[i], 0, fills[i]));
    while ((status = memseg_record_deserializer_next_record(de, &rec, &rec_len)) ==
           MEMSEG_STATUS_OK) {
      if (got < 4) {
        CHECK_EQ(rec_len, strlen(records[got]));
        CHECK_MEM(rec, records[got], rec_len);
      } else {
        CHECK_EQ(rec_len, 2);
        CHECK_EQ(rec[0], 0xAB);
        CHECK_EQ(rec[1], 0xCD);
      }
      got++;
    }
    CHECK_STATUS(status, MEMSEG_STATUS_NEED_MORE_DATA);
  }
  CHECK_EQ(got, 5);

  /* A length prefix above the bound: CORRUPTED, and it stays so. */
  CHECK_OK(memseg_record_deserializer_free(de));
  CHECK_OK(memseg_record_deserializer_new(16, &de));
  CHECK_OK(memseg_segment_put_u32_be(segs[0], 0, 17));
  CHECK_OK(memseg_record_deserializer_set_next_buffer(de, segs[0], 0, SIZE));
  CHECK_STATUS(memseg_record_deserializer_next_record(de, &rec, &rec_len), MEMSEG_STATUS_CORRUPTED);
  CHECK_STATUS(memseg_record_deserializer_next_record(de, &rec, &rec_len), MEMSEG_STATUS_CORRUPTED);
  CHECK_OK(memseg_segment_put_u32_be(segs[0], 0, 0xFFFFFFFFu));
  CHECK_OK(memseg_record_deserializer_clear(de));
  CHECK_OK(memseg_record_deserializer_set_next_buffer(de, segs[0], 0, SIZE));
  CHECK_STATUS(memseg_record_deserializer_next_record(de, &rec, &rec_len), MEMSEG_STATUS_CORRUPTED);
  CHECK_STATUS(memseg_record_deserializer_set_next_buffer(de, segs[0], 1, SIZE),
               MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_STATUS(memseg_record_deserializer_next_record(de, NULL, &rec_len),
               MEMSEG_STATUS_NULL_ARGUMENT);

  /* The current segment freed: STALE_HANDLE, not a read of freed memory. */
  CHECK_OK(memseg_record_deserializer_clear(de));
  CHECK_OK(memseg_segment_put_u32_be(segs[1], 0, 9));
  CHECK_OK(memseg_record_deserializer_set_next_buffer(de, segs[1], 0, SIZE));
  mt_free(segs[1]);
  CHECK_STATUS(memseg_record_deserializer_next_record(de, &rec, &rec_len),
               MEMSEG_STATUS_STALE_HANDLE);

  CHECK_OK(memseg_record_deserializer_free(de));
  CHECK_STATUS(memseg_record_deserializer_free(de), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_record_serializer_free(ser));
  CHECK_STATUS(memseg_record_serializer_free(ser), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_serialization_buffer_free(buf));
  for (i = 0; i < SEGS; i++) {
    if (i != 1) {
      mt_free(segs[i]);
    }
  }
}

/* Writes values 0..n-1 (times a constant) with the inline accessors over the window, falling
 * back to the view's call for a value that straddles; returns the status of the first failure. */
static memseg_status window_write(memseg_output_view w, uint64_t n) {
  memseg_raw win = {NULL, 0};
  size_t off = 0;
  uint64_t i;
  memseg_status status = memseg_output_view_window(w, &win.ptr, &win.size);
  if (status != MEMSEG_STATUS_OK) {
    return status;
  }
  for (i = 0; i < n; i++) {
    uint64_t v = i * UINT64_C(0x9E3779B97F4A7C15);
    if (memseg_raw_put_u64_be(win, off, v) == MEMSEG_STATUS_OK) {
      off += 8;
      continue;
    }
    CHECK_OK(memseg_output_view_commit(w, off));
    status = memseg_output_view_write_u64(w, v); /* straddles two segments */
    if (status != MEMSEG_STATUS_OK) {
      return status;
    }
    off = 0;
    status = memseg_output_view_window(w, &win.ptr, &win.size);
    if (status != MEMSEG_STATUS_OK && i + 1 < n) {
      return status;
    }
  }
  return memseg_output_view_commit(w, off);
}

static void test_windows_for_hot_loops(void) {
  memseg_segment segs[4] = {mt_heap(20), mt_heap(20), mt_heap(20), mt_heap(20)};
  memseg_output_view w = out_view(segs, 4);
  memseg_input_view r;
  memseg_raw win = {NULL, 0};
  const uint8_t *rptr = NULL;
  size_t rlen = 0, off = 0, total = 0;
  uint64_t i = 0, v = 0;

  CHECK_OK(window_write(w, 10));
  CHECK_OK(memseg_output_view_bytes_written(w, &total));
  CHECK_EQ(total, 80);
  check_position(w, 3, 20);
  CHECK_STATUS(memseg_output_view_window(w, &win.ptr, &win.size), MEMSEG_STATUS_OUT_OF_SEGMENTS);
  CHECK_STATUS(memseg_output_view_commit(w, 1), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_STATUS(memseg_output_view_window(w, NULL, &win.size), MEMSEG_STATUS_NULL_ARGUMENT);

  /* Read back through input windows: the same fast path the other way. */
  r = in_view(segs, 4, 20);
  CHECK_OK(memseg_input_view_window(r, &rptr, &rlen));
  CHECK_EQ(rlen, 20);
  while (i < 10) {
    memseg_raw view_of = {(uint8_t *)rptr, rlen};
    if (memseg_raw_get_u64_be(view_of, off, &v) == MEMSEG_STATUS_OK) {
      off += 8;
    } else {
      CHECK_OK(memseg_input_view_skip(r, off));
      CHECK_OK(memseg_input_view_read_u64(r, &v)); /* straddles */
      CHECK_OK(memseg_input_view_window(r, &rptr, &rlen));
      off = 0;
    }
    CHECK_EQ(v, i * UINT64_C(0x9E3779B97F4A7C15));
    i++;
  }
  CHECK_OK(memseg_input_view_skip(r, off));
  CHECK_OK(memseg_input_view_window(r, &rptr, &rlen));
  CHECK_EQ(rlen, 0); /* the end */

  /* The window's segment freed: STALE_HANDLE. */
  CHECK_OK(memseg_input_view_seek(r, 0));
  mt_free(segs[0]);
  CHECK_STATUS(memseg_input_view_window(r, &rptr, &rlen), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_output_view_reset(w));
  CHECK_STATUS(memseg_output_view_window(w, &win.ptr, &win.size), MEMSEG_STATUS_STALE_HANDLE);

  CHECK_OK(memseg_input_view_free(r));
  CHECK_OK(memseg_output_view_free(w));
  mt_free(segs[1]);
  mt_free(segs[2]);
  mt_free(segs[3]);
}

/* What a host's hot loop over windows with spans looks like: the whole values of each window
 * as one span, indexed up to span.count; the value that straddles two segments through the
 * view's own call. Values 0..n-1 times a constant, written and then read back. */
static void test_window_spans(void) {
  enum { N = 10 }; /* 80 bytes: the four segments exactly */
  const uint64_t k = UINT64_C(0x9E3779B97F4A7C15);
  memseg_segment segs[4] = {mt_heap(20), mt_heap(20), mt_heap(20), mt_heap(20)};
  memseg_output_view w = out_view(segs, 4);
  memseg_input_view r;
  uint64_t i = 0, v = 0;
  size_t total = 0, j;

  while (i < N) {
    memseg_raw win = {NULL, 0};
    memseg_span64 span = {NULL, 0};
    CHECK_OK(memseg_output_view_window(w, &win.ptr, &win.size));
    /* One value more than the window holds: refused, the span untouched. */
    CHECK_STATUS(memseg_raw_span64(win, 0, win.size / 8 + 1, &span), MEMSEG_STATUS_OUT_OF_BOUNDS);
    CHECK(span.ptr == NULL);
    CHECK_OK(memseg_raw_span64(win, 0, win.size / 8 < N - i ? win.size / 8 : N - i, &span));
    for (j = 0; j < span.count; j++) {
      CHECK_OK(memseg_span64_put_u64_be(span, j, (i + j) * k));
    }
    CHECK_STATUS(memseg_span64_put_u64_be(span, span.count, 0), MEMSEG_STATUS_OUT_OF_BOUNDS);
    CHECK_OK(memseg_output_view_commit(w, span.count * 8));
    i += span.count;
    if (i < N) {
      CHECK_OK(memseg_output_view_write_u64(w, i * k)); /* straddles */
      i++;
    }
  }
  CHECK_OK(memseg_output_view_bytes_written(w, &total));
  CHECK_EQ(total, N * 8);

  r = in_view(segs, 4, N * 8 - 60);
  i = 0;
  while (i < N) {
    const uint8_t *p = NULL;
    memseg_raw win = {NULL, 0};
    memseg_span64 span;
    CHECK_OK(memseg_input_view_window(r, &p, &win.size));
    win.ptr = (uint8_t *)p;
    CHECK_OK(memseg_raw_span64(win, 0, win.size / 8, &span));
    for (j = 0; j < span.count; j++) {
      CHECK_OK(memseg_span64_get_u64_be(span, j, &v));
      CHECK_EQ(v, (i + j) * k);
    }
    CHECK_STATUS(memseg_span64_get_u64_be(span, span.count, &v), MEMSEG_STATUS_OUT_OF_BOUNDS);
    CHECK_OK(memseg_input_view_skip(r, span.count * 8));
    i += span.count;
    if (i < N) {
      CHECK_OK(memseg_input_view_read_u64(r, &v)); /* straddles */
      CHECK_EQ(v, i * k);
      i++;
    }
  }
  CHECK_STATUS(memseg_input_view_read_u8(r, (uint8_t *)&v), MEMSEG_STATUS_END_OF_DATA);

  CHECK_OK(memseg_input_view_free(r));
  CHECK_OK(memseg_output_view_free(w));
  for (j = 0; j < 4; j++) {
    mt_free(segs[j]);
  }
}

/* An output view on a lease: pages come from the lease as writes need them, the budget ends
 * the stream with BUDGET_EXHAUSTED and nothing lost, the pages read back through an input
 * view and go back through the lease; a closed lease makes the view's writes stale. */
static void test_view_on_a_lease(void) {
  const size_t page = 4096;
  memseg_manager_config config = memseg_manager_config_default(3 * page);
  memseg_manager manager = {0};
  memseg_lease lease = {0};
  memseg_output_view w = {0x77};
  memseg_input_view r = {0};
  memseg_segment pages[3];
  memseg_lease_usage usage;
  size_t count = 0, seg = 0, fill = 0;
  uint64_t i, v = 0;

  config.page_size = page;
  config.flags = MEMSEG_MANAGER_PREALLOCATE;
  CHECK_OK(memseg_manager_new(&config, &manager));
  CHECK_OK(memseg_lease_open(manager, "view", 0, &lease));

  CHECK_STATUS(memseg_output_view_new_on_lease(lease, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_output_view_new_on_lease((memseg_lease){0}, &w),
               MEMSEG_STATUS_INVALID_HANDLE);
  CHECK_EQ(w.bits, 0x77);
  CHECK_OK(memseg_output_view_new_on_lease(lease, &w));
  for (i = 0; i < 3 * page / 8; i++) {
    CHECK_OK(memseg_output_view_write_u64(w, i * 7));
  }
  CHECK_STATUS(memseg_output_view_write_u8(w, 1), MEMSEG_STATUS_BUDGET_EXHAUSTED);
  CHECK_OK(memseg_lease_get_usage(lease, &usage));
  CHECK_EQ(usage.pages, 3);

  CHECK_OK(memseg_output_view_position(w, &seg, &fill));
  CHECK_OK(memseg_output_view_segments(w, pages, 3, &count));
  CHECK_EQ(count, 3);
  CHECK_OK(memseg_output_view_free(w));
  CHECK_OK(memseg_input_view_new(pages, count, fill, &r));
  for (i = 0; i < 3 * page / 8; i++) {
    CHECK_OK(memseg_input_view_read_u64(r, &v));
    CHECK_EQ(v, i * 7);
  }
  CHECK_STATUS(memseg_input_view_read_u64(r, &v), MEMSEG_STATUS_END_OF_DATA);
  CHECK_OK(memseg_input_view_free(r));
  CHECK_OK(memseg_lease_release_many(lease, pages, count));
  CHECK_OK(memseg_lease_get_usage(lease, &usage));
  CHECK_EQ(usage.pages, 0);

  CHECK_OK(memseg_output_view_new_on_lease(lease, &w));
  CHECK_OK(memseg_output_view_write_u32(w, 5));
  CHECK_OK(memseg_lease_close(lease, NULL));
  CHECK_STATUS(memseg_output_view_write_u32(w, 6), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_output_view_free(w));
  CHECK_OK(memseg_manager_close(manager, NULL, 0, NULL));
}

/* An output view on a local buffer pool: buffers are requested as writes need them (lent as
 * segments while the view writes), WOULD_BLOCK when the pool has none left and nothing lost;
 * what was written is handed out as buffers sized to their contents; the rest goes back. */
static void test_view_on_a_local_pool(void) {
  memseg_network_pool net = {0};
  memseg_local_pool pool = {0};
  memseg_local_pool_config config = {0};
  memseg_local_pool_counters counters;
  memseg_output_view w = {0x77}, plain = {0};
  memseg_buffer buffers[3];
  memseg_segment segs[3], own;
  size_t count = 99, size = 0, i;
  uint8_t bytes[8];
  int64_t v = 0;
  memseg_input_view r = {0};

  CHECK_OK(memseg_network_pool_new(4, 1024, 0, &net));
  config.min = 3;
  config.max = 3;
  CHECK_OK(memseg_local_pool_new(net, &config, &pool));
  CHECK_STATUS(memseg_output_view_new_on_local_pool(pool, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_output_view_new_on_local_pool((memseg_local_pool){0}, &w),
               MEMSEG_STATUS_INVALID_HANDLE);
  CHECK_EQ(w.bits, 0x77);
  CHECK_OK(memseg_output_view_new_on_local_pool(pool, &w));
  for (i = 0; i < 3 * 1024 / 8 - 1; i++) {
    CHECK_OK(memseg_output_view_write_i64(w, -(int64_t)i));
  }
  CHECK_OK(memseg_output_view_write_u32(w, 0xCAFEF00D));
  CHECK_STATUS(memseg_output_view_write_u64(w, 1), MEMSEG_STATUS_WOULD_BLOCK);
  CHECK_OK(memseg_local_pool_stats(pool, &counters));
  CHECK_EQ(counters.in_use, 3);

  /* While the view writes, its buffers read back as segments. */
  CHECK_OK(memseg_output_view_segments(w, segs, 3, &count));
  CHECK_EQ(count, 3);
  CHECK_STATUS(memseg_segment_free(segs[0]), MEMSEG_STATUS_INVALID_ARGUMENT); /* lent */
  CHECK_OK(memseg_input_view_new(segs, 3, 1020, &r));
  CHECK_OK(memseg_input_view_read_i64(r, &v));
  CHECK_EQ(v, 0);
  CHECK_OK(memseg_input_view_read_i64(r, &v));
  CHECK_EQ(v, -1);

  CHECK_OK(memseg_output_view_take_buffers(w, NULL, 0, &count));
  CHECK_EQ(count, 3);
  CHECK_STATUS(memseg_output_view_take_buffers(w, buffers, 2, &count),
               MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_OK(memseg_output_view_take_buffers(w, buffers, 3, &count));
  CHECK_EQ(count, 3);
  CHECK_OK(memseg_buffer_size(buffers[0], &size));
  CHECK_EQ(size, 1024);
  CHECK_OK(memseg_buffer_size(buffers[2], &size));
  CHECK_EQ(size, 1020);
  CHECK_OK(memseg_buffer_get_bytes(buffers[2], 1016, bytes, 4));
  CHECK(bytes[0] == 0xCA && bytes[3] == 0x0D);
  /* The segment handles the view lent are stale now; so is a reader still on them. */
  CHECK_STATUS(memseg_input_view_read_i64(r, &v), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_input_view_free(r));
  CHECK_STATUS(memseg_segment_get_u8(segs[1], 0, bytes), MEMSEG_STATUS_STALE_HANDLE);

  /* The view starts over, empty, and writes into a buffer again once one is back. */
  CHECK_OK(memseg_output_view_take_buffers(w, NULL, 0, &count));
  CHECK_EQ(count, 0);
  CHECK_STATUS(memseg_output_view_write_u8(w, 1), MEMSEG_STATUS_WOULD_BLOCK);
  CHECK_OK(memseg_buffer_release(buffers[0]));
  CHECK_OK(memseg_output_view_write_u8(w, 1));
  CHECK_OK(memseg_output_view_free(w)); /* the buffer not taken goes back */
  CHECK_OK(memseg_buffer_release(buffers[1]));
  CHECK_OK(memseg_buffer_release(buffers[2]));
  CHECK_OK(memseg_local_pool_stats(pool, &counters));
  CHECK_EQ(counters.in_use, 0);

  /* A view over host segments has no buffers to hand out. */
  CHECK_OK(memseg_segment_new_heap(64, &own));
  CHECK_OK(memseg_output_view_new(&own, 1, &plain));
  CHECK_STATUS(memseg_output_view_take_buffers(plain, NULL, 0, &count),
               MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_OK(memseg_output_view_free(plain));
  mt_free(own);
  CHECK_OK(memseg_local_pool_destroy(pool));
  CHECK_OK(memseg_network_pool_destroy(net));
}

int main(void) {
  RUN(test_every_type_round_trips_across_segments);
  RUN(test_strings_bytes_and_skip);
  RUN(test_out_of_segments_keeps_what_was_written);
  RUN(test_bad_sources_and_handles);
  RUN(test_serialization_buffer_and_reader);
  RUN(test_records_span_segments);
  RUN(test_windows_for_hot_loops);
  RUN(test_window_spans);
  RUN(test_view_on_a_lease);
  RUN(test_view_on_a_local_pool);
  return 0;
}
