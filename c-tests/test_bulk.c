/*
 * Bulk operations through the C ABI, each checked against a plain C model (memcpy, memmove,
 * memcmp, memset on arrays):
 * - get_bytes/put_bytes: every (offset, len) in a small segment, len 0 with a NULL pointer
 *   (ok, also at offset == size), NULL with len > 0 (MEMSEG_STATUS_NULL_ARGUMENT), offset + len
 *   past the end or overflowing size_t (MEMSEG_STATUS_OUT_OF_BOUNDS);
 * - copy: between segments of different sizes, and within one segment with overlap in both
 *   directions (memmove semantics), and between two foreign segments over the same memory;
 * - compare: -1/0/1 with unsigned bytes (0x80 > 0x7f), the first difference decides, len 0
 *   is equal; equal;
 * - swap: between segments, a range with itself is a no-op, partial overlap is
 *   MEMSEG_STATUS_INVALID_ARGUMENT (also through two foreign segments sharing memory), adjacent
 *   ranges swap;
 * - fill;
 * - every failing call leaves every segment and host buffer unchanged and writes no out value.
 */
#undef NDEBUG
#include <assert.h>

#include "memseg_test.h"

#define N 24 /* small enough to try every (offset, len) pair */

/* Offsets and lengths that overflow or reach past a segment of `size` bytes. */
struct bad_range {
  size_t offset;
  size_t len;
};

static size_t bad_ranges(size_t size, struct bad_range *out) {
  size_t count = 0;
  out[count++] = (struct bad_range){size, 1};
  out[count++] = (struct bad_range){size + 1, 0};
  out[count++] = (struct bad_range){0, size + 1};
  out[count++] = (struct bad_range){1, size};
  out[count++] = (struct bad_range){size - 1, 2};
  out[count++] = (struct bad_range){1, SIZE_MAX};         /* offset + len overflows to 0 */
  out[count++] = (struct bad_range){SIZE_MAX, 1};         /* overflows to 0 */
  out[count++] = (struct bad_range){SIZE_MAX, 2};         /* overflows to 1 */
  out[count++] = (struct bad_range){2, SIZE_MAX - 1};     /* overflows to 0 */
  out[count++] = (struct bad_range){size / 2, SIZE_MAX - size / 2 + 2}; /* wraps to 1 */
  out[count++] = (struct bad_range){SIZE_MAX, SIZE_MAX};
  out[count++] = (struct bad_range){SIZE_MAX, 0};
  out[count++] = (struct bad_range){SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 1}; /* wraps to 0 */
  return count;
}

static void test_get_put_bytes_every_range(void) {
  memseg_segment segment = mt_heap(N);
  uint8_t shadow[N], buf[N + 8], expected_buf[N + 8];
  size_t offset, len;
  for (offset = 0; offset <= N + 1; offset++) {
    for (len = 0; len <= N + 1; len++) {
      bool fits = offset <= N && len <= N - offset;
      mt_context("offset %zu len %zu", offset, len);
      mt_pattern(segment, shadow, sizeof shadow, (unsigned)(offset * 31 + len));

      /* get_bytes: reads exactly len bytes, nothing past them. */
      memset(buf, 0xEE, sizeof buf);
      memset(expected_buf, 0xEE, sizeof expected_buf);
      if (fits) {
        memcpy(expected_buf, shadow + offset, len);
      }
      CHECK_STATUS(memseg_segment_get_bytes(segment, offset, buf, len),
                   fits ? MEMSEG_STATUS_OK : MEMSEG_STATUS_OUT_OF_BOUNDS);
      CHECK_MEM(buf, expected_buf, sizeof buf);

      /* put_bytes: writes exactly len bytes at offset, or nothing. */
      memset(buf, (int)(0x40 + len), sizeof buf);
      CHECK_STATUS(memseg_segment_put_bytes(segment, offset, buf, len),
                   fits ? MEMSEG_STATUS_OK : MEMSEG_STATUS_OUT_OF_BOUNDS);
      if (fits) {
        memcpy(shadow + offset, buf, len);
      }
      CHECK_SEGMENT(segment, shadow);
    }
  }
  mt_free(segment);
}

static void test_get_put_bytes_null_and_overflow(void) {
  memseg_segment segment = mt_heap(N);
  uint8_t shadow[N], buf[16];
  struct bad_range bad[16];
  size_t count, i;
  mt_pattern(segment, shadow, sizeof shadow, 3);

  /* len 0 with NULL is fine anywhere in bounds, including at the end. */
  CHECK_OK(memseg_segment_get_bytes(segment, 0, NULL, 0));
  CHECK_OK(memseg_segment_put_bytes(segment, 0, NULL, 0));
  CHECK_OK(memseg_segment_get_bytes(segment, 7, NULL, 0));
  CHECK_OK(memseg_segment_put_bytes(segment, 7, NULL, 0));
  CHECK_OK(memseg_segment_get_bytes(segment, N, NULL, 0));
  CHECK_OK(memseg_segment_put_bytes(segment, N, NULL, 0));
  /* ... but an offset past the end is still out of bounds. */
  CHECK_STATUS(memseg_segment_get_bytes(segment, N + 1, NULL, 0), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_STATUS(memseg_segment_put_bytes(segment, N + 1, NULL, 0), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_STATUS(memseg_segment_get_bytes(segment, SIZE_MAX, NULL, 0),
               MEMSEG_STATUS_OUT_OF_BOUNDS);
  /* NULL with a length is a NULL argument, even in bounds. */
  CHECK_STATUS(memseg_segment_get_bytes(segment, 0, NULL, 1), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_segment_put_bytes(segment, 0, NULL, 1), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_segment_get_bytes(segment, 3, NULL, N - 3), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_segment_put_bytes(segment, 3, NULL, N - 3), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_SEGMENT(segment, shadow);

  /* Overflowing offset + len: out of bounds, nothing copied either way. */
  count = bad_ranges(N, bad);
  for (i = 0; i < count; i++) {
    mt_context("offset %zu len %zu", bad[i].offset, bad[i].len);
    memset(buf, 0xEE, sizeof buf);
    CHECK_STATUS(memseg_segment_get_bytes(segment, bad[i].offset, buf, bad[i].len),
                 MEMSEG_STATUS_OUT_OF_BOUNDS);
    CHECK(buf[0] == 0xEE && buf[15] == 0xEE);
    CHECK_STATUS(memseg_segment_put_bytes(segment, bad[i].offset, buf, bad[i].len),
                 MEMSEG_STATUS_OUT_OF_BOUNDS);
    CHECK_SEGMENT(segment, shadow);
  }
  mt_free(segment);
}

/* Host buffers that point into a segment (documented: "even this one"). */
static void test_bytes_from_and_into_segment_memory(void) {
  memseg_segment segment = mt_heap(32);
  uint8_t *ptr = NULL;
  size_t size = 0;
  uint8_t model[32], shadow[32];
  mt_pattern(segment, shadow, sizeof shadow, 9);
  CHECK_OK(memseg_segment_raw(segment, &ptr, &size));
  memcpy(model, shadow, 32);
  memmove(model + 4, model + 1, 20);
  CHECK_OK(memseg_segment_put_bytes(segment, 4, ptr + 1, 20));
  CHECK_SEGMENT(segment, model);
  memmove(model + 2, model + 10, 15);
  CHECK_OK(memseg_segment_get_bytes(segment, 10, ptr + 2, 15));
  CHECK_SEGMENT(segment, model);
  mt_free(segment);
}

static void test_copy_within_every_overlap(void) {
  memseg_segment segment = mt_heap(N);
  uint8_t shadow[N], model[N];
  size_t src, dst, len;
  for (src = 0; src <= N + 1; src++) {
    for (dst = 0; dst <= N + 1; dst++) {
      for (len = 0; len <= N + 1; len++) {
        bool fits = src <= N && len <= N - src && dst <= N && len <= N - dst;
        mt_context("copy within: src %zu dst %zu len %zu", src, dst, len);
        mt_pattern(segment, shadow, sizeof shadow, (unsigned)(src + dst + len));
        memcpy(model, shadow, N);
        if (fits) {
          memmove(model + dst, model + src, len);
        }
        CHECK_STATUS(memseg_segment_copy(segment, src, segment, dst, len),
                     fits ? MEMSEG_STATUS_OK : MEMSEG_STATUS_OUT_OF_BOUNDS);
        CHECK_SEGMENT(segment, model);
      }
    }
  }
  mt_free(segment);
}

static void test_copy_between_segments(void) {
  memseg_segment small = mt_heap(9);
  memseg_segment big = mt_offheap(40, 0);
  uint8_t small_shadow[9], big_shadow[40], small_model[9], big_model[40];
  struct bad_range bad[16];
  size_t src, dst, len, count, i;

  for (src = 0; src <= 10; src++) {
    for (dst = 0; dst <= 41; dst++) {
      for (len = 0; len <= 10; len++) {
        bool fits = src <= 9 && len <= 9 - src && dst <= 40 && len <= 40 - dst;
        mt_context("copy small -> big: src %zu dst %zu len %zu", src, dst, len);
        mt_pattern(small, small_shadow, sizeof small_shadow, (unsigned)src);
        mt_pattern(big, big_shadow, sizeof big_shadow, (unsigned)(dst + 100));
        memcpy(big_model, big_shadow, sizeof big_model);
        if (fits) {
          memcpy(big_model + dst, small_shadow + src, len);
        }
        CHECK_STATUS(memseg_segment_copy(small, src, big, dst, len),
                     fits ? MEMSEG_STATUS_OK : MEMSEG_STATUS_OUT_OF_BOUNDS);
        CHECK_SEGMENT(big, big_model);
        CHECK_SEGMENT(small, small_shadow);

        /* And the other way. */
        mt_context("copy big -> small: src %zu dst %zu len %zu", dst, src, len);
        fits = dst <= 40 && len <= 40 - dst && src <= 9 && len <= 9 - src;
        memcpy(small_model, small_shadow, sizeof small_model);
        if (fits) {
          memcpy(small_model + src, big_model + dst, len);
        }
        CHECK_STATUS(memseg_segment_copy(big, dst, small, src, len),
                     fits ? MEMSEG_STATUS_OK : MEMSEG_STATUS_OUT_OF_BOUNDS);
        CHECK_SEGMENT(small, small_model);
        CHECK_SEGMENT(big, big_model);
      }
    }
  }

  /* Overflowing ranges on either side. */
  mt_pattern(small, small_shadow, sizeof small_shadow, 1);
  mt_pattern(big, big_shadow, sizeof big_shadow, 2);
  count = bad_ranges(9, bad);
  for (i = 0; i < count; i++) {
    mt_context("copy with bad source range offset %zu len %zu", bad[i].offset, bad[i].len);
    CHECK_STATUS(memseg_segment_copy(small, bad[i].offset, big, 0, bad[i].len),
                 MEMSEG_STATUS_OUT_OF_BOUNDS);
    CHECK_STATUS(memseg_segment_copy(big, 0, small, bad[i].offset, bad[i].len),
                 MEMSEG_STATUS_OUT_OF_BOUNDS);
    CHECK_SEGMENT(small, small_shadow);
    CHECK_SEGMENT(big, big_shadow);
  }
  mt_free(small);
  mt_free(big);
}

/* Two foreign segments over the same host memory: copy is memmove, swap refuses overlap. */
static void test_foreign_segments_sharing_memory(void) {
  uint8_t host[32], model[32];
  memseg_segment a, b;
  size_t i;
  for (i = 0; i < 32; i++) {
    host[i] = (uint8_t)(i * 7 + 1);
  }
  memcpy(model, host, 32);
  a = mt_wrap(host, 24);     /* host[0..24) */
  b = mt_wrap(host + 8, 24); /* host[8..32) */

  /* a[4..20) -> b[0..16) is host[4..20) -> host[8..24): overlapping, forwards. */
  memmove(model + 8, model + 4, 16);
  CHECK_OK(memseg_segment_copy(a, 4, b, 0, 16));
  CHECK_MEM(host, model, 32);
  /* b[2..22) -> a[0..20) is host[10..30) -> host[0..20): overlapping, backwards. */
  memmove(model + 0, model + 10, 20);
  CHECK_OK(memseg_segment_copy(b, 2, a, 0, 20));
  CHECK_MEM(host, model, 32);

  /* a[10..18) and b[0..8) are host[10..18) and host[8..16): partial overlap. */
  CHECK_STATUS(memseg_segment_swap(a, 10, b, 0, 8), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_MEM(host, model, 32);
  /* a[8..16) and b[0..8) are the same bytes: a no-op. */
  CHECK_OK(memseg_segment_swap(a, 8, b, 0, 8));
  CHECK_MEM(host, model, 32);
  /* a[0..8) and b[8..16) are host[0..8) and host[16..24): disjoint, swapped. */
  for (i = 0; i < 8; i++) {
    uint8_t t = model[i];
    model[i] = model[16 + i];
    model[16 + i] = t;
  }
  CHECK_OK(memseg_segment_swap(a, 0, b, 8, 8));
  CHECK_MEM(host, model, 32);

  mt_free(a);
  mt_free(b);
}

static int sign(int x) { return (x > 0) - (x < 0); }

static void test_compare_and_equal(void) {
  memseg_segment a = mt_heap(N);
  memseg_segment b = mt_heap(N + 5);
  uint8_t a_bytes[N], b_bytes[N + 5];
  int32_t order;
  bool equal;
  size_t ao, bo, len;
  uint64_t random = 42;

  /* Unsigned bytes: 0x80 sorts after 0x7f, 0xff after 0x00. */
  CHECK_OK(memseg_segment_put_u8(a, 0, 0x80));
  CHECK_OK(memseg_segment_put_u8(b, 0, 0x7F));
  order = 99;
  CHECK_OK(memseg_segment_compare(a, 0, b, 0, 1, &order));
  CHECK_EQ(order == 1, 1);
  CHECK_OK(memseg_segment_compare(b, 0, a, 0, 1, &order));
  CHECK_EQ(order == -1, 1);
  CHECK_OK(memseg_segment_put_u8(a, 1, 0xFF));
  CHECK_OK(memseg_segment_put_u8(b, 1, 0x00));
  CHECK_OK(memseg_segment_compare(a, 1, b, 1, 1, &order));
  CHECK_EQ(order == 1, 1);
  /* The first difference decides. */
  CHECK_OK(memseg_segment_put_bytes(a, 4, (const uint8_t *)"\x01\x02\xFF", 3));
  CHECK_OK(memseg_segment_put_bytes(b, 4, (const uint8_t *)"\x01\x03\x00", 3));
  CHECK_OK(memseg_segment_compare(a, 4, b, 4, 3, &order));
  CHECK_EQ(order == -1, 1);
  CHECK_OK(memseg_segment_compare(a, 4, b, 4, 1, &order));
  CHECK_EQ(order, 0);
  /* len 0 is equal, even at the end. */
  order = 99;
  CHECK_OK(memseg_segment_compare(a, N, b, N + 5, 0, &order));
  CHECK_EQ(order, 0);
  equal = false;
  CHECK_OK(memseg_segment_equal(a, N, b, 0, 0, &equal));
  CHECK(equal);
  /* A range compared with itself. */
  CHECK_OK(memseg_segment_compare(a, 0, a, 0, N, &order));
  CHECK_EQ(order, 0);
  CHECK_OK(memseg_segment_equal(b, 3, b, 3, N, &equal));
  CHECK(equal);

  /* Against memcmp on random data with few distinct values, so equal prefixes are common. */
  for (ao = 0; ao <= N; ao += 3) {
    for (bo = 0; bo <= N + 5; bo += 2) {
      for (len = 0; len <= 8; len++) {
        size_t i;
        bool fits = len <= N - ao && len <= N + 5 - bo;
        int expected = 0;
        for (i = 0; i < N; i++) {
          a_bytes[i] = (uint8_t)(0x7E + mt_next_random(&random) % 3);
        }
        for (i = 0; i < N + 5; i++) {
          b_bytes[i] = (uint8_t)(0x7E + mt_next_random(&random) % 3);
        }
        CHECK_OK(memseg_segment_put_bytes(a, 0, a_bytes, N));
        CHECK_OK(memseg_segment_put_bytes(b, 0, b_bytes, N + 5));
        if (fits) {
          expected = sign(memcmp(a_bytes + ao, b_bytes + bo, len));
        }
        mt_context("compare a[%zu..+%zu] with b[%zu..]", ao, len, bo);
        order = 99;
        equal = !(expected == 0);
        CHECK_STATUS(memseg_segment_compare(a, ao, b, bo, len, &order),
                     fits ? MEMSEG_STATUS_OK : MEMSEG_STATUS_OUT_OF_BOUNDS);
        CHECK_STATUS(memseg_segment_equal(a, ao, b, bo, len, &equal),
                     fits ? MEMSEG_STATUS_OK : MEMSEG_STATUS_OUT_OF_BOUNDS);
        if (fits) {
          CHECK_EQ((int64_t)order == expected, 1);
          CHECK_EQ(equal, expected == 0);
          CHECK_OK(memseg_segment_compare(b, bo, a, ao, len, &order));
          CHECK_EQ((int64_t)order == -expected, 1);
        } else {
          CHECK_EQ(order, 99);
          CHECK_EQ(equal, !(expected == 0));
        }
      }
    }
  }

  /* Out of bounds in either range: out values untouched. */
  {
    struct bad_range bad[16];
    size_t count = bad_ranges(N, bad), i;
    for (i = 0; i < count; i++) {
      mt_context("compare with bad range offset %zu len %zu", bad[i].offset, bad[i].len);
      order = 99;
      equal = true;
      CHECK_STATUS(memseg_segment_compare(a, bad[i].offset, b, 0, bad[i].len, &order),
                   MEMSEG_STATUS_OUT_OF_BOUNDS);
      CHECK_STATUS(memseg_segment_compare(b, 0, a, bad[i].offset, bad[i].len, &order),
                   MEMSEG_STATUS_OUT_OF_BOUNDS);
      CHECK_EQ(order, 99);
      CHECK_STATUS(memseg_segment_equal(a, bad[i].offset, b, 0, bad[i].len, &equal),
                   MEMSEG_STATUS_OUT_OF_BOUNDS);
      CHECK_STATUS(memseg_segment_equal(b, 0, a, bad[i].offset, bad[i].len, &equal),
                   MEMSEG_STATUS_OUT_OF_BOUNDS);
      CHECK(equal == true);
      equal = false;
      CHECK_STATUS(memseg_segment_equal(a, bad[i].offset, a, bad[i].offset, bad[i].len, &equal),
                   MEMSEG_STATUS_OUT_OF_BOUNDS);
      CHECK(equal == false);
    }
  }
  mt_free(a);
  mt_free(b);
}

static void test_swap(void) {
  memseg_segment a = mt_heap(N);
  memseg_segment b = mt_offheap(N + 3, 0);
  uint8_t a_shadow[N], b_shadow[N + 3], a_model[N], b_model[N + 3];
  size_t ao, bo, len, i;

  /* Between two segments: every range pair, against a model. */
  for (ao = 0; ao <= N + 1; ao += 1) {
    for (bo = 0; bo <= N + 4; bo += 3) {
      for (len = 0; len <= 9; len++) {
        bool fits = ao <= N && len <= N - ao && bo <= N + 3 && len <= N + 3 - bo;
        mt_context("swap a[%zu..+%zu] with b[%zu..]", ao, len, bo);
        mt_pattern(a, a_shadow, sizeof a_shadow, (unsigned)ao);
        mt_pattern(b, b_shadow, sizeof b_shadow, (unsigned)(bo + 50));
        memcpy(a_model, a_shadow, sizeof a_model);
        memcpy(b_model, b_shadow, sizeof b_model);
        if (fits) {
          memcpy(a_model + ao, b_shadow + bo, len);
          memcpy(b_model + bo, a_shadow + ao, len);
        }
        CHECK_STATUS(memseg_segment_swap(a, ao, b, bo, len),
                     fits ? MEMSEG_STATUS_OK : MEMSEG_STATUS_OUT_OF_BOUNDS);
        CHECK_SEGMENT(a, a_model);
        CHECK_SEGMENT(b, b_model);
      }
    }
  }

  /* Within one segment: the same range is a no-op, partial overlap is refused, disjoint
   * ranges (also adjacent ones) are swapped. */
  for (ao = 0; ao <= N; ao++) {
    for (bo = 0; bo <= N; bo++) {
      for (len = 0; len <= 8; len++) {
        bool fits = len <= N - ao && len <= N - bo;
        bool disjoint = ao + len <= bo || bo + len <= ao;
        memseg_status expected;
        mt_context("swap a[%zu..+%zu] with a[%zu..]", ao, len, bo);
        mt_pattern(a, a_shadow, sizeof a_shadow, (unsigned)(ao * 3 + bo));
        memcpy(a_model, a_shadow, sizeof a_model);
        if (!fits) {
          expected = MEMSEG_STATUS_OUT_OF_BOUNDS;
        } else if (len == 0 || ao == bo || disjoint) {
          expected = MEMSEG_STATUS_OK;
          if (ao != bo) {
            for (i = 0; i < len; i++) {
              a_model[ao + i] = a_shadow[bo + i];
              a_model[bo + i] = a_shadow[ao + i];
            }
          }
        } else {
          expected = MEMSEG_STATUS_INVALID_ARGUMENT;
        }
        CHECK_STATUS(memseg_segment_swap(a, ao, a, bo, len), expected);
        CHECK_SEGMENT(a, a_model);
      }
    }
  }

  /* Overflowing ranges. */
  {
    struct bad_range bad[16];
    size_t count = bad_ranges(N, bad);
    mt_pattern(a, a_shadow, sizeof a_shadow, 5);
    mt_pattern(b, b_shadow, sizeof b_shadow, 6);
    for (i = 0; i < count; i++) {
      mt_context("swap with bad range offset %zu len %zu", bad[i].offset, bad[i].len);
      CHECK_STATUS(memseg_segment_swap(a, bad[i].offset, b, 0, bad[i].len),
                   MEMSEG_STATUS_OUT_OF_BOUNDS);
      CHECK_STATUS(memseg_segment_swap(b, 0, a, bad[i].offset, bad[i].len),
                   MEMSEG_STATUS_OUT_OF_BOUNDS);
      CHECK_STATUS(memseg_segment_swap(a, bad[i].offset, a, bad[i].offset, bad[i].len),
                   MEMSEG_STATUS_OUT_OF_BOUNDS);
      CHECK_SEGMENT(a, a_shadow);
      CHECK_SEGMENT(b, b_shadow);
    }
  }
  mt_free(a);
  mt_free(b);
}

static void test_fill(void) {
  memseg_segment segment = mt_heap(N);
  uint8_t shadow[N];
  size_t offset, len;
  struct bad_range bad[16];
  size_t count, i;
  for (offset = 0; offset <= N + 1; offset++) {
    for (len = 0; len <= N + 1; len++) {
      bool fits = offset <= N && len <= N - offset;
      uint8_t value = (uint8_t)(0x80 + offset + len);
      mt_context("fill offset %zu len %zu", offset, len);
      mt_pattern(segment, shadow, sizeof shadow, (unsigned)offset);
      if (fits) {
        memset(shadow + offset, value, len);
      }
      CHECK_STATUS(memseg_segment_fill(segment, offset, len, value),
                   fits ? MEMSEG_STATUS_OK : MEMSEG_STATUS_OUT_OF_BOUNDS);
      CHECK_SEGMENT(segment, shadow);
    }
  }
  mt_pattern(segment, shadow, sizeof shadow, 77);
  count = bad_ranges(N, bad);
  for (i = 0; i < count; i++) {
    mt_context("fill with bad range offset %zu len %zu", bad[i].offset, bad[i].len);
    CHECK_STATUS(memseg_segment_fill(segment, bad[i].offset, bad[i].len, 0),
                 MEMSEG_STATUS_OUT_OF_BOUNDS);
    CHECK_SEGMENT(segment, shadow);
  }
  mt_free(segment);
}

/* The bulk calls over a large segment: whole-segment operations. */
static void test_whole_large_segments(void) {
  size_t size = 32768 + 3;
  memseg_segment a = mt_offheap(size, 0);
  memseg_segment b = mt_heap(size);
  uint8_t *a_shadow = malloc(size), *b_shadow = malloc(size);
  int32_t order = 5;
  bool equal = false;
  CHECK(a_shadow != NULL && b_shadow != NULL);
  mt_pattern(a, a_shadow, size, 1);
  CHECK_OK(memseg_segment_copy(a, 0, b, 0, size));
  CHECK_SEGMENT(b, a_shadow);
  CHECK_OK(memseg_segment_equal(a, 0, b, 0, size, &equal));
  CHECK(equal);
  CHECK_OK(memseg_segment_put_u8(b, size - 1, (uint8_t)(a_shadow[size - 1] + 1)));
  CHECK_OK(memseg_segment_compare(a, 0, b, 0, size, &order));
  CHECK_EQ(order == -1, 1);
  CHECK_OK(memseg_segment_equal(a, 0, b, 0, size, &equal));
  CHECK(!equal);
  mt_pattern(b, b_shadow, size, 2);
  CHECK_OK(memseg_segment_swap(a, 0, b, 0, size));
  CHECK_SEGMENT(a, b_shadow);
  CHECK_SEGMENT(b, a_shadow);
  CHECK_OK(memseg_segment_fill(a, 0, size, 0xAB));
  memset(b_shadow, 0xAB, size);
  CHECK_SEGMENT(a, b_shadow);
  free(a_shadow);
  free(b_shadow);
  mt_free(a);
  mt_free(b);
}

int main(void) {
  size_t live = mt_live_count();
  RUN(test_get_put_bytes_every_range);
  RUN(test_get_put_bytes_null_and_overflow);
  RUN(test_bytes_from_and_into_segment_memory);
  RUN(test_copy_within_every_overlap);
  RUN(test_copy_between_segments);
  RUN(test_foreign_segments_sharing_memory);
  RUN(test_compare_and_equal);
  RUN(test_swap);
  RUN(test_fill);
  RUN(test_whole_large_segments);
  CHECK_EQ(mt_live_count(), live);
  printf("test_bulk: all passed\n");
  return 0;
}
