/*
 * The view layer from C (see BENCHMARKS.md; run by `cargo bench --bench view`):
 * a stream of big-endian u64 values written and read
 *   (a) in plain malloc'd memory (memcpy + byte swap, what a hand-written serializer does),
 *   (b) through an output/input view's window with the inline accessors of memseg_inline.h,
 *       one view call per 32 KiB segment: per value at a byte offset (memseg_raw_put_u64_be /
 *       memseg_raw_get_u64_be, each bounds-checked), and over a span of the window checked once
 *       (memseg_raw_span64, then memseg_span64_put_u64_be / memseg_span64_get_u64_be by index),
 *   (c) through the view's ABI calls, one call per value (memseg_output_view_write_u64,
 *       memseg_input_view_read_u64).
 * Medians over rounds; ratios are the median of per-round ratios (plain time / view time,
 * 1.0 = as fast). The passes over the segments take turns at going first. Sums and bytes are
 * checked; a mismatch exits with 1.
 *
 * Usage: view [MIB [ROUNDS]]
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c11 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memseg.h"
#include "memseg_inline.h"

#define SEGMENT 32768

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint64_t value(uint64_t i, uint64_t seed) { return (i * UINT64_C(0x9E3779B97F4A7C15)) ^ seed; }

#define OK(call)                                                                               \
  do {                                                                                         \
    memseg_status s_ = (call);                                                                 \
    if (s_ != MEMSEG_STATUS_OK) {                                                              \
      fprintf(stderr, "%s:%d: %s returned %s\n", __FILE__, __LINE__, #call,                   \
              memseg_status_name((int32_t)s_));                                                \
      exit(1);                                                                                 \
    }                                                                                          \
  } while (0)

__attribute__((noinline)) static void plain_write(uint8_t *buf, uint64_t n, uint64_t seed) {
  uint64_t i;
  for (i = 0; i < n; i++) {
    uint64_t v = memseg_bswap64(value(i, seed));
    memcpy(buf + i * 8, &v, 8);
  }
}

__attribute__((noinline)) static uint64_t plain_read(const uint8_t *buf, uint64_t n) {
  uint64_t i, sum = 0;
  for (i = 0; i < n; i++) {
    uint64_t v;
    memcpy(&v, buf + i * 8, 8);
    sum += memseg_bswap64(v);
  }
  return sum;
}

/* The plain loops again, over the same 32 KiB segments the views use (their memory as
 * memseg_segment_raw() lends it), so that the ratio measures the view and its accessors, not
 * where the pages lie (one malloc'd array streams better than scattered segments). */
__attribute__((noinline)) static void segs_write(uint8_t *const *ptrs, size_t count,
                                                 uint64_t seed) {
  size_t k, j;
  uint64_t i = 0;
  for (k = 0; k < count; k++) {
    for (j = 0; j < SEGMENT; j += 8, i++) {
      uint64_t v = memseg_bswap64(value(i, seed));
      memcpy(ptrs[k] + j, &v, 8);
    }
  }
}

__attribute__((noinline)) static uint64_t segs_read(uint8_t *const *ptrs, size_t count) {
  size_t k, j;
  uint64_t sum = 0;
  for (k = 0; k < count; k++) {
    for (j = 0; j < SEGMENT; j += 8) {
      uint64_t v;
      memcpy(&v, ptrs[k] + j, 8);
      sum += memseg_bswap64(v);
    }
  }
  return sum;
}

/* The way a host uses windows in a hot loop: take the view's current segment as a window, run
 * inline accessors over it (each access still checked, its status checked), tell the view how
 * far it got, and let the view cross into the next segment — a value that would straddle two
 * segments goes through the view itself. `spans` (a constant in each caller) chooses the
 * accessors: 0, memseg_raw_put/get_u64_be at a byte offset (a bounds check per access); 1, a
 * span of the window's whole values (memseg_raw_span64, checked once) and
 * memseg_span64_put/get_u64_be by index, whose check the compiler proves from the loop. */
static inline __attribute__((always_inline)) void window_write_with(const memseg_segment *segs,
                                                                    size_t count, uint64_t n,
                                                                    uint64_t seed, int spans) {
  memseg_output_view w;
  memseg_raw win;
  memseg_span64 span;
  uint8_t *ptr;
  uint64_t i = 0;
  size_t words, k, size;
  OK(memseg_output_view_new(segs, count, &w));
  while (i < n) {
    size_t off = 0;
    OK(memseg_output_view_window(w, &ptr, &size));
    win.ptr = ptr;
    win.size = size;
    words = win.size / 8 < n - i ? win.size / 8 : (size_t)(n - i);
    if (spans) {
      OK(memseg_raw_span64(win, 0, words, &span));
      for (k = 0; k < span.count; k++) {
        if (memseg_span64_put_u64_be(span, k, value(i + k, seed)) != MEMSEG_STATUS_OK) {
          fprintf(stderr, "span write refused at %zu\n", k);
          exit(1);
        }
      }
    } else {
      for (k = 0; k < words; k++) {
        if (memseg_raw_put_u64_be(win, k * 8, value(i + k, seed)) != MEMSEG_STATUS_OK) {
          fprintf(stderr, "window write refused at %zu\n", k * 8);
          exit(1);
        }
      }
    }
    off = words * 8;
    i += words;
    OK(memseg_output_view_commit(w, off));
    if (i < n && off + 8 > win.size) {
      OK(memseg_output_view_write_u64(w, value(i, seed))); /* straddles, or the next segment */
      i++;
    }
  }
  OK(memseg_output_view_free(w));
}

static inline __attribute__((always_inline)) uint64_t window_read_with(const memseg_segment *segs,
                                                                       size_t count, size_t fill,
                                                                       uint64_t n, int spans) {
  memseg_input_view r;
  memseg_raw win;
  memseg_span64 span;
  const uint8_t *p;
  uint64_t i = 0, sum = 0, v;
  size_t words, k, size;
  OK(memseg_input_view_new(segs, count, fill, &r));
  while (i < n) {
    size_t off = 0;
    OK(memseg_input_view_window(r, &p, &size));
    /* Built after the call, so the compiler keeps it in registers (its address never escapes). */
    win.ptr = (uint8_t *)p;
    win.size = size;
    words = win.size / 8 < n - i ? win.size / 8 : (size_t)(n - i);
    /* `x` is a local of the loop's own: `v` escapes to an ABI call below, which would keep it
     * in memory and put a store-to-load forward on every iteration's path. */
    if (spans) {
      OK(memseg_raw_span64(win, 0, words, &span));
      for (k = 0; k < span.count; k++) {
        uint64_t x;
        if (memseg_span64_get_u64_be(span, k, &x) != MEMSEG_STATUS_OK) {
          fprintf(stderr, "span read refused at %zu\n", k);
          exit(1);
        }
        sum += x;
      }
    } else {
      for (k = 0; k < words; k++) {
        uint64_t x;
        if (memseg_raw_get_u64_be(win, k * 8, &x) != MEMSEG_STATUS_OK) {
          fprintf(stderr, "window read refused at %zu\n", k * 8);
          exit(1);
        }
        sum += x;
      }
    }
    off = words * 8;
    i += words;
    OK(memseg_input_view_skip(r, off));
    if (i < n && off + 8 > win.size) {
      OK(memseg_input_view_read_u64(r, &v)); /* straddles, or the next segment */
      sum += v;
      i++;
    }
  }
  OK(memseg_input_view_free(r));
  return sum;
}

__attribute__((noinline)) static void window_write(const memseg_segment *segs, size_t count,
                                                   uint64_t n, uint64_t seed) {
  window_write_with(segs, count, n, seed, 0);
}

__attribute__((noinline)) static void span_write(const memseg_segment *segs, size_t count,
                                                 uint64_t n, uint64_t seed) {
  window_write_with(segs, count, n, seed, 1);
}

__attribute__((noinline)) static uint64_t window_read(const memseg_segment *segs, size_t count,
                                                      size_t fill, uint64_t n) {
  return window_read_with(segs, count, fill, n, 0);
}

__attribute__((noinline)) static uint64_t span_read(const memseg_segment *segs, size_t count,
                                                    size_t fill, uint64_t n) {
  return window_read_with(segs, count, fill, n, 1);
}

__attribute__((noinline)) static void call_write(const memseg_segment *segs, size_t count,
                                                 uint64_t n, uint64_t seed) {
  memseg_output_view w;
  uint64_t i;
  OK(memseg_output_view_new(segs, count, &w));
  for (i = 0; i < n; i++) {
    OK(memseg_output_view_write_u64(w, value(i, seed)));
  }
  OK(memseg_output_view_free(w));
}

__attribute__((noinline)) static uint64_t call_read(const memseg_segment *segs, size_t count,
                                                    size_t fill, uint64_t n) {
  memseg_input_view r;
  uint64_t i, sum = 0, v = 0;
  OK(memseg_input_view_new(segs, count, fill, &r));
  for (i = 0; i < n; i++) {
    OK(memseg_input_view_read_u64(r, &v));
    sum += v;
  }
  OK(memseg_input_view_free(r));
  return sum;
}

#define MAX_ROUNDS 64

/* The timed passes; ns[pass][round] is ns per value. */
enum pass {
  PLAIN_W, WINDOW_W, SPAN_W, CALL_W, SEGS_W,
  PLAIN_R, WINDOW_R, SPAN_R, CALL_R, SEGS_R,
  PASSES
};

/* The median over rounds of base's time / pass's time (1.0 = as fast as base). */
static double median_ratio(double ns[][MAX_ROUNDS], enum pass base, enum pass pass,
                           size_t rounds) {
  double ratio[MAX_ROUNDS];
  size_t r;
  for (r = 0; r < rounds; r++) {
    ratio[r] = ns[base][r] / ns[pass][r];
  }
  return median(ratio, rounds);
}

/* Whether the segments hold the plain buffer (every few segments compared). */
static int segments_hold(const memseg_segment *segs, size_t count, const uint8_t *plain,
                         uint8_t *check, const char *after) {
  size_t k;
  for (k = 0; k < count; k += count / 7 + 1) {
    OK(memseg_segment_get_bytes(segs[k], 0, check, SEGMENT));
    if (memcmp(check, plain + k * SEGMENT, SEGMENT) != 0) {
      fprintf(stderr, "after %s, segment %zu differs from the plain buffer\n", after, k);
      return 0;
    }
  }
  return 1;
}

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 64;
  size_t rounds = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 9;
  size_t bytes = mib << 20, count = bytes / SEGMENT, r, k;
  uint64_t n = bytes / 8, call_n = n / 8;
  uint8_t *plain = (uint8_t *)malloc(bytes);
  uint8_t *check = (uint8_t *)malloc(SEGMENT);
  memseg_segment *segs = (memseg_segment *)calloc(count, sizeof *segs);
  uint8_t **ptrs = (uint8_t **)calloc(count, sizeof *ptrs);
  static double ns[PASSES][MAX_ROUNDS];
  double m[PASSES];
  int failed = 0;
  if (mib == 0 || rounds == 0 || rounds > MAX_ROUNDS || plain == NULL || check == NULL ||
      segs == NULL || ptrs == NULL) {
    fprintf(stderr, "usage: view [MIB >= 1 [ROUNDS 1..%d]]\n", MAX_ROUNDS);
    return 2;
  }
  for (k = 0; k < count; k++) {
    size_t size;
    OK(memseg_segment_new_heap(SEGMENT, &segs[k]));
    OK(memseg_segment_raw(segs[k], &ptrs[k], &size));
  }
  for (r = 0; r < rounds; r++) {
    uint64_t seed = r * 7919 + 3, want = 0, i;
    uint64_t s_plain, s_call, s_call_plain, sums[3];
    double t[3];
    for (i = 0; i < n; i++) {
      want += value(i, seed);
    }
    t[0] = now_ns();
    plain_write(plain, n, seed);
    t[1] = now_ns();
    ns[PLAIN_W][r] = (t[1] - t[0]) / (double)n;
    /* The three passes over the segments (plain loop, window, span) write the same bytes; they
     * take turns at going first, so that none always finds the caches as another left them. */
    for (k = 0; k < 3; k++) {
      size_t which = (k + r) % 3;
      t[0] = now_ns();
      if (which == 0) {
        segs_write(ptrs, count, seed);
      } else if (which == 1) {
        window_write(segs, count, n, seed);
      } else {
        span_write(segs, count, n, seed);
      }
      t[1] = now_ns();
      ns[which == 0 ? SEGS_W : which == 1 ? WINDOW_W : SPAN_W][r] = (t[1] - t[0]) / (double)n;
      failed |= !segments_hold(segs, count, plain, check,
                               which == 0   ? "segs_write"
                               : which == 1 ? "window_write"
                                            : "span_write");
    }

    t[0] = now_ns();
    s_plain = plain_read(plain, n);
    t[1] = now_ns();
    ns[PLAIN_R][r] = (t[1] - t[0]) / (double)n;
    for (k = 0; k < 3; k++) {
      size_t which = (k + r) % 3;
      t[0] = now_ns();
      sums[which] = which == 0   ? segs_read(ptrs, count)
                    : which == 1 ? window_read(segs, count, SEGMENT, n)
                                 : span_read(segs, count, SEGMENT, n);
      t[1] = now_ns();
      ns[which == 0 ? SEGS_R : which == 1 ? WINDOW_R : SPAN_R][r] = (t[1] - t[0]) / (double)n;
    }

    t[0] = now_ns();
    call_write(segs, count, call_n, seed);
    t[1] = now_ns();
    s_call = call_read(segs, count, SEGMENT, call_n);
    t[2] = now_ns();
    ns[CALL_W][r] = (t[1] - t[0]) / (double)call_n;
    ns[CALL_R][r] = (t[2] - t[1]) / (double)call_n;
    s_call_plain = plain_read(plain, call_n);
    if (s_plain != want || sums[0] != want || sums[1] != want || sums[2] != want ||
        s_call != s_call_plain) {
      fprintf(stderr, "checksum mismatch\n");
      failed = 1;
    }
  }
  for (k = 0; k < PASSES; k++) {
    double copy[MAX_ROUNDS];
    memcpy(copy, ns[k], rounds * sizeof copy[0]);
    m[k] = median(copy, rounds);
  }
  printf("\nview from C: streaming big-endian u64, %zu MiB in 32 KiB heap segments, %zu rounds "
         "(medians; ratio = plain time / view time)\n",
         mib, rounds);
  {
    /* Each row: a pass and the plain pass it is compared with (itself for the baselines). */
    static const struct {
      const char *what;
      enum pass pass, base;
    } rows[] = {
        {"write: plain memory (memcpy + bswap)", PLAIN_W, PLAIN_W},
        {"write: output view window + memseg_raw_put_u64_be", WINDOW_W, PLAIN_W},
        {"write: output view window + memseg_span64_put_u64_be", SPAN_W, PLAIN_W},
        {"write: memseg_output_view_write_u64, a call per value", CALL_W, PLAIN_W},
        {"read:  plain memory (memcpy + bswap)", PLAIN_R, PLAIN_R},
        {"read:  input view window + memseg_raw_get_u64_be", WINDOW_R, PLAIN_R},
        {"read:  input view window + memseg_span64_get_u64_be", SPAN_R, PLAIN_R},
        {"read:  memseg_input_view_read_u64, a call per value", CALL_R, PLAIN_R},
    };
    for (k = 0; k < sizeof rows / sizeof rows[0]; k++) {
      printf("  %-55s %7.3f ns/value", rows[k].what, m[rows[k].pass]);
      if (rows[k].pass != rows[k].base) {
        printf("   ratio %5.2f x", median_ratio(ns, rows[k].base, rows[k].pass, rounds));
      }
      printf("\n");
    }
  }
  printf("  against plain loops over the same segments' memory (the view's own pages):\n");
  for (k = 0; k < 2; k++) {
    enum pass segs_pass = k ? SEGS_R : SEGS_W;
    printf("  %s plain, same segments   %7.3f ns/value   window ratio %5.2f x   span ratio %5.2f x\n",
           k ? "read: " : "write:", m[segs_pass],
           median_ratio(ns, segs_pass, k ? WINDOW_R : WINDOW_W, rounds),
           median_ratio(ns, segs_pass, k ? SPAN_R : SPAN_W, rounds));
  }
  for (k = 0; k < count; k++) {
    OK(memseg_segment_free(segs[k]));
  }
  free(ptrs);
  free(segs);
  free(check);
  free(plain);
  return failed;
}
