/*
 * memseg.hpp: the C++ owners free what they own, every typed access reaches the same bytes as
 * the C calls, and failures throw memseg::error with the status and the library's message.
 */
#undef NDEBUG
#include <cassert>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "memseg.hpp"

static std::size_t live() {
  std::size_t n = 0;
  memseg::check(memseg_segment_live_count(&n));
  return n;
}

/* Runs `f`, which must throw memseg::error with `status` and a message containing `needle`. */
template <typename F>
static void expect_error(F f, memseg_status status, const char *needle) {
  try {
    f();
  } catch (const memseg::error &e) {
    if (e.status() != status || std::string(e.what()).find(needle) == std::string::npos) {
      std::fprintf(stderr, "wrong error: %s (status %d, wanted %d and \"%s\")\n", e.what(),
                   static_cast<int>(e.status()), static_cast<int>(status), needle);
      assert(false);
    }
    return;
  }
  std::fprintf(stderr, "no error thrown, wanted status %d\n", static_cast<int>(status));
  assert(false);
}

static void test_typed_access_matches_the_bytes() {
  memseg::segment seg = memseg::segment::heap(64);
  assert(seg.size() == 64);
  assert(seg.kind() == MEMSEG_MEMORY_KIND_HEAP);
  seg.put<uint64_t>(0, 0x0102030405060708ull, memseg::byte_order::big);
  seg.put<int32_t>(8, -2, memseg::byte_order::little);
  seg.put<double>(16, -0.0, memseg::byte_order::big);
  seg.put<bool>(24, true);
  seg.put_char(26, 0xD83D);
  uint8_t bytes[27];
  seg.get_bytes(0, bytes, sizeof bytes);
  const uint8_t expected[] = {1, 2, 3, 4, 5, 6, 7, 8, 0xFE, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0,
                              0x80, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0xD8};
  assert(std::memcmp(bytes, expected, sizeof expected) == 0);
  assert(seg.get<uint64_t>(0, memseg::byte_order::big) == 0x0102030405060708ull);
  assert(seg.get<uint64_t>(0, memseg::byte_order::little) == 0x0807060504030201ull);
  assert(seg.get<int32_t>(8, memseg::byte_order::little) == -2);
  assert(std::signbit(seg.get<double>(16, memseg::byte_order::big)));
  assert(seg.get<bool>(24));
  assert(seg.get_char(26) == 0xD83D);

  memseg::raw_view raw = seg.raw();
  assert(raw.size() == 64 && raw.data()[0] == 1);
  assert(raw.get<uint64_t>(0, memseg::byte_order::big) == 0x0102030405060708ull);
  raw.put<uint16_t>(62, 0xBEEF, memseg::byte_order::big);
  assert(seg.get<uint16_t>(62, memseg::byte_order::big) == 0xBEEF);
  std::puts("ok test_typed_access_matches_the_bytes");
}

static void test_spans_index_values_checked_once() {
  memseg::segment seg = memseg::segment::heap(64);
  memseg::raw_view raw = seg.raw();
  memseg::span<uint64_t> values = raw.span<uint64_t>(8, 7);
  assert(values.size() == 7 && values.data() == raw.data() + 8);
  for (std::size_t i = 0; i < values.size(); ++i) {
    values.put(i, 0x0100000000000000ull * (i + 1), memseg::byte_order::big);
  }
  uint64_t sum = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    sum += values.get(i, memseg::byte_order::little);
  }
  assert(sum == 28);
  assert(seg.get<uint64_t>(8 + 6 * 8, memseg::byte_order::big) == 0x0700000000000000ull);
  /* Each width, and the C span it wraps. */
  memseg::span<int16_t> shorts = raw.span<int16_t>(0, 32);
  shorts.put(31, -2, memseg::byte_order::big);
  assert(seg.get<int16_t>(62, memseg::byte_order::big) == -2);
  memseg::span<float> floats = raw.span<float>(4, 15);
  floats.put(0, 1.5f);
  assert(seg.get<float>(4) == 1.5f);
  memseg::span<bool> flags = raw.span<bool>(63, 1);
  flags.put(0, true);
  assert(flags.get(0) && flags.c_value().count == 1);
  assert(raw.span<uint8_t>(64, 0).size() == 0);
  /* Out of bounds: at making, by the byte size; at use, by the count. */
  expect_error([&] { raw.span<uint64_t>(8, 8); }, MEMSEG_STATUS_OUT_OF_BOUNDS,
               "8 values of 8 bytes from offset 8 exceed size 64");
  expect_error([&] { raw.span<uint32_t>(65, 0); }, MEMSEG_STATUS_OUT_OF_BOUNDS, "exceed size 64");
  expect_error([&] { raw.span<uint16_t>(0, std::numeric_limits<std::size_t>::max()); },
               MEMSEG_STATUS_OUT_OF_BOUNDS, "exceed size 64");
  expect_error([&] { values.get(7); }, MEMSEG_STATUS_OUT_OF_BOUNDS,
               "index 7 is not below the span's 7 values");
  expect_error([&] { shorts.put(std::numeric_limits<std::size_t>::max(), 1); },
               MEMSEG_STATUS_OUT_OF_BOUNDS, "is not below the span's 32 values");
  memseg_raw none = {nullptr, 0};
  expect_error([&] { memseg::raw_view(none).span<uint8_t>(0, 0); },
               MEMSEG_STATUS_NULL_ARGUMENT, "no memory");
  std::puts("ok test_spans_index_values_checked_once");
}

static void test_errors_throw_with_status_and_message() {
  memseg::segment seg = memseg::segment::offheap(16);
  expect_error([&] { seg.get<uint64_t>(9); }, MEMSEG_STATUS_OUT_OF_BOUNDS, "exceeds size 16");
  expect_error([&] { seg.put<uint32_t>(std::numeric_limits<std::size_t>::max() - 1, 1); },
               MEMSEG_STATUS_OUT_OF_BOUNDS, "exceeds size 16");
  expect_error([&] { seg.raw().get<uint64_t>(9); }, MEMSEG_STATUS_OUT_OF_BOUNDS,
               "offset 9 + length 8 exceeds size 16");
  expect_error([] { memseg::segment::heap(0); }, MEMSEG_STATUS_INVALID_ARGUMENT, "at least 1");
  expect_error([] { memseg::segment::offheap(16, 0x80); }, MEMSEG_STATUS_INVALID_ARGUMENT,
               "flag");
  /* A handle freed behind the owner's back is a stale handle, not a crash. */
  memseg_segment handle = seg.handle();
  memseg::check(memseg_segment_free(handle));
  expect_error([&] { seg.size(); }, MEMSEG_STATUS_STALE_HANDLE, "stale");
  (void)seg.release();
  std::puts("ok test_errors_throw_with_status_and_message");
}

static int released = 0;
static void count_release(void *ctx, void *ptr, std::size_t size) {
  (void)ptr;
  (void)size;
  released += *static_cast<int *>(ctx);
}

static void test_owners_free_once_and_move() {
  std::size_t before = live();
  {
    memseg::segment a = memseg::segment::heap(32);
    memseg::segment b = memseg::segment::heap(32);
    assert(live() == before + 2);
    a.fill(0, 32, 7);
    a.copy_to(0, b, 0, 32);
    assert(a.equal(0, b, 0, 32));
    b.put<uint8_t>(31, 9);
    assert(a.compare(0, b, 0, 32) < 0);
    a.swap_bytes(31, b, 31, 1);
    assert(a.get<uint8_t>(31) == 9 && b.get<uint8_t>(31) == 7);

    memseg::segment c(std::move(a));
    assert(a.handle().bits == 0);
    assert(live() == before + 2);
    b = std::move(c); /* frees b's old segment */
    assert(live() == before + 1);
    assert(b.get<uint8_t>(31) == 9);
  }
  assert(live() == before);

  static uint8_t host[24];
  int weight = 1;
  {
    memseg::segment w = memseg::segment::wrap(host, sizeof host, count_release, &weight);
    assert(w.kind() == MEMSEG_MEMORY_KIND_FOREIGN);
    w.put<uint32_t>(0, 0xAABBCCDD, memseg::byte_order::big);
    assert(host[0] == 0xAA && host[3] == 0xDD);
    assert(released == 0);
  }
  assert(released == 1);

  memseg_segment kept;
  {
    memseg::segment s = memseg::segment::heap(8);
    kept = s.release();
  }
  assert(live() == before + 1);
  memseg::check(memseg_segment_free(kept));
  assert(live() == before);
  std::puts("ok test_owners_free_once_and_move");
}

int main() {
  test_typed_access_matches_the_bytes();
  test_spans_index_values_checked_once();
  test_errors_throw_with_status_and_message();
  test_owners_free_once_and_move();
  return 0;
}
