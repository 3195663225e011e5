/*
 * memseg_test.h: the small shared helper of the C tests in c-tests/.
 *
 * - CHECK(cond), CHECK_STATUS(call, status), CHECK_OK(call), CHECK_EQ(a, b),
 *   CHECK_MEM(a, b, n), CHECK_STR(a, b): on failure they print where, what was expected and
 *   what came instead (status names, values, the first differing byte, the calling thread's
 *   last memseg error message and the context set with mt_context()), then abort().
 *   They do not depend on NDEBUG.
 * - RUN(fn): runs one test function and checks that memseg_segment_live_count() is back to
 *   its starting value afterwards (a leak check per test).
 * - MT_TYPED(X): an X-macro over every (type, byte order) of the typed accessors, and
 *   mt_accessors(): a table of every typed getter and setter behind one signature, so that a
 *   test can run the same checks over all 36 of them (and, when memseg_inline.h is included
 *   before this header, over the inline accessors too).
 *
 * Each test program is one translation unit that includes this header once.
 */

#ifndef MEMSEG_TEST_H
#define MEMSEG_TEST_H

#undef NDEBUG
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memseg.h"

/* ---------------------------------------------------------------------------------------- */
/* Failure reporting                                                                        */

/* What the test is doing right now, printed with a failure (per thread). */
static _Thread_local char mt_context_text[256];

static inline void mt_context(const char *format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(mt_context_text, sizeof mt_context_text, format, args);
  va_end(args);
}

static inline void mt_fail_begin(const char *file, int line) {
  fflush(stdout);
  fprintf(stderr, "%s:%d: FAILED", file, line);
  if (mt_context_text[0] != '\0') {
    fprintf(stderr, " [%s]", mt_context_text);
  }
  fprintf(stderr, "\n  ");
}

static inline void mt_fail_end(void) {
  char message[512];
  size_t len = memseg_last_error_message(message, sizeof message);
  fprintf(stderr, "\n  last memseg error on this thread: \"%s\"%s\n", message,
          len >= sizeof message ? " (truncated)" : "");
  fflush(stderr);
  abort();
}

static inline const char *mt_status_name(memseg_status status) {
  return memseg_status_name((int32_t)status);
}

#define CHECK(cond)                                                                         \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      mt_fail_begin(__FILE__, __LINE__);                                                    \
      fprintf(stderr, "CHECK(%s)", #cond);                                                  \
      mt_fail_end();                                                                        \
    }                                                                                       \
  } while (0)

#define CHECK_STATUS(call, expected)                                                        \
  do {                                                                                      \
    memseg_status mt_got_ = (call);                                                         \
    memseg_status mt_want_ = (expected);                                                    \
    if (mt_got_ != mt_want_) {                                                              \
      mt_fail_begin(__FILE__, __LINE__);                                                    \
      fprintf(stderr, "%s\n  returned %s (%d), expected %s (%d)", #call,                    \
              mt_status_name(mt_got_), (int)mt_got_, mt_status_name(mt_want_),              \
              (int)mt_want_);                                                               \
      mt_fail_end();                                                                        \
    }                                                                                       \
  } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, MEMSEG_STATUS_OK)

/* Integers (and pointers converted to uintptr_t) compared as uintmax_t. */
#define CHECK_EQ(a, b)                                                                      \
  do {                                                                                      \
    uintmax_t mt_a_ = (uintmax_t)(a);                                                       \
    uintmax_t mt_b_ = (uintmax_t)(b);                                                       \
    if (mt_a_ != mt_b_) {                                                                   \
      mt_fail_begin(__FILE__, __LINE__);                                                    \
      fprintf(stderr, "CHECK_EQ(%s, %s)\n  %ju (0x%jx) != %ju (0x%jx)", #a, #b, mt_a_,      \
              mt_a_, mt_b_, mt_b_);                                                         \
      mt_fail_end();                                                                        \
    }                                                                                       \
  } while (0)

static inline void mt_check_mem(const char *file, int line, const char *what, const void *a,
                                const void *b, size_t n) {
  const unsigned char *x = (const unsigned char *)a;
  const unsigned char *y = (const unsigned char *)b;
  size_t i;
  for (i = 0; i < n; i++) {
    if (x[i] != y[i]) {
      mt_fail_begin(file, line);
      fprintf(stderr, "CHECK_MEM(%s): %zu bytes differ first at byte %zu: 0x%02x != 0x%02x",
              what, n, i, x[i], y[i]);
      mt_fail_end();
    }
  }
}

#define CHECK_MEM(a, b, n) mt_check_mem(__FILE__, __LINE__, #a ", " #b ", " #n, (a), (b), (n))

#define CHECK_STR(a, b)                                                                     \
  do {                                                                                      \
    const char *mt_sa_ = (a);                                                               \
    const char *mt_sb_ = (b);                                                               \
    if (mt_sa_ == NULL || mt_sb_ == NULL || strcmp(mt_sa_, mt_sb_) != 0) {                  \
      mt_fail_begin(__FILE__, __LINE__);                                                    \
      fprintf(stderr, "CHECK_STR(%s, %s)\n  \"%s\" != \"%s\"", #a, #b,                      \
              mt_sa_ ? mt_sa_ : "(null)", mt_sb_ ? mt_sb_ : "(null)");                      \
      mt_fail_end();                                                                        \
    }                                                                                       \
  } while (0)

/* ---------------------------------------------------------------------------------------- */
/* Leak check and small helpers                                                             */

static inline size_t mt_live_count(void) {
  size_t count = (size_t)-1;
  CHECK_OK(memseg_segment_live_count(&count));
  return count;
}

/* Runs `fn` and checks that every segment it made was freed. */
#define RUN(fn)                                                                             \
  do {                                                                                      \
    size_t mt_live_before_ = mt_live_count();                                               \
    mt_context("%s", #fn);                                                                  \
    fn();                                                                                   \
    mt_context("%s (leak check)", #fn);                                                     \
    CHECK_EQ(mt_live_count(), mt_live_before_);                                             \
    mt_context("%s", "");                                                                   \
    printf("ok %s\n", #fn);                                                                 \
    fflush(stdout);                                                                         \
  } while (0)

static inline memseg_segment mt_heap(size_t size) {
  memseg_segment segment = {0};
  CHECK_OK(memseg_segment_new_heap(size, &segment));
  CHECK(segment.bits != 0);
  return segment;
}

static inline memseg_segment mt_offheap(size_t size, uint32_t flags) {
  memseg_segment segment = {0};
  CHECK_OK(memseg_segment_new_offheap(size, flags, &segment));
  CHECK(segment.bits != 0);
  return segment;
}

static inline memseg_segment mt_wrap(void *ptr, size_t size) {
  memseg_segment segment = {0};
  CHECK_OK(memseg_segment_wrap(ptr, size, NULL, NULL, &segment));
  CHECK(segment.bits != 0);
  return segment;
}

static inline void mt_free(memseg_segment segment) { CHECK_OK(memseg_segment_free(segment)); }

static inline size_t mt_size(memseg_segment segment) {
  size_t size = 0;
  CHECK_OK(memseg_segment_size(segment, &size));
  return size;
}

/* Copies the whole segment into `dst`, which holds at least its size. */
static inline void mt_read_all(memseg_segment segment, uint8_t *dst) {
  CHECK_OK(memseg_segment_get_bytes(segment, 0, dst, mt_size(segment)));
}

/* Fills the segment with a pattern that depends on `seed` and mirrors it into `shadow`, which
 * has the segment's size. */
static inline void mt_pattern(memseg_segment segment, uint8_t *shadow, size_t size,
                              unsigned seed) {
  size_t i;
  CHECK_EQ(mt_size(segment), size);
  for (i = 0; i < size; i++) {
    shadow[i] = (uint8_t)(i * 131u + seed * 29u + 7u + (i >> 8));
  }
  CHECK_OK(memseg_segment_put_bytes(segment, 0, shadow, size));
}

/* Checks that the segment's bytes are exactly `expected`. */
#define CHECK_SEGMENT(segment, expected)                                                    \
  do {                                                                                      \
    size_t mt_n_ = mt_size(segment);                                                        \
    uint8_t *mt_now_ = (uint8_t *)malloc(mt_n_);                                            \
    CHECK(mt_now_ != NULL);                                                                 \
    mt_read_all((segment), mt_now_);                                                        \
    mt_check_mem(__FILE__, __LINE__, "segment " #segment " holds " #expected, mt_now_,      \
                 (expected), mt_n_);                                                        \
    free(mt_now_);                                                                          \
  } while (0)

static inline bool mt_host_is_little_endian(void) {
  const uint16_t one = 1;
  unsigned char first;
  memcpy(&first, &one, 1);
  return first == 1;
}

/* A deterministic pseudo-random sequence (SplitMix64), for forged handles and data. */
static inline uint64_t mt_next_random(uint64_t *state) {
  uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

/* ---------------------------------------------------------------------------------------- */
/* Every typed accessor behind one signature                                                */


enum mt_order { MT_NATIVE, MT_LITTLE, MT_BIG };

/* What kind of value a type holds. */
enum mt_class { MT_INTEGER, MT_BOOL, MT_FLOAT };

/*
 * MT_TYPED(X) calls
 *   X(name, type, ctype, size, cls, order, get, put, raw_get, raw_put, mt_get, mt_put,
 *     mt_raw_get, mt_raw_put)
 * once for each of the 12 types and 3 byte orders of the typed accessors: `name` ("u16_be")
 * and `type` ("u16") are strings, `get`/`put` the ABI functions
 * (memseg_segment_get_u16_be), `raw_get`/`raw_put` the inline ones (memseg_raw_get_u16_be),
 * and the `mt_` names those of the wrappers this header defines. Every function name is
 * pasted where the type name is still a bare token, because `bool` is a macro.
 */
#define MT_ORDER(X, name, ctype, size, cls, order, sfx)                                     \
  X(#name #sfx, #name, ctype, size, cls, order, memseg_segment_get_##name##sfx,             \
    memseg_segment_put_##name##sfx, memseg_raw_get_##name##sfx, memseg_raw_put_##name##sfx, \
    mt_get_##name##sfx, mt_put_##name##sfx, mt_raw_get_##name##sfx, mt_raw_put_##name##sfx)
#define MT_TYPED(X)                                                                         \
  MT_ORDER(X, u8, uint8_t, 1, MT_INTEGER, MT_NATIVE, )                                      \
  MT_ORDER(X, u8, uint8_t, 1, MT_INTEGER, MT_LITTLE, _le)                                   \
  MT_ORDER(X, u8, uint8_t, 1, MT_INTEGER, MT_BIG, _be)                                      \
  MT_ORDER(X, i8, int8_t, 1, MT_INTEGER, MT_NATIVE, )                                       \
  MT_ORDER(X, i8, int8_t, 1, MT_INTEGER, MT_LITTLE, _le)                                    \
  MT_ORDER(X, i8, int8_t, 1, MT_INTEGER, MT_BIG, _be)                                       \
  MT_ORDER(X, bool, bool, 1, MT_BOOL, MT_NATIVE, )                                          \
  MT_ORDER(X, bool, bool, 1, MT_BOOL, MT_LITTLE, _le)                                       \
  MT_ORDER(X, bool, bool, 1, MT_BOOL, MT_BIG, _be)                                          \
  MT_ORDER(X, u16, uint16_t, 2, MT_INTEGER, MT_NATIVE, )                                    \
  MT_ORDER(X, u16, uint16_t, 2, MT_INTEGER, MT_LITTLE, _le)                                 \
  MT_ORDER(X, u16, uint16_t, 2, MT_INTEGER, MT_BIG, _be)                                    \
  MT_ORDER(X, i16, int16_t, 2, MT_INTEGER, MT_NATIVE, )                                     \
  MT_ORDER(X, i16, int16_t, 2, MT_INTEGER, MT_LITTLE, _le)                                  \
  MT_ORDER(X, i16, int16_t, 2, MT_INTEGER, MT_BIG, _be)                                     \
  MT_ORDER(X, char, uint16_t, 2, MT_INTEGER, MT_NATIVE, )                                   \
  MT_ORDER(X, char, uint16_t, 2, MT_INTEGER, MT_LITTLE, _le)                                \
  MT_ORDER(X, char, uint16_t, 2, MT_INTEGER, MT_BIG, _be)                                   \
  MT_ORDER(X, u32, uint32_t, 4, MT_INTEGER, MT_NATIVE, )                                    \
  MT_ORDER(X, u32, uint32_t, 4, MT_INTEGER, MT_LITTLE, _le)                                 \
  MT_ORDER(X, u32, uint32_t, 4, MT_INTEGER, MT_BIG, _be)                                    \
  MT_ORDER(X, i32, int32_t, 4, MT_INTEGER, MT_NATIVE, )                                     \
  MT_ORDER(X, i32, int32_t, 4, MT_INTEGER, MT_LITTLE, _le)                                  \
  MT_ORDER(X, i32, int32_t, 4, MT_INTEGER, MT_BIG, _be)                                     \
  MT_ORDER(X, u64, uint64_t, 8, MT_INTEGER, MT_NATIVE, )                                    \
  MT_ORDER(X, u64, uint64_t, 8, MT_INTEGER, MT_LITTLE, _le)                                 \
  MT_ORDER(X, u64, uint64_t, 8, MT_INTEGER, MT_BIG, _be)                                    \
  MT_ORDER(X, i64, int64_t, 8, MT_INTEGER, MT_NATIVE, )                                     \
  MT_ORDER(X, i64, int64_t, 8, MT_INTEGER, MT_LITTLE, _le)                                  \
  MT_ORDER(X, i64, int64_t, 8, MT_INTEGER, MT_BIG, _be)                                     \
  MT_ORDER(X, f32, float, 4, MT_FLOAT, MT_NATIVE, )                                         \
  MT_ORDER(X, f32, float, 4, MT_FLOAT, MT_LITTLE, _le)                                      \
  MT_ORDER(X, f32, float, 4, MT_FLOAT, MT_BIG, _be)                                         \
  MT_ORDER(X, f64, double, 8, MT_FLOAT, MT_NATIVE, )                                        \
  MT_ORDER(X, f64, double, 8, MT_FLOAT, MT_LITTLE, _le)                                     \
  MT_ORDER(X, f64, double, 8, MT_FLOAT, MT_BIG, _be)
#define MT_TYPED_COUNT 36

typedef memseg_status (*mt_get_fn)(memseg_segment segment, size_t offset, void *out_value);
typedef memseg_status (*mt_put_fn)(memseg_segment segment, size_t offset, const void *value);

#ifdef MEMSEG_INLINE_H
typedef memseg_status (*mt_raw_get_fn)(memseg_raw raw, size_t offset, void *out_value);
typedef memseg_status (*mt_raw_put_fn)(memseg_raw raw, size_t offset, const void *value);
#endif

struct mt_accessor {
  const char *name; /* "u16_be" */
  const char *type; /* "u16" */
  size_t size;      /* bytes read and written */
  enum mt_class class_;
  enum mt_order order;
  mt_get_fn get; /* memseg_segment_get_<name>, the value in the C type's representation */
  mt_put_fn put; /* memseg_segment_put_<name>, from the C type's representation */
#ifdef MEMSEG_INLINE_H
  mt_raw_get_fn raw_get; /* memseg_raw_get_<name> */
  mt_raw_put_fn raw_put; /* memseg_raw_put_<name> */
#endif
};

/* `out_value` is passed to the accessor as a `ctype *`; `value` is read with memcpy. */
#define MT_DEFINE_WRAPPERS(name, type, ctype, size, cls, order, get, put, raw_get, raw_put, \
                           mt_get, mt_put, mt_raw_get, mt_raw_put)                          \
  _Static_assert(sizeof(ctype) == (size), "size of " name);                                 \
  static inline memseg_status mt_get(memseg_segment segment, size_t offset,                 \
                                     void *out_value) {                                     \
    return get(segment, offset, (ctype *)out_value);                                        \
  }                                                                                         \
  static inline memseg_status mt_put(memseg_segment segment, size_t offset,                 \
                                     const void *value) {                                   \
    ctype v;                                                                                \
    memcpy(&v, value, sizeof v);                                                            \
    return put(segment, offset, v);                                                         \
  }                                                                                         \
  MT_DEFINE_RAW_WRAPPERS(ctype, raw_get, raw_put, mt_raw_get, mt_raw_put)

#ifdef MEMSEG_INLINE_H
#define MT_DEFINE_RAW_WRAPPERS(ctype, raw_get, raw_put, mt_raw_get, mt_raw_put)             \
  static inline memseg_status mt_raw_get(memseg_raw raw, size_t offset, void *out_value) {  \
    return raw_get(raw, offset, (ctype *)out_value);                                        \
  }                                                                                         \
  static inline memseg_status mt_raw_put(memseg_raw raw, size_t offset, const void *value) { \
    ctype v;                                                                                \
    memcpy(&v, value, sizeof v);                                                            \
    return raw_put(raw, offset, v);                                                         \
  }
#define MT_RAW_ENTRY(mt_raw_get, mt_raw_put) , mt_raw_get, mt_raw_put
#else
#define MT_DEFINE_RAW_WRAPPERS(ctype, raw_get, raw_put, mt_raw_get, mt_raw_put)
#define MT_RAW_ENTRY(mt_raw_get, mt_raw_put)
#endif

MT_TYPED(MT_DEFINE_WRAPPERS)

#define MT_ACCESSOR_ENTRY(name, type, ctype, size, cls, order, get, put, raw_get, raw_put,  \
                          mt_get, mt_put, mt_raw_get, mt_raw_put)                           \
  {name, type, size, cls, order, mt_get, mt_put MT_RAW_ENTRY(mt_raw_get, mt_raw_put)},

/* Writes the table of every typed accessor to `*out` and returns its length (36). */
static inline size_t mt_accessors(const struct mt_accessor **out) {
  static const struct mt_accessor table[] = {MT_TYPED(MT_ACCESSOR_ENTRY)};
  *out = table;
  return sizeof table / sizeof table[0];
}

/* Whether values written in `a`'s byte order come back reversed when read in `b`'s. */
static inline bool mt_orders_differ(enum mt_order a, enum mt_order b) {
  bool little_a = a == MT_LITTLE || (a == MT_NATIVE && mt_host_is_little_endian());
  bool little_b = b == MT_LITTLE || (b == MT_NATIVE && mt_host_is_little_endian());
  return little_a != little_b;
}

/*
 * The bytes an accessor of byte order `order` stores for a value whose C representation is
 * `value` (`size` bytes): the same bytes in native order, reversed where the order is not
 * the machine's.
 */
static inline void mt_encode(enum mt_order order, const uint8_t *value, size_t size,
                             uint8_t *out) {
  size_t i;
  bool reverse = mt_orders_differ(order, MT_NATIVE);
  for (i = 0; i < size; i++) {
    out[i] = reverse ? value[size - 1 - i] : value[i];
  }
}

/* An out value with guard bytes behind it, all preset to a sentinel. */
struct mt_out {
  union {
    uint64_t u64;
    double f64;
    unsigned char bytes[8];
  } value;
  unsigned char guard[8];
};

#define MT_SENTINEL 0xA5

static inline void mt_out_reset(struct mt_out *out) {
  memset(out, MT_SENTINEL, sizeof *out);
}

static inline bool mt_out_untouched(const struct mt_out *out) {
  const unsigned char *bytes = (const unsigned char *)out;
  size_t i;
  for (i = 0; i < sizeof *out; i++) {
    if (bytes[i] != MT_SENTINEL) {
      return false;
    }
  }
  return true;
}

/* Whether only the first `size` bytes of the out value were written. */
static inline bool mt_out_guard_intact(const struct mt_out *out, size_t size) {
  const unsigned char *bytes = (const unsigned char *)out;
  size_t i;
  for (i = size; i < sizeof *out; i++) {
    if (bytes[i] != MT_SENTINEL) {
      return false;
    }
  }
  return true;
}

#endif /* MEMSEG_TEST_H */
