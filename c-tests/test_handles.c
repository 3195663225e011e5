/*
 * Bad handles on every function family that takes a segment: size, kind, is_freed, raw (and
 * memseg_raw_of), get_bytes, put_bytes, copy, compare, equal, swap, fill, all 72 typed
 * accessors, and free. Each bad handle gives its status, writes no out value and changes no
 * other segment:
 * - a zeroed handle (memseg_segment s = {0}) is MEMSEG_STATUS_INVALID_HANDLE everywhere, except
 *   memseg_segment_free(), where it is a documented no-op returning MEMSEG_STATUS_OK;
 * - a freed handle is MEMSEG_STATUS_STALE_HANDLE (use after free, double free), for heap,
 *   off-heap and foreign segments, and stays stale when its slot is reused by a new segment
 *   (and freeing it again does not free the new one);
 * - forged handles (random bits, a generation from the future, generation 0, an index never
 *   allocated) are MEMSEG_STATUS_INVALID_HANDLE;
 * - a handle with another kind's tag (2 manager, 3 lease, 4 shared resource) is
 *   MEMSEG_STATUS_WRONG_HANDLE_KIND; a tag no kind has (0, 0x7F, 0x80, 0xFF) is
 *   MEMSEG_STATUS_INVALID_HANDLE;
 * - memseg_segment_is_freed() is false while live, true once freed.
 *
 * Forging handles relies on the layout documented in src/ffi/handle.rs (not in the header):
 * kind tag in bits 56..63, generation in bits 32..55, slot index in bits 0..31.
 */
#undef NDEBUG
#include <assert.h>

#include "memseg_inline.h"
#include "memseg_test.h"

#define TAG_SHIFT 56
#define GENERATION_SHIFT 32
#define GENERATION_MASK UINT64_C(0xFFFFFF)
#define INDEX_MASK UINT64_C(0xFFFFFFFF)

static uint64_t tag_of(memseg_segment s) { return s.bits >> TAG_SHIFT; }
static uint64_t generation_of(memseg_segment s) {
  return (s.bits >> GENERATION_SHIFT) & GENERATION_MASK;
}
static uint64_t index_of(memseg_segment s) { return s.bits & INDEX_MASK; }
static memseg_segment with_tag(memseg_segment s, uint64_t tag) {
  memseg_segment out;
  out.bits = (s.bits & ~(UINT64_C(0xFF) << TAG_SHIFT)) | (tag << TAG_SHIFT);
  return out;
}
static memseg_segment with_generation(memseg_segment s, uint64_t generation) {
  memseg_segment out;
  out.bits = (s.bits & ~(GENERATION_MASK << GENERATION_SHIFT)) | (generation << GENERATION_SHIFT);
  return out;
}

static const struct mt_accessor *accessors;
static size_t accessor_count;

/* Every call that takes a segment, with `bad` in each segment position, refuses with
 * `expected` and writes nothing: no out value, no byte of `good`. */
static void check_refused_everywhere(memseg_segment bad, memseg_status expected,
                                     const char *what) {
  memseg_segment good = mt_heap(16);
  uint8_t shadow[16];
  uint8_t buf[8];
  size_t size = 99;
  memseg_memory_kind kind = 99;
  uint8_t *ptr = (uint8_t *)(uintptr_t)0x99;
  memseg_raw raw = {(uint8_t *)(uintptr_t)0x99, 99};
  int32_t order = 99;
  bool flag = true;
  size_t k;
  struct mt_out out;

  mt_pattern(good, shadow, sizeof shadow, 1);
  memset(buf, 0xEE, sizeof buf);
  mt_context("%s: queries", what);
  CHECK_STATUS(memseg_segment_size(bad, &size), expected);
  CHECK_EQ(size, 99);
  CHECK_STATUS(memseg_segment_kind(bad, &kind), expected);
  CHECK_EQ(kind, 99);
  CHECK_STATUS(memseg_segment_raw(bad, &ptr, &size), expected);
  CHECK(ptr == (uint8_t *)(uintptr_t)0x99);
  CHECK_EQ(size, 99);
  CHECK_STATUS(memseg_raw_of(bad, &raw), expected);
  CHECK(raw.ptr == (uint8_t *)(uintptr_t)0x99);
  CHECK_EQ(raw.size, 99);
  if (expected == MEMSEG_STATUS_STALE_HANDLE) {
    flag = false;
    CHECK_OK(memseg_segment_is_freed(bad, &flag));
    CHECK(flag == true);
  } else {
    flag = true;
    CHECK_STATUS(memseg_segment_is_freed(bad, &flag), expected);
    CHECK(flag == true);
  }

  mt_context("%s: bulk", what);
  CHECK_STATUS(memseg_segment_get_bytes(bad, 0, buf, 1), expected);
  CHECK_STATUS(memseg_segment_get_bytes(bad, 0, NULL, 0), expected);
  CHECK_EQ(buf[0], 0xEE);
  CHECK_STATUS(memseg_segment_put_bytes(bad, 0, buf, 1), expected);
  CHECK_STATUS(memseg_segment_put_bytes(bad, 0, NULL, 0), expected);
  CHECK_STATUS(memseg_segment_fill(bad, 0, 1, 0), expected);
  CHECK_STATUS(memseg_segment_fill(bad, 0, 0, 0), expected);
  CHECK_STATUS(memseg_segment_copy(bad, 0, good, 0, 1), expected);
  CHECK_STATUS(memseg_segment_copy(good, 0, bad, 0, 1), expected);
  CHECK_STATUS(memseg_segment_copy(bad, 0, bad, 0, 1), expected);
  CHECK_STATUS(memseg_segment_compare(bad, 0, good, 0, 1, &order), expected);
  CHECK_STATUS(memseg_segment_compare(good, 0, bad, 0, 1, &order), expected);
  CHECK_EQ(order, 99);
  CHECK_STATUS(memseg_segment_equal(bad, 0, good, 0, 1, &flag), expected);
  CHECK_STATUS(memseg_segment_equal(good, 0, bad, 0, 1, &flag), expected);
  CHECK(flag == true);
  flag = false;
  CHECK_STATUS(memseg_segment_equal(bad, 0, bad, 0, 0, &flag), expected);
  CHECK(flag == false);
  CHECK_STATUS(memseg_segment_swap(bad, 0, good, 0, 1), expected);
  CHECK_STATUS(memseg_segment_swap(good, 0, bad, 0, 1), expected);
  CHECK_STATUS(memseg_segment_swap(bad, 0, bad, 0, 1), expected);

  for (k = 0; k < accessor_count; k++) {
    uint8_t value[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    mt_context("%s: %s", what, accessors[k].name);
    mt_out_reset(&out);
    CHECK_STATUS(accessors[k].get(bad, 0, &out.value), expected);
    CHECK(mt_out_untouched(&out));
    CHECK_STATUS(accessors[k].put(bad, 0, value), expected);
  }
  mt_context("%s", what);
  CHECK_SEGMENT(good, shadow);
  mt_free(good);
}

static void test_zero_handle(void) {
  memseg_segment zero = {0};
  size_t live = mt_live_count();
  check_refused_everywhere(zero, MEMSEG_STATUS_INVALID_HANDLE, "zero handle");
  /* Freeing a zero handle is a documented no-op, as often as one likes. */
  CHECK_OK(memseg_segment_free(zero));
  CHECK_OK(memseg_segment_free(zero));
  CHECK_EQ(mt_live_count(), live);
}

static void check_freed(memseg_segment segment, const char *what) {
  size_t live = mt_live_count();
  bool freed = true;
  CHECK_OK(memseg_segment_is_freed(segment, &freed));
  CHECK(freed == false);
  mt_free(segment);
  CHECK_EQ(mt_live_count(), live - 1);
  check_refused_everywhere(segment, MEMSEG_STATUS_STALE_HANDLE, what);
  /* Double (and triple) free: stale, and nothing else is freed. */
  CHECK_STATUS(memseg_segment_free(segment), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_segment_free(segment), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_EQ(mt_live_count(), live - 1);
}

static int release_calls;
static void count_release(void *ctx, void *ptr, size_t size) {
  (void)ctx;
  (void)ptr;
  (void)size;
  release_calls++;
}

static void test_freed_handles(void) {
  static uint8_t host[64];
  memseg_segment foreign;
  check_freed(mt_heap(32), "freed heap segment");
  check_freed(mt_offheap(32, 0), "freed off-heap segment");
  release_calls = 0;
  CHECK_OK(memseg_segment_wrap(host, sizeof host, count_release, NULL, &foreign));
  check_freed(foreign, "freed foreign segment");
  CHECK_EQ(release_calls, 1); /* a double free does not release again */
}

/* The freed handle's slot is given to a new segment: the old handle stays stale and cannot
 * reach (or free) the new segment. */
static void test_reused_slot(void) {
  memseg_segment old = mt_heap(16);
  memseg_segment current = {0};
  uint8_t shadow[16];
  int attempts = 0;
  bool freed = false;
  mt_free(old);
  for (;;) {
    memseg_segment next = mt_heap(16);
    CHECK(next.bits != old.bits);
    CHECK_STATUS(memseg_segment_size(old, &(size_t){0}), MEMSEG_STATUS_STALE_HANDLE);
    if (index_of(next) == index_of(old)) {
      current = next;
      break;
    }
    mt_free(next);
    attempts++;
    CHECK(attempts < 1000000); /* the slot must come back eventually */
  }
  CHECK_EQ(tag_of(current), tag_of(old));
  CHECK(generation_of(current) != generation_of(old));
  CHECK_OK(memseg_segment_is_freed(current, &freed));
  CHECK(freed == false);
  CHECK_OK(memseg_segment_is_freed(old, &freed));
  CHECK(freed == true);

  mt_pattern(current, shadow, sizeof shadow, 4);
  check_refused_everywhere(old, MEMSEG_STATUS_STALE_HANDLE, "handle of a reused slot");
  CHECK_STATUS(memseg_segment_free(old), MEMSEG_STATUS_STALE_HANDLE);
  /* The new segment is untouched and still live. */
  CHECK_SEGMENT(current, shadow);
  CHECK_EQ(mt_size(current), 16);
  mt_free(current);
  CHECK_STATUS(memseg_segment_free(current), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_segment_free(old), MEMSEG_STATUS_STALE_HANDLE);
}

static void test_forged_handles(void) {
  memseg_segment live_segment = mt_heap(16);
  uint8_t shadow[16];
  size_t live;
  uint64_t random = 7;
  int i;
  mt_pattern(live_segment, shadow, sizeof shadow, 9);
  live = mt_live_count();
  CHECK_EQ(tag_of(live_segment), 1);

  /* A generation from the future of a live slot; generation 0, which is never issued. */
  check_refused_everywhere(with_generation(live_segment, generation_of(live_segment) + 1),
                           MEMSEG_STATUS_INVALID_HANDLE, "next generation of a live slot");
  check_refused_everywhere(with_generation(live_segment, GENERATION_MASK),
                           MEMSEG_STATUS_INVALID_HANDLE, "last generation of a live slot");
  check_refused_everywhere(with_generation(live_segment, 0), MEMSEG_STATUS_INVALID_HANDLE,
                           "generation 0");
  /* A slot index never allocated. */
  {
    memseg_segment forged;
    forged.bits = live_segment.bits | UINT64_C(0xFFFFFF00);
    check_refused_everywhere(forged, MEMSEG_STATUS_INVALID_HANDLE, "index never allocated");
  }
  /* Random bits: with an unknown tag (0x80 and up), or with the segment tag and an index that
   * no table holds (the tables would need 2^31 slots). */
  for (i = 0; i < 200; i++) {
    memseg_segment forged;
    uint64_t tag;
    char what[64];
    forged.bits = mt_next_random(&random);
    tag = tag_of(forged);
    if (i % 2 == 0) {
      forged = with_tag(forged, 1);
      forged.bits |= UINT64_C(0x80000000);
    } else {
      /* Tags from 0x80 up name no kind (the low tags are the kinds of the layers). */
      forged = with_tag(forged, tag | 0x80);
    }
    snprintf(what, sizeof what, "random handle 0x%016" PRIx64, forged.bits);
    if (i < 20) {
      check_refused_everywhere(forged, MEMSEG_STATUS_INVALID_HANDLE, what);
    } else {
      size_t size = 99;
      mt_context("%s", what);
      CHECK_STATUS(memseg_segment_size(forged, &size), MEMSEG_STATUS_INVALID_HANDLE);
      CHECK_EQ(size, 99);
    }
    mt_context("%s", what);
    CHECK_STATUS(memseg_segment_free(forged), MEMSEG_STATUS_INVALID_HANDLE);
  }
  /* Freeing forged handles freed nothing. */
  CHECK_EQ(mt_live_count(), live);
  CHECK_STATUS(memseg_segment_free(with_generation(live_segment, 0)),
               MEMSEG_STATUS_INVALID_HANDLE);
  CHECK_STATUS(memseg_segment_free(with_generation(live_segment, generation_of(live_segment) + 1)),
               MEMSEG_STATUS_INVALID_HANDLE);
  CHECK_EQ(mt_live_count(), live);
  CHECK_SEGMENT(live_segment, shadow);
  mt_free(live_segment);
}

static void test_wrong_kind_tags(void) {
  /* Tags 2, 3 and 4 are the manager, lease and shared resource kinds: a segment call refuses
   * them as the wrong kind. The others are no kind's: never issued. */
  static const uint64_t tags[] = {0, 2, 3, 4, 0x7F, 0x80, 0xFF};
  memseg_segment segment = mt_heap(16);
  uint8_t shadow[16];
  size_t live, i;
  mt_pattern(segment, shadow, sizeof shadow, 2);
  live = mt_live_count();
  for (i = 0; i < sizeof tags / sizeof tags[0]; i++) {
    char what[64];
    memseg_segment other = with_tag(segment, tags[i]);
    snprintf(what, sizeof what, "tag %" PRIu64 " on a live segment's handle", tags[i]);
    memseg_status expected = (tags[i] >= 2 && tags[i] <= 4) ? MEMSEG_STATUS_WRONG_HANDLE_KIND
                                                           : MEMSEG_STATUS_INVALID_HANDLE;
    check_refused_everywhere(other, expected, what);
    CHECK_STATUS(memseg_segment_free(other), expected);
    CHECK_EQ(mt_live_count(), live);
  }
  CHECK_SEGMENT(segment, shadow);
  mt_free(segment);
  /* On a freed handle too: the tag is checked before the generation. */
  check_refused_everywhere(with_tag(segment, 2), MEMSEG_STATUS_WRONG_HANDLE_KIND,
                           "tag 2 on a freed handle");
  check_refused_everywhere(with_tag(segment, 0x7E), MEMSEG_STATUS_INVALID_HANDLE,
                           "tag 0x7E on a freed handle");
}

static void test_is_freed(void) {
  memseg_segment a = mt_heap(1), b = mt_offheap(1, 0);
  bool freed = true;
  CHECK_OK(memseg_segment_is_freed(a, &freed));
  CHECK(!freed);
  freed = true;
  CHECK_OK(memseg_segment_is_freed(b, &freed));
  CHECK(!freed);
  mt_free(a);
  CHECK_OK(memseg_segment_is_freed(a, &freed));
  CHECK(freed);
  freed = true;
  CHECK_OK(memseg_segment_is_freed(b, &freed));
  CHECK(!freed);
  mt_free(b);
  CHECK_OK(memseg_segment_is_freed(b, &freed));
  CHECK(freed);
  CHECK_STATUS(memseg_segment_is_freed(b, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
}

/*
 * A handle that was never issued is MEMSEG_STATUS_INVALID_HANDLE ("a handle that was never
 * issued"), also when it names a slot that exists: here a generation two after a freed
 * handle's, which is not issued until the slot is reused twice (a freed slot is the next one
 * handed out, so the check's own segment takes the generation right after). (memseg 0.1.0
 * calls it stale, and memseg_segment_is_freed() says it was freed: see refuse() in
 * src/ffi/handle.rs.)
 */
static void test_never_issued_generation_of_existing_slot(void) {
  memseg_segment segment = mt_heap(8);
  memseg_segment next;
  mt_free(segment);
  next = with_generation(segment, generation_of(segment) + 2);
  check_refused_everywhere(next, MEMSEG_STATUS_INVALID_HANDLE,
                           "a later generation of a freed slot (never issued)");
  CHECK_STATUS(memseg_segment_free(next), MEMSEG_STATUS_INVALID_HANDLE);
}

int main(void) {
  size_t live = mt_live_count();
  accessor_count = mt_accessors(&accessors);
  CHECK_EQ(accessor_count, MT_TYPED_COUNT);
  RUN(test_zero_handle);
  RUN(test_is_freed);
  RUN(test_freed_handles);
  RUN(test_reused_slot);
  RUN(test_forged_handles);
  RUN(test_wrong_kind_tags);
  RUN(test_never_issued_generation_of_existing_slot);
  CHECK_EQ(mt_live_count(), live);
  printf("test_handles: all passed\n");
  return 0;
}
