/*
 * memseg: managed memory for data engines.
 * SPDX-License-Identifier: Apache-2.0
 *
 * memseg_inline.h: the fast path. Static inline, bounds-checked typed accessors over the
 * memory a segment lends with memseg_segment_raw(), so that a hot loop pays no function
 * call per access: the compiler inlines a bounds check, an unaligned load or store and
 * (where the byte order differs from the machine's) a byte swap.
 *
 *   memseg_raw raw;
 *   if (memseg_raw_of(segment, &raw) != MEMSEG_STATUS_OK) { ... }
 *   uint64_t v;
 *   memseg_raw_get_u64_be(raw, offset, &v);   // same checks and results as
 *                                             // memseg_segment_get_u64_be(segment, offset, &v)
 *
 * Every accessor returns MEMSEG_STATUS_OK, or MEMSEG_STATUS_OUT_OF_BOUNDS when
 * offset + sizeof(value) > raw.size (checked without overflow); the out value is written only
 * on success, and nothing is written on failure. Unlike the ABI calls, these do not set the
 * thread's last error message.
 *
 * Spans, for loops over many values: memseg_raw_span64(raw, offset, count, &span) checks once
 * that `count` 8-byte values from `offset` lie in `raw`; memseg_span64_get_u64_be(span, i, &v)
 * then takes an index and checks only `i < span.count`, which the compiler proves from a loop
 * `for (i = 0; i < span.count; i++)` and drops (see "Spans" below).
 *
 * Lifetime: a memseg_raw (and a span of it) is valid until its segment is freed; a view's
 * window until the view's next call. Using it after that is the one misuse memseg cannot
 * detect. Thread safety: as the segment's bytes (not synchronized).
 *
 * Hand-written (not generated); include after or instead of memseg.h.
 */

#ifndef MEMSEG_INLINE_H
#define MEMSEG_INLINE_H

#include <string.h>

#include "memseg.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A segment's memory, lent by memseg_raw_of(): its first byte and its size. */
typedef struct memseg_raw {
  /** First byte of the segment. */
  uint8_t *ptr;
  /** Size of the segment in bytes. */
  size_t size;
} memseg_raw;

/** Lends the memory of `segment` into `*out_raw` (see memseg_segment_raw()). */
static inline memseg_status memseg_raw_of(memseg_segment segment, memseg_raw *out_raw) {
  uint8_t *ptr;
  size_t size;
  memseg_status status;
  if (out_raw == NULL) {
    return MEMSEG_STATUS_NULL_ARGUMENT;
  }
  status = memseg_segment_raw(segment, &ptr, &size);
  if (status == MEMSEG_STATUS_OK) {
    out_raw->ptr = ptr;
    out_raw->size = size;
  }
  return status;
}

/** Whether `[offset, offset + len)` lies inside `raw`, computed without overflow. */
static inline bool memseg_raw_in_bounds(memseg_raw raw, size_t offset, size_t len) {
  return offset <= raw.size && raw.size - offset >= len;
}

#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define MEMSEG_HOST_BIG_ENDIAN 1
#else
/* Little-endian: GCC and Clang on such targets, and every target MSVC supports. */
#define MEMSEG_HOST_BIG_ENDIAN 0
#endif

static inline uint8_t memseg_bswap8(uint8_t v) { return v; }
#if defined(__GNUC__) || defined(__clang__)
static inline uint16_t memseg_bswap16(uint16_t v) { return __builtin_bswap16(v); }
static inline uint32_t memseg_bswap32(uint32_t v) { return __builtin_bswap32(v); }
static inline uint64_t memseg_bswap64(uint64_t v) { return __builtin_bswap64(v); }
#else
/* Portable shifts; optimizing compilers turn these into a single byte-swap instruction. */
static inline uint16_t memseg_bswap16(uint16_t v) { return (uint16_t)((v >> 8) | (v << 8)); }
static inline uint32_t memseg_bswap32(uint32_t v) {
  return ((v & 0xFF000000u) >> 24) | ((v & 0x00FF0000u) >> 8) | ((v & 0x0000FF00u) << 8) |
         ((v & 0x000000FFu) << 24);
}
static inline uint64_t memseg_bswap64(uint64_t v) {
  return ((uint64_t)memseg_bswap32((uint32_t)v) << 32) | memseg_bswap32((uint32_t)(v >> 32));
}
#endif

/*
 * Spans: `count` values of one width (8, 16, 32 or 64 bits) in a row, checked once.
 *
 * The accessors above check every access against the byte size, and a compiler cannot drop
 * that check in a loop that counts values (for it `off <= size - 8` is not implied by
 * `i < size / 8`): GCC 12 keeps two compare-and-branches per value beside the loop's own.
 * A span moves the range check to one call and indexes by value:
 *
 *   memseg_span64 span;
 *   if (memseg_raw_span64(raw, offset, count, &span) != MEMSEG_STATUS_OK) { ... }
 *   for (i = 0; i < span.count; i++) {
 *     uint64_t v;
 *     if (memseg_span64_get_u64_be(span, i, &v) != MEMSEG_STATUS_OK) { ... }
 *     sum += v;
 *   }
 *
 * memseg_raw_span<W>(raw, offset, count, &span): MEMSEG_STATUS_NULL_ARGUMENT for a NULL
 * out_span or raw.ptr; MEMSEG_STATUS_OUT_OF_BOUNDS unless offset <= raw.size and count values
 * of W bits fit in raw.size - offset (compared by division, so count * W / 8 never
 * overflows). *out_span is written only on success.
 *
 * memseg_span<W>_get_<type>[_le|_be](span, index, &out_value) and
 * memseg_span<W>_put_<type>[_le|_be](span, index, value), for every type of that width (as
 * the accessors above; bool is a span8 type): value `index` of the span, that is the bytes at
 * span.ptr + index * W / 8. MEMSEG_STATUS_OUT_OF_BOUNDS unless index < span.count, and
 * MEMSEG_STATUS_NULL_ARGUMENT for a NULL out_value; nothing is written on failure. Each
 * still checks its index, so no index reads or writes outside the span; in a loop whose
 * condition is `index < span.count` the compiler proves the check and removes it, and the
 * loop is the plain load (+ byte swap) loop. (Where the compiler cannot see that the loop's
 * bound is at most span.count, the check stays: one compare-and-branch per value.)
 *
 * Build a span of the memory a view's window lends (memseg_input_view_window() /
 * memseg_output_view_window()) as a memseg_raw of its pointer and size.
 */
#define MEMSEG_SPAN_DEFINE(width)                                                               \
  /** `count` values of width bits from `ptr`, checked by memseg_raw_span##width(). */          \
  typedef struct memseg_span##width {                                                           \
    /** The first byte of the first value. */                                                   \
    uint8_t *ptr;                                                                               \
    /** How many values. */                                                                     \
    size_t count;                                                                               \
  } memseg_span##width;                                                                         \
  /** The `count` values of width bits from `offset` of `raw` as a span (see "Spans"). */       \
  static inline memseg_status memseg_raw_span##width(                                           \
      memseg_raw raw, size_t offset, size_t count, memseg_span##width *out_span) {              \
    if (out_span == NULL || raw.ptr == NULL) {                                                  \
      return MEMSEG_STATUS_NULL_ARGUMENT;                                                       \
    }                                                                                           \
    if (offset > raw.size || (raw.size - offset) / ((width) / 8) < count) {                     \
      return MEMSEG_STATUS_OUT_OF_BOUNDS;                                                       \
    }                                                                                           \
    out_span->ptr = raw.ptr + offset;                                                           \
    out_span->count = count;                                                                    \
    return MEMSEG_STATUS_OK;                                                                    \
  }

MEMSEG_SPAN_DEFINE(8)
MEMSEG_SPAN_DEFINE(16)
MEMSEG_SPAN_DEFINE(32)
MEMSEG_SPAN_DEFINE(64)

/* The bytes at `src` as a ctype in `*out_value`, and `value` into the bytes at `dst`; `swap`
 * is a constant, so each accessor compiles to straight code. */
#define MEMSEG_LOAD(width, swap, src, out_value)                                                \
  do {                                                                                          \
    uint##width##_t bits_;                                                                      \
    memcpy(&bits_, (src), sizeof(bits_));                                                       \
    if (swap) {                                                                                 \
      bits_ = memseg_bswap##width(bits_);                                                       \
    }                                                                                           \
    memcpy((out_value), &bits_, sizeof(bits_));                                                 \
  } while (0)
#define MEMSEG_STORE(ctype, width, swap, dst, value)                                            \
  do {                                                                                          \
    uint##width##_t bits_;                                                                      \
    ctype value_ = (value);                                                                     \
    memcpy(&bits_, &value_, sizeof(bits_));                                                     \
    if (swap) {                                                                                 \
      bits_ = memseg_bswap##width(bits_);                                                       \
    }                                                                                           \
    memcpy((dst), &bits_, sizeof(bits_));                                                       \
  } while (0)

/*
 * One getter and one setter per type and byte order: memseg_raw_get_<type>[_le|_be] and
 * memseg_raw_put_<type>[_le|_be], named and behaving as the ABI's memseg_segment_get_... /
 * memseg_segment_put_..., and the span accessors memseg_span<W>_get_<type>[_le|_be] /
 * memseg_span<W>_put_<type>[_le|_be].
 */
#define MEMSEG_RAW_DEFINE_ORDER(name, suffix, ctype, width, swap, load, store)                  \
  static inline memseg_status memseg_raw_get_##name##suffix(memseg_raw raw, size_t offset,      \
                                                            ctype *out_value) {                 \
    if (!memseg_raw_in_bounds(raw, offset, (width) / 8)) {                                      \
      return MEMSEG_STATUS_OUT_OF_BOUNDS;                                                       \
    }                                                                                           \
    load(width, swap, raw.ptr + offset, out_value);                                             \
    return MEMSEG_STATUS_OK;                                                                    \
  }                                                                                             \
  static inline memseg_status memseg_raw_put_##name##suffix(memseg_raw raw, size_t offset,      \
                                                            ctype value) {                      \
    if (!memseg_raw_in_bounds(raw, offset, (width) / 8)) {                                      \
      return MEMSEG_STATUS_OUT_OF_BOUNDS;                                                       \
    }                                                                                           \
    store(ctype, width, swap, raw.ptr + offset, value);                                         \
    return MEMSEG_STATUS_OK;                                                                    \
  }                                                                                             \
  static inline memseg_status memseg_span##width##_get_##name##suffix(                          \
      memseg_span##width span, size_t index, ctype *out_value) {                                \
    if (out_value == NULL) {                                                                    \
      return MEMSEG_STATUS_NULL_ARGUMENT;                                                       \
    }                                                                                           \
    if (index >= span.count) {                                                                  \
      return MEMSEG_STATUS_OUT_OF_BOUNDS;                                                       \
    }                                                                                           \
    load(width, swap, span.ptr + index * ((width) / 8), out_value);                             \
    return MEMSEG_STATUS_OK;                                                                    \
  }                                                                                             \
  static inline memseg_status memseg_span##width##_put_##name##suffix(                          \
      memseg_span##width span, size_t index, ctype value) {                                     \
    if (index >= span.count) {                                                                  \
      return MEMSEG_STATUS_OUT_OF_BOUNDS;                                                       \
    }                                                                                           \
    store(ctype, width, swap, span.ptr + index * ((width) / 8), value);                         \
    return MEMSEG_STATUS_OK;                                                                    \
  }

#define MEMSEG_RAW_DEFINE(name, ctype, width)                                                   \
  MEMSEG_RAW_DEFINE_ORDER(name, , ctype, width, 0, MEMSEG_LOAD, MEMSEG_STORE)                   \
  MEMSEG_RAW_DEFINE_ORDER(name, _le, ctype, width, MEMSEG_HOST_BIG_ENDIAN, MEMSEG_LOAD,         \
                          MEMSEG_STORE)                                                         \
  MEMSEG_RAW_DEFINE_ORDER(name, _be, ctype, width, !MEMSEG_HOST_BIG_ENDIAN, MEMSEG_LOAD,        \
                          MEMSEG_STORE)

MEMSEG_RAW_DEFINE(u8, uint8_t, 8)
MEMSEG_RAW_DEFINE(i8, int8_t, 8)
MEMSEG_RAW_DEFINE(u16, uint16_t, 16)
MEMSEG_RAW_DEFINE(i16, int16_t, 16)
/* Java's char: a UTF-16 code unit. */
MEMSEG_RAW_DEFINE(char, uint16_t, 16)
MEMSEG_RAW_DEFINE(u32, uint32_t, 32)
MEMSEG_RAW_DEFINE(i32, int32_t, 32)
MEMSEG_RAW_DEFINE(u64, uint64_t, 64)
MEMSEG_RAW_DEFINE(i64, int64_t, 64)
MEMSEG_RAW_DEFINE(f32, float, 32)
MEMSEG_RAW_DEFINE(f64, double, 64)

/* bool is one byte: 1 or 0 is written, any non-zero byte reads as true (as the ABI does).
 * Named here, where `bool` is still a bare token (it is a macro in C). */
#define MEMSEG_LOAD_BOOL(width, swap, src, out_value) (*(out_value) = *(src) != 0)
#define MEMSEG_STORE_BOOL(ctype, width, swap, dst, value) (*(dst) = (value) ? 1 : 0)
MEMSEG_RAW_DEFINE_ORDER(bool, , bool, 8, 0, MEMSEG_LOAD_BOOL, MEMSEG_STORE_BOOL)
MEMSEG_RAW_DEFINE_ORDER(bool, _le, bool, 8, 0, MEMSEG_LOAD_BOOL, MEMSEG_STORE_BOOL)
MEMSEG_RAW_DEFINE_ORDER(bool, _be, bool, 8, 0, MEMSEG_LOAD_BOOL, MEMSEG_STORE_BOOL)

#undef MEMSEG_STORE_BOOL
#undef MEMSEG_LOAD_BOOL
#undef MEMSEG_RAW_DEFINE
#undef MEMSEG_RAW_DEFINE_ORDER
#undef MEMSEG_STORE
#undef MEMSEG_LOAD
#undef MEMSEG_SPAN_DEFINE

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MEMSEG_INLINE_H */
