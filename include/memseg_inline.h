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
 * Lifetime: a memseg_raw is valid until its segment is freed. Using it after that is the one
 * misuse memseg cannot detect. Thread safety: as the segment's bytes (not synchronized).
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
 * One getter and one setter per type and byte order: memseg_raw_get_<type>[_le|_be] and
 * memseg_raw_put_<type>[_le|_be], named and behaving as the ABI's memseg_segment_get_... /
 * memseg_segment_put_... . `swap` is a constant, so each function compiles to straight code.
 */
#define MEMSEG_RAW_DEFINE_ORDER(name, suffix, ctype, width, swap)                               \
  static inline memseg_status memseg_raw_get_##name##suffix(memseg_raw raw, size_t offset,      \
                                                            ctype *out_value) {                 \
    uint##width##_t bits;                                                                       \
    if (!memseg_raw_in_bounds(raw, offset, sizeof(bits))) {                                     \
      return MEMSEG_STATUS_OUT_OF_BOUNDS;                                                       \
    }                                                                                           \
    memcpy(&bits, raw.ptr + offset, sizeof(bits));                                             \
    if (swap) {                                                                                 \
      bits = memseg_bswap##width(bits);                                                         \
    }                                                                                           \
    memcpy(out_value, &bits, sizeof(bits));                                                     \
    return MEMSEG_STATUS_OK;                                                                    \
  }                                                                                             \
  static inline memseg_status memseg_raw_put_##name##suffix(memseg_raw raw, size_t offset,      \
                                                            ctype value) {                      \
    uint##width##_t bits;                                                                       \
    if (!memseg_raw_in_bounds(raw, offset, sizeof(bits))) {                                     \
      return MEMSEG_STATUS_OUT_OF_BOUNDS;                                                       \
    }                                                                                           \
    memcpy(&bits, &value, sizeof(bits));                                                        \
    if (swap) {                                                                                 \
      bits = memseg_bswap##width(bits);                                                         \
    }                                                                                           \
    memcpy(raw.ptr + offset, &bits, sizeof(bits));                                              \
    return MEMSEG_STATUS_OK;                                                                    \
  }

#define MEMSEG_RAW_DEFINE(name, ctype, width)                                                   \
  MEMSEG_RAW_DEFINE_ORDER(name, , ctype, width, 0)                                              \
  MEMSEG_RAW_DEFINE_ORDER(name, _le, ctype, width, MEMSEG_HOST_BIG_ENDIAN)                      \
  MEMSEG_RAW_DEFINE_ORDER(name, _be, ctype, width, !MEMSEG_HOST_BIG_ENDIAN)

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

/* bool is one byte: 1 or 0 is written, any non-zero byte reads as true (as the ABI does). */
#define MEMSEG_RAW_DEFINE_BOOL(suffix)                                                          \
  static inline memseg_status memseg_raw_get_bool##suffix(memseg_raw raw, size_t offset,        \
                                                          bool *out_value) {                    \
    if (!memseg_raw_in_bounds(raw, offset, 1)) {                                                \
      return MEMSEG_STATUS_OUT_OF_BOUNDS;                                                       \
    }                                                                                           \
    *out_value = raw.ptr[offset] != 0;                                                          \
    return MEMSEG_STATUS_OK;                                                                    \
  }                                                                                             \
  static inline memseg_status memseg_raw_put_bool##suffix(memseg_raw raw, size_t offset,        \
                                                          bool value) {                         \
    if (!memseg_raw_in_bounds(raw, offset, 1)) {                                                \
      return MEMSEG_STATUS_OUT_OF_BOUNDS;                                                       \
    }                                                                                           \
    raw.ptr[offset] = value ? 1 : 0;                                                            \
    return MEMSEG_STATUS_OK;                                                                    \
  }

MEMSEG_RAW_DEFINE_BOOL()
MEMSEG_RAW_DEFINE_BOOL(_le)
MEMSEG_RAW_DEFINE_BOOL(_be)

#undef MEMSEG_RAW_DEFINE_BOOL
#undef MEMSEG_RAW_DEFINE
#undef MEMSEG_RAW_DEFINE_ORDER

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MEMSEG_INLINE_H */
