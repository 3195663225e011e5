/*
 * memseg: managed memory for data engines.
 * SPDX-License-Identifier: Apache-2.0
 *
 * memseg.hpp: C++11 over the C ABI. Each object is a move-only owner that frees what it owns
 * in its destructor, and every failing call throws memseg::error with the status and the
 * thread's last error message. Nothing here adds behaviour: each member is one C call (or,
 * for the typed accessors of memseg::raw_view, the inline accessors of memseg_inline.h).
 *
 *   memseg::segment seg = memseg::segment::offheap(32768, MEMSEG_OFFHEAP_PREFAULT);
 *   seg.put<uint64_t>(0, 42, memseg::byte_order::big);
 *   uint64_t v = seg.get<uint64_t>(0, memseg::byte_order::big);
 *   memseg::raw_view raw = seg.raw();               // the fast path: no call per access
 *   v = raw.get<uint64_t>(0, memseg::byte_order::big);
 *   memseg::span<uint64_t> values = raw.span<uint64_t>(8, 100);  // checked once
 *   for (std::size_t i = 0; i < values.size(); ++i) sum += values.get(i, memseg::byte_order::big);
 *
 * Hand-written (not generated); include instead of memseg.h. Thread safety and lifetimes are
 * those of the C functions documented in memseg.h.
 */

#ifndef MEMSEG_HPP
#define MEMSEG_HPP

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "memseg.h"
#include "memseg_inline.h"

namespace memseg {

/** The calling thread's last error message (see memseg_last_error_message()). */
inline std::string last_error_message() {
  std::vector<char> buf(memseg_last_error_message(nullptr, 0) + 1);
  std::size_t len = memseg_last_error_message(buf.data(), buf.size());
  return std::string(buf.data(), len < buf.size() ? len : buf.size() - 1);
}

/** A failed memseg call: its status code and the message the library gave. */
class error : public std::runtime_error {
 public:
  error(memseg_status status, const std::string &message)
      : std::runtime_error(std::string(memseg_status_name(status)) + ": " + message),
        status_(status) {}

  /** The status the call returned. */
  memseg_status status() const noexcept { return status_; }

 private:
  memseg_status status_;
};

/** Throws memseg::error unless `status` is MEMSEG_STATUS_OK. */
inline void check(memseg_status status) {
  if (status != MEMSEG_STATUS_OK) {
    throw error(status, last_error_message());
  }
}

/** Byte order of a typed access. */
enum class byte_order { native, little, big };

namespace detail {

/* One specialization per C type: the ABI and inline accessors of each byte order. */
template <typename T>
struct access;

#define MEMSEG_HPP_ACCESS(ctype, name)                                                        \
  template <>                                                                                 \
  struct access<ctype> {                                                                      \
    static memseg_status get(memseg_segment s, std::size_t off, byte_order o, ctype *out) {  \
      return o == byte_order::native   ? memseg_segment_get_##name(s, off, out)              \
             : o == byte_order::little ? memseg_segment_get_##name##_le(s, off, out)         \
                                       : memseg_segment_get_##name##_be(s, off, out);        \
    }                                                                                         \
    static memseg_status put(memseg_segment s, std::size_t off, byte_order o, ctype v) {     \
      return o == byte_order::native   ? memseg_segment_put_##name(s, off, v)                \
             : o == byte_order::little ? memseg_segment_put_##name##_le(s, off, v)           \
                                       : memseg_segment_put_##name##_be(s, off, v);          \
    }                                                                                         \
    static memseg_status get(memseg_raw r, std::size_t off, byte_order o, ctype *out) {      \
      return o == byte_order::native   ? memseg_raw_get_##name(r, off, out)                  \
             : o == byte_order::little ? memseg_raw_get_##name##_le(r, off, out)             \
                                       : memseg_raw_get_##name##_be(r, off, out);            \
    }                                                                                         \
    static memseg_status put(memseg_raw r, std::size_t off, byte_order o, ctype v) {         \
      return o == byte_order::native   ? memseg_raw_put_##name(r, off, v)                    \
             : o == byte_order::little ? memseg_raw_put_##name##_le(r, off, v)               \
                                       : memseg_raw_put_##name##_be(r, off, v);              \
    }                                                                                         \
  };

MEMSEG_HPP_ACCESS(uint8_t, u8)
MEMSEG_HPP_ACCESS(int8_t, i8)
MEMSEG_HPP_ACCESS(bool, bool)
MEMSEG_HPP_ACCESS(uint16_t, u16)
MEMSEG_HPP_ACCESS(int16_t, i16)
MEMSEG_HPP_ACCESS(uint32_t, u32)
MEMSEG_HPP_ACCESS(int32_t, i32)
MEMSEG_HPP_ACCESS(uint64_t, u64)
MEMSEG_HPP_ACCESS(int64_t, i64)
MEMSEG_HPP_ACCESS(float, f32)
MEMSEG_HPP_ACCESS(double, f64)
#undef MEMSEG_HPP_ACCESS

/* The C span of values of `Bytes` bytes, and the call that checks one. */
template <std::size_t Bytes>
struct span_width;

#define MEMSEG_HPP_SPAN_WIDTH(bytes, width)                                                   \
  template <>                                                                                 \
  struct span_width<bytes> {                                                                  \
    typedef memseg_span##width c_span;                                                        \
    static memseg_status make(memseg_raw r, std::size_t off, std::size_t n, c_span *out) {   \
      return memseg_raw_span##width(r, off, n, out);                                          \
    }                                                                                         \
  };

MEMSEG_HPP_SPAN_WIDTH(1, 8)
MEMSEG_HPP_SPAN_WIDTH(2, 16)
MEMSEG_HPP_SPAN_WIDTH(4, 32)
MEMSEG_HPP_SPAN_WIDTH(8, 64)
#undef MEMSEG_HPP_SPAN_WIDTH

/* One specialization per C type: the span accessors of each byte order. */
template <typename T>
struct span_access;

#define MEMSEG_HPP_SPAN_ACCESS(ctype, name, width)                                            \
  template <>                                                                                 \
  struct span_access<ctype> {                                                                 \
    static memseg_status get(memseg_span##width s, std::size_t i, byte_order o, ctype *out) { \
      return o == byte_order::native   ? memseg_span##width##_get_##name(s, i, out)          \
             : o == byte_order::little ? memseg_span##width##_get_##name##_le(s, i, out)     \
                                       : memseg_span##width##_get_##name##_be(s, i, out);    \
    }                                                                                         \
    static memseg_status put(memseg_span##width s, std::size_t i, byte_order o, ctype v) {    \
      return o == byte_order::native   ? memseg_span##width##_put_##name(s, i, v)            \
             : o == byte_order::little ? memseg_span##width##_put_##name##_le(s, i, v)       \
                                       : memseg_span##width##_put_##name##_be(s, i, v);      \
    }                                                                                         \
  };

MEMSEG_HPP_SPAN_ACCESS(uint8_t, u8, 8)
MEMSEG_HPP_SPAN_ACCESS(int8_t, i8, 8)
MEMSEG_HPP_SPAN_ACCESS(bool, bool, 8)
MEMSEG_HPP_SPAN_ACCESS(uint16_t, u16, 16)
MEMSEG_HPP_SPAN_ACCESS(int16_t, i16, 16)
MEMSEG_HPP_SPAN_ACCESS(uint32_t, u32, 32)
MEMSEG_HPP_SPAN_ACCESS(int32_t, i32, 32)
MEMSEG_HPP_SPAN_ACCESS(uint64_t, u64, 64)
MEMSEG_HPP_SPAN_ACCESS(int64_t, i64, 64)
MEMSEG_HPP_SPAN_ACCESS(float, f32, 32)
MEMSEG_HPP_SPAN_ACCESS(double, f64, 64)
#undef MEMSEG_HPP_SPAN_ACCESS

}  // namespace detail

/**
 * `size()` values of type T in a row, checked once when made (raw_view::span()): `get(i)` and
 * `put(i, v)` check only `i < size()`, which the compiler removes in a loop bounded by
 * `size()` (memseg_inline.h, "Spans"). Valid as long as the memory it was made from; it owns
 * nothing.
 */
template <typename T>
class span {
 public:
  /** The C span (memseg_span8/16/32/64) of T's width. */
  typedef typename detail::span_width<sizeof(T)>::c_span c_span;

  explicit span(c_span s) noexcept : span_(s) {}

  /** How many values. */
  std::size_t size() const noexcept { return span_.count; }
  /** The first byte of the first value. */
  std::uint8_t *data() const noexcept { return span_.ptr; }
  c_span c_value() const noexcept { return span_; }

  /** Value `index`; throws memseg::error (OUT_OF_BOUNDS) unless index < size(). */
  T get(std::size_t index, byte_order order = byte_order::native) const {
    T value;
    check_index(detail::span_access<T>::get(span_, index, order, &value), index);
    return value;
  }

  /** Writes value `index`; throws memseg::error (OUT_OF_BOUNDS) unless index < size(). */
  void put(std::size_t index, T value, byte_order order = byte_order::native) const {
    check_index(detail::span_access<T>::put(span_, index, order, value), index);
  }

 private:
  void check_index(memseg_status status, std::size_t index) const {
    if (status != MEMSEG_STATUS_OK) {
      throw error(status, "index " + std::to_string(index) + " is not below the span's " +
                              std::to_string(span_.count) + " values");
    }
  }

  c_span span_;
};

/**
 * A segment's memory lent for a hot loop (memseg_segment_raw()): bounds-checked inline
 * accessors, no call per access. Valid until the segment is freed; it does not own it.
 */
class raw_view {
 public:
  explicit raw_view(memseg_raw raw) noexcept : raw_(raw) {}

  std::uint8_t *data() const noexcept { return raw_.ptr; }
  std::size_t size() const noexcept { return raw_.size; }
  memseg_raw c_raw() const noexcept { return raw_; }

  /** Reads a T at `offset`; throws memseg::error (OUT_OF_BOUNDS) past the end. */
  template <typename T>
  T get(std::size_t offset, byte_order order = byte_order::native) const {
    T value;
    check_inline(detail::access<T>::get(raw_, offset, order, &value), offset, sizeof(T));
    return value;
  }

  /** Writes a T at `offset`; throws memseg::error (OUT_OF_BOUNDS) past the end. */
  template <typename T>
  void put(std::size_t offset, T value, byte_order order = byte_order::native) const {
    check_inline(detail::access<T>::put(raw_, offset, order, value), offset, sizeof(T));
  }

  /**
   * The `count` values of type T from `offset` as a span (memseg_raw_span8/16/32/64()),
   * checked once; throws memseg::error (OUT_OF_BOUNDS) unless they all lie in this memory.
   */
  template <typename T>
  memseg::span<T> span(std::size_t offset, std::size_t count) const {
    typename memseg::span<T>::c_span s;
    memseg_status status = detail::span_width<sizeof(T)>::make(raw_, offset, count, &s);
    if (status == MEMSEG_STATUS_NULL_ARGUMENT) {
      throw error(status, "a span of no memory (a null pointer)");
    }
    if (status != MEMSEG_STATUS_OK) {
      throw error(status, std::to_string(count) + " values of " + std::to_string(sizeof(T)) +
                              " bytes from offset " + std::to_string(offset) +
                              " exceed size " + std::to_string(raw_.size));
    }
    return memseg::span<T>(s);
  }

 private:
  /* The inline accessors leave the thread's message alone, so the message is made here. */
  void check_inline(memseg_status status, std::size_t offset, std::size_t len) const {
    if (status != MEMSEG_STATUS_OK) {
      throw error(status, "offset " + std::to_string(offset) + " + length " +
                              std::to_string(len) + " exceeds size " + std::to_string(raw_.size));
    }
  }

  memseg_raw raw_;
};

/** Owns one memory segment (memseg_segment) and frees it when destroyed. Move-only. */
class segment {
 public:
  /** A zero-filled heap segment (memseg_segment_new_heap()). */
  static segment heap(std::size_t size) {
    memseg_segment s;
    check(memseg_segment_new_heap(size, &s));
    return segment(s);
  }

  /** A zero-filled off-heap segment (memseg_segment_new_offheap()). */
  static segment offheap(std::size_t size, std::uint32_t flags = 0) {
    memseg_segment s;
    check(memseg_segment_new_offheap(size, flags, &s));
    return segment(s);
  }

  /** Host memory as a segment (memseg_segment_wrap()); `release` runs once, on free. */
  static segment wrap(void *ptr, std::size_t size, memseg_release_fn release = nullptr,
                      void *ctx = nullptr) {
    memseg_segment s;
    check(memseg_segment_wrap(ptr, size, release, ctx, &s));
    return segment(s);
  }

  /** Takes ownership of a handle the caller owned. */
  explicit segment(memseg_segment handle) noexcept : handle_(handle) {}
  segment(segment &&other) noexcept : handle_(other.handle_) { other.handle_.bits = 0; }
  segment &operator=(segment &&other) noexcept {
    if (this != &other) {
      reset();
      handle_ = other.handle_;
      other.handle_.bits = 0;
    }
    return *this;
  }
  segment(const segment &) = delete;
  segment &operator=(const segment &) = delete;
  ~segment() { reset(); }

  /** The C handle, still owned by this object. */
  memseg_segment handle() const noexcept { return handle_; }

  /** Gives up ownership: the caller must free the returned handle. */
  memseg_segment release() noexcept {
    memseg_segment h = handle_;
    handle_.bits = 0;
    return h;
  }

  /** Frees the segment now (a no-op on an empty object). */
  void reset() noexcept {
    if (handle_.bits != 0) {
      /* A segment this object owns can only fail to free if the host freed the handle
       * behind its back; a destructor must not throw, so that stays the host's bug. */
      (void)memseg_segment_free(handle_);
      handle_.bits = 0;
    }
  }

  std::size_t size() const {
    std::size_t n;
    check(memseg_segment_size(handle_, &n));
    return n;
  }

  memseg_memory_kind kind() const {
    memseg_memory_kind k;
    check(memseg_segment_kind(handle_, &k));
    return k;
  }

  /** The memory for a hot loop; valid while this segment lives. */
  raw_view raw() const {
    memseg_raw r;
    check(memseg_raw_of(handle_, &r));
    return raw_view(r);
  }

  /** Reads a T at `offset` through one ABI call. */
  template <typename T>
  T get(std::size_t offset, byte_order order = byte_order::native) const {
    T value;
    check(detail::access<T>::get(handle_, offset, order, &value));
    return value;
  }

  /** Writes a T at `offset` through one ABI call. */
  template <typename T>
  void put(std::size_t offset, T value, byte_order order = byte_order::native) {
    check(detail::access<T>::put(handle_, offset, order, value));
  }

  /** Java's char (a UTF-16 code unit), which C++ cannot tell from uint16_t by type. */
  std::uint16_t get_char(std::size_t offset, byte_order order = byte_order::big) const {
    std::uint16_t v;
    check(order == byte_order::native   ? memseg_segment_get_char(handle_, offset, &v)
          : order == byte_order::little ? memseg_segment_get_char_le(handle_, offset, &v)
                                        : memseg_segment_get_char_be(handle_, offset, &v));
    return v;
  }

  void put_char(std::size_t offset, std::uint16_t v, byte_order order = byte_order::big) {
    check(order == byte_order::native   ? memseg_segment_put_char(handle_, offset, v)
          : order == byte_order::little ? memseg_segment_put_char_le(handle_, offset, v)
                                        : memseg_segment_put_char_be(handle_, offset, v));
  }

  void get_bytes(std::size_t offset, void *dst, std::size_t len) const {
    check(memseg_segment_get_bytes(handle_, offset, static_cast<std::uint8_t *>(dst), len));
  }

  void put_bytes(std::size_t offset, const void *src, std::size_t len) {
    check(memseg_segment_put_bytes(handle_, offset, static_cast<const std::uint8_t *>(src), len));
  }

  /** Copies `len` bytes at `offset` to `target` at `target_offset` (overlap safe). */
  void copy_to(std::size_t offset, segment &target, std::size_t target_offset,
               std::size_t len) const {
    check(memseg_segment_copy(handle_, offset, target.handle_, target_offset, len));
  }

  /** Compares as unsigned bytes: negative, zero or positive. */
  int compare(std::size_t offset, const segment &other, std::size_t other_offset,
              std::size_t len) const {
    std::int32_t order;
    check(memseg_segment_compare(handle_, offset, other.handle_, other_offset, len, &order));
    return order;
  }

  bool equal(std::size_t offset, const segment &other, std::size_t other_offset,
             std::size_t len) const {
    bool eq;
    check(memseg_segment_equal(handle_, offset, other.handle_, other_offset, len, &eq));
    return eq;
  }

  void swap_bytes(std::size_t offset, segment &other, std::size_t other_offset, std::size_t len) {
    check(memseg_segment_swap(handle_, offset, other.handle_, other_offset, len));
  }

  void fill(std::size_t offset, std::size_t len, std::uint8_t value) {
    check(memseg_segment_fill(handle_, offset, len, value));
  }

 private:
  memseg_segment handle_;
};

}  // namespace memseg

#endif /* MEMSEG_HPP */
