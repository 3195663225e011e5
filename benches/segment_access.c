/*
 * memseg: managed memory for data engines.
 * SPDX-License-Identifier: Apache-2.0
 *
 * segment_access.c: the segment benchmarks of BENCHMARKS.md, each figure measured in the
 * same run as the baseline it is compared with, and each ratio printed.
 *
 *   1. Sequential typed get and put of u64 over SEGMENTS segments of 32 KiB (512 MiB):
 *      (a)  plain uint64_t loads/stores over the same segments' memory (the limit),
 *      (a') plain loads/stores over one malloc'd array of the same size (reference),
 *      (b)  the inline accessors of memseg_inline.h (memseg_raw_get_u64 / _put_u64),
 *      (c)  one ABI call per access (memseg_segment_get_u64 / _put_u64, shared library);
 *      the same again in big-endian order (_be accessors against a plain loop with a byte
 *      swap), and the same access loops on one 32 KiB segment that stays in cache.
 *   2. Copy of whole 32 KiB segments: memseg_segment_copy against memcpy of the same
 *      buffers, in cache (a few segments reused) and out of cache (cycling through all).
 *
 * Every timed loop feeds a checksum that is checked against its closed form, so the compiler
 * cannot delete the loops and a wrong result fails the run (exit status 1). Variants run
 * interleaved, in rotating order, ROUNDS times; the figures are medians, and each ratio is the
 * median of the per-round ratios. Nothing here asserts a time: targets are printed as
 * "meets" or "MISSES" for the reader.
 *
 * Usage: segment_access [SEGMENTS [ROUNDS]]   (defaults 16384 and 9)
 * Built and run by `cargo bench --bench segment_access` (benches/segment_access.rs); by hand:
 *   cc -std=c11 -O3 -Wall -Wextra -Werror -Iinclude benches/segment_access.c \
 *      -Lsome/dir -lmemseg -Wl,-rpath,some/dir -o segment_access
 * where some/dir holds libmemseg.so and its soname link libmemseg.so.0.
 */

#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memseg.h"
#include "memseg_inline.h"

#if defined(__GNUC__) || defined(__clang__)
#define BENCH_NOINLINE __attribute__((noinline))
/* Tells the compiler that memory may have changed, so a pass cannot be merged with the next. */
#define BENCH_CLOBBER() __asm__ volatile("" ::: "memory")
#else
#define BENCH_NOINLINE
#define BENCH_CLOBBER() ((void)0)
#endif

#ifndef BENCH_FLAVOUR
#define BENCH_FLAVOUR "(flavour not given)"
#endif

enum { SEGMENT_SIZE = 32 * 1024, WORDS_PER_SEGMENT = SEGMENT_SIZE / 8, MAX_ROUNDS = 99 };

static int failures;

static void fail(const char *what) {
  char message[256];
  size_t n = memseg_last_error_message(message, sizeof message);
  fprintf(stderr, "FAILED: %s (last error: %s)\n", what, n ? message : "none");
  failures++;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t bswap64(uint64_t v) { return memseg_bswap64(v); }

/* The memory under test: segment handles and, for the plain loops, their memory. */
typedef struct bench_mem {
  size_t count;
  memseg_segment *segs;
  memseg_raw *raws;
} bench_mem;

/* Sum of seed + i for i in [0, n), modulo 2^64: what a get pass must return after a put pass
 * with that seed. */
static uint64_t expected_sum(uint64_t n, uint64_t seed) {
  uint64_t a = n, b = n - 1;
  if (a % 2 == 0) {
    a /= 2;
  } else {
    b /= 2;
  }
  return a * b + n * seed;
}

/* ---- 1. typed u64 access ------------------------------------------------------------------ */
/* Every pass visits the segments in order and each segment's words in order; word g of the
 * whole (global index) holds seed + g. A failing status stops the pass and is reported. */

/* (a) plain loads and stores over the segments' memory. */
BENCH_NOINLINE static uint64_t get_plain(const bench_mem *m, int *err) {
  uint64_t sum = 0;
  (void)err;
  for (size_t s = 0; s < m->count; s++) {
    const uint64_t *p = (const uint64_t *)(const void *)m->raws[s].ptr;
    size_t n = m->raws[s].size / 8;
    for (size_t i = 0; i < n; i++) {
      sum += p[i];
    }
  }
  return sum;
}

BENCH_NOINLINE static void put_plain(const bench_mem *m, uint64_t seed, int *err) {
  (void)err;
  for (size_t s = 0; s < m->count; s++) {
    uint64_t *p = (uint64_t *)(void *)m->raws[s].ptr;
    size_t n = m->raws[s].size / 8;
    uint64_t base = seed + s * n;
    for (size_t i = 0; i < n; i++) {
      p[i] = base + i;
    }
  }
}

BENCH_NOINLINE static uint64_t get_plain_be(const bench_mem *m, int *err) {
  uint64_t sum = 0;
  (void)err;
  for (size_t s = 0; s < m->count; s++) {
    const uint64_t *p = (const uint64_t *)(const void *)m->raws[s].ptr;
    size_t n = m->raws[s].size / 8;
    for (size_t i = 0; i < n; i++) {
      sum += bswap64(p[i]);
    }
  }
  return sum;
}

BENCH_NOINLINE static void put_plain_be(const bench_mem *m, uint64_t seed, int *err) {
  (void)err;
  for (size_t s = 0; s < m->count; s++) {
    uint64_t *p = (uint64_t *)(void *)m->raws[s].ptr;
    size_t n = m->raws[s].size / 8;
    uint64_t base = seed + s * n;
    for (size_t i = 0; i < n; i++) {
      p[i] = bswap64(base + i);
    }
  }
}

/* (a') one malloc'd array: no segment boundaries at all. */
typedef struct flat_mem {
  uint64_t *words;
  size_t count;
} flat_mem;

BENCH_NOINLINE static uint64_t get_flat(const flat_mem *f) {
  uint64_t sum = 0;
  for (size_t i = 0; i < f->count; i++) {
    sum += f->words[i];
  }
  return sum;
}

BENCH_NOINLINE static void put_flat(const flat_mem *f, uint64_t seed) {
  for (size_t i = 0; i < f->count; i++) {
    f->words[i] = seed + i;
  }
}

/* (b) the inline accessors, as a host writes them: lend each segment's memory once with
 * memseg_raw_of() (one ABI call per 32 KiB, inside the timed loop), then one bounds-checked
 * inline access per word, its status checked. */
#define DEFINE_INLINE_PASSES(suffix)                                                         \
  BENCH_NOINLINE static uint64_t get_inline##suffix(const bench_mem *m, int *err) {          \
    uint64_t sum = 0;                                                                        \
    for (size_t s = 0; s < m->count; s++) {                                                  \
      memseg_raw raw;                                                                        \
      if (memseg_raw_of(m->segs[s], &raw) != MEMSEG_STATUS_OK) {                             \
        *err = 1;                                                                            \
        return 0;                                                                            \
      }                                                                                      \
      for (size_t off = 0; off < raw.size; off += 8) {                                       \
        uint64_t v;                                                                          \
        if (memseg_raw_get_u64##suffix(raw, off, &v) != MEMSEG_STATUS_OK) {                  \
          *err = 1;                                                                          \
          return 0;                                                                          \
        }                                                                                    \
        sum += v;                                                                            \
      }                                                                                      \
    }                                                                                        \
    return sum;                                                                              \
  }                                                                                          \
  BENCH_NOINLINE static void put_inline##suffix(const bench_mem *m, uint64_t seed, int *err) { \
    for (size_t s = 0; s < m->count; s++) {                                                  \
      memseg_raw raw;                                                                        \
      if (memseg_raw_of(m->segs[s], &raw) != MEMSEG_STATUS_OK) {                             \
        *err = 1;                                                                            \
        return;                                                                              \
      }                                                                                      \
      uint64_t value = seed + s * (raw.size / 8);                                            \
      for (size_t off = 0; off < raw.size; off += 8) {                                       \
        if (memseg_raw_put_u64##suffix(raw, off, value++) != MEMSEG_STATUS_OK) {             \
          *err = 1;                                                                          \
          return;                                                                            \
        }                                                                                    \
      }                                                                                      \
    }                                                                                        \
  }

DEFINE_INLINE_PASSES()
DEFINE_INLINE_PASSES(_be)

/* (c) one call into the shared library per access. */
#define DEFINE_ABI_PASSES(suffix)                                                            \
  BENCH_NOINLINE static uint64_t get_abi##suffix(const bench_mem *m, int *err) {             \
    uint64_t sum = 0;                                                                        \
    for (size_t s = 0; s < m->count; s++) {                                                  \
      memseg_segment seg = m->segs[s];                                                       \
      size_t size = m->raws[s].size;                                                         \
      for (size_t off = 0; off < size; off += 8) {                                           \
        uint64_t v;                                                                          \
        if (memseg_segment_get_u64##suffix(seg, off, &v) != MEMSEG_STATUS_OK) {              \
          *err = 1;                                                                          \
          return 0;                                                                          \
        }                                                                                    \
        sum += v;                                                                            \
      }                                                                                      \
    }                                                                                        \
    return sum;                                                                              \
  }                                                                                          \
  BENCH_NOINLINE static void put_abi##suffix(const bench_mem *m, uint64_t seed, int *err) {  \
    for (size_t s = 0; s < m->count; s++) {                                                  \
      memseg_segment seg = m->segs[s];                                                       \
      size_t size = m->raws[s].size;                                                         \
      uint64_t value = seed + s * (size / 8);                                                \
      for (size_t off = 0; off < size; off += 8) {                                           \
        if (memseg_segment_put_u64##suffix(seg, off, value++) != MEMSEG_STATUS_OK) {         \
          *err = 1;                                                                          \
          return;                                                                            \
        }                                                                                    \
      }                                                                                      \
    }                                                                                        \
  }

DEFINE_ABI_PASSES()
DEFINE_ABI_PASSES(_be)

/* (c0) The floor under (c): an out-of-line function with the signature of
 * memseg_segment_get_u64 / _put_u64 that does only the NULL check, the bounds check and the
 * access, on memory it finds in a global (as the library finds its handle table), reached
 * through a function pointer the compiler cannot see through (as a call through the PLT is).
 * (c) minus (c0) is what validating the handle costs; (c0) is what any call costs. */
static memseg_raw floor_raw;

#define DEFINE_FLOOR_PASSES(suffix)                                                          \
  BENCH_NOINLINE static memseg_status floor_get_u64##suffix(memseg_segment segment,          \
                                                            size_t offset, uint64_t *out) {  \
    (void)segment;                                                                           \
    if (out == NULL) {                                                                       \
      return MEMSEG_STATUS_NULL_ARGUMENT;                                                    \
    }                                                                                        \
    return memseg_raw_get_u64##suffix(floor_raw, offset, out);                               \
  }                                                                                          \
  BENCH_NOINLINE static memseg_status floor_put_u64##suffix(memseg_segment segment,          \
                                                            size_t offset, uint64_t value) { \
    (void)segment;                                                                           \
    return memseg_raw_put_u64##suffix(floor_raw, offset, value);                             \
  }                                                                                          \
  static memseg_status (*volatile floor_get_fn##suffix)(memseg_segment, size_t, uint64_t *) = \
      floor_get_u64##suffix;                                                                 \
  static memseg_status (*volatile floor_put_fn##suffix)(memseg_segment, size_t, uint64_t) =  \
      floor_put_u64##suffix;                                                                 \
  BENCH_NOINLINE static uint64_t get_floor##suffix(const bench_mem *m, int *err) {           \
    uint64_t sum = 0;                                                                        \
    for (size_t s = 0; s < m->count; s++) {                                                  \
      memseg_segment seg = m->segs[s];                                                       \
      size_t size = m->raws[s].size;                                                         \
      memseg_status (*get)(memseg_segment, size_t, uint64_t *) = floor_get_fn##suffix;       \
      floor_raw = m->raws[s];                                                                \
      for (size_t off = 0; off < size; off += 8) {                                           \
        uint64_t v;                                                                          \
        if (get(seg, off, &v) != MEMSEG_STATUS_OK) {                                         \
          *err = 1;                                                                          \
          return 0;                                                                          \
        }                                                                                    \
        sum += v;                                                                            \
      }                                                                                      \
    }                                                                                        \
    return sum;                                                                              \
  }                                                                                          \
  BENCH_NOINLINE static void put_floor##suffix(const bench_mem *m, uint64_t seed, int *err) { \
    for (size_t s = 0; s < m->count; s++) {                                                  \
      memseg_segment seg = m->segs[s];                                                       \
      size_t size = m->raws[s].size;                                                         \
      memseg_status (*put)(memseg_segment, size_t, uint64_t) = floor_put_fn##suffix;         \
      uint64_t value = seed + s * (size / 8);                                                \
      floor_raw = m->raws[s];                                                                \
      for (size_t off = 0; off < size; off += 8) {                                           \
        if (put(seg, off, value++) != MEMSEG_STATUS_OK) {                                    \
          *err = 1;                                                                          \
          return;                                                                            \
        }                                                                                    \
      }                                                                                      \
    }                                                                                        \
  }

DEFINE_FLOOR_PASSES()
DEFINE_FLOOR_PASSES(_be)

/* ---- timing and reporting ------------------------------------------------------------------ */

typedef uint64_t (*get_fn)(const bench_mem *, int *);
typedef void (*put_fn)(const bench_mem *, uint64_t, int *);

typedef struct variant {
  const char *label;
  const char *what;
  get_fn get;
  put_fn put;
  double ns[MAX_ROUNDS]; /* per access (or per copy), one per round */
} variant;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(const double *values, int n) {
  double sorted[MAX_ROUNDS];
  memcpy(sorted, values, (size_t)n * sizeof *values);
  qsort(sorted, (size_t)n, sizeof *sorted, cmp_double);
  return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/* Median over rounds of base[r] / other[r]: the speed of `other` relative to `base`. */
static double median_speed(const variant *base, const variant *other, int rounds) {
  double r[MAX_ROUNDS];
  for (int i = 0; i < rounds; i++) {
    r[i] = base->ns[i] / other->ns[i];
  }
  return median(r, rounds);
}

static double minimum(const double *values, int n) {
  double m = values[0];
  for (int i = 1; i < n; i++) {
    m = values[i] < m ? values[i] : m;
  }
  return m;
}

/* The median, and the best round in brackets: on a shared machine the gap between the two
 * shows how much the neighbours disturbed the run. */
static void print_line(const variant *v, int rounds, const char *unit, double scale) {
  printf("  %-4s %-52s %9.3f %s  (best %.3f)\n", v->label, v->what, median(v->ns, rounds) * scale,
         unit, minimum(v->ns, rounds) * scale);
}

static void print_speed(const char *text, const variant *base, const variant *other, int rounds,
                        double target) {
  double speed = median_speed(base, other, rounds);
  if (target > 0) {
    printf("       %-52s %9.3f x   (target >= %.2f: %s)\n", text, speed, target,
           speed >= target ? "meets" : "MISSES");
  } else {
    printf("       %-52s %9.3f x\n", text, speed);
  }
}

static void print_abi_target(const variant *v, int rounds, double target_ns) {
  double ns = median(v->ns, rounds);
  printf("       %-52s %9.3f ns  (target <= %.1f ns: %s)\n", "(c) per access", ns, target_ns,
         ns <= target_ns ? "meets" : "MISSES");
}

/* Checks one word at the start and one at the end of every segment after a put pass. */
static void check_put(const bench_mem *m, uint64_t seed, int big_endian, const char *what) {
  for (size_t s = 0; s < m->count; s++) {
    const uint64_t *p = (const uint64_t *)(const void *)m->raws[s].ptr;
    size_t n = m->raws[s].size / 8;
    uint64_t first = p[0], last = p[n - 1];
    if (big_endian) {
      first = bswap64(first);
      last = bswap64(last);
    }
    if (first != seed + s * n || last != seed + s * n + n - 1) {
      fail(what);
      return;
    }
  }
}

static double time_get(const bench_mem *m, get_fn get, uint64_t expect, size_t passes,
                       const char *what) {
  int err = 0;
  uint64_t sum = 0;
  uint64_t t0 = now_ns();
  for (size_t i = 0; i < passes; i++) {
    sum += get(m, &err);
    BENCH_CLOBBER();
  }
  uint64_t t1 = now_ns();
  if (err) {
    fail(what);
  } else if (sum != expect * passes) {
    fprintf(stderr, "checksum of %s: %" PRIu64 ", expected %" PRIu64 "\n", what, sum,
            expect * passes);
    fail(what);
  }
  return (double)(t1 - t0);
}

static double time_put(const bench_mem *m, put_fn put, uint64_t seed, size_t passes,
                       const char *what) {
  int err = 0;
  uint64_t t0 = now_ns();
  for (size_t i = 0; i < passes; i++) {
    put(m, seed, &err);
    BENCH_CLOBBER();
  }
  uint64_t t1 = now_ns();
  if (err) {
    fail(what);
  }
  return (double)(t1 - t0);
}

/*
 * One access group: the plain baseline (a), the inline accessors (b), the call floor (c0) and
 * the ABI (c), get and put, on memory `m`, `passes` passes per timing. Gets read what the last
 * put wrote (checked against the closed form), so each round first runs a plain put with a
 * fresh seed.
 */
enum { A, B, C0, C, VARIANTS };

typedef struct access_group {
  variant get[VARIANTS];
  variant put[VARIANTS];
} access_group;

static void run_access_group(access_group *g, const bench_mem *m, size_t passes, int big_endian,
                             int round) {
  uint64_t words = (uint64_t)m->count * WORDS_PER_SEGMENT;
  double per = (double)words * (double)passes;
  for (int k = 0; k < VARIANTS; k++) {
    int i = (k + round) % VARIANTS; /* rotate, so no variant always runs first */
    uint64_t seed = (uint64_t)round * 1000003u + (uint64_t)i * 7919u + 1;
    variant *put = &g->put[i];
    put->ns[round] = time_put(m, put->put, seed, passes, put->what) / per;
    check_put(m, seed, big_endian, put->what);
  }
  uint64_t seed = (uint64_t)round * 7777u + 5;
  int err = 0;
  g->put[A].put(m, seed, &err);
  uint64_t expect = expected_sum(words, seed);
  for (int k = 0; k < VARIANTS; k++) {
    variant *get = &g->get[(k + round) % VARIANTS];
    get->ns[round] = time_get(m, get->get, expect, passes, get->what) / per;
  }
}

static void report_access_group(const access_group *g, int rounds, int with_targets) {
  for (int op = 0; op < 2; op++) {
    const variant *v = op == 0 ? g->get : g->put;
    for (int k = 0; k < VARIANTS; k++) {
      print_line(&v[k], rounds, "ns/access", 1.0);
    }
    print_speed("speed (b) / (a)", &v[A], &v[B], rounds, with_targets ? 0.9 : 0);
    print_speed("speed (c) / (a)", &v[A], &v[C], rounds, 0);
    print_speed("speed (c) / (c0): handle check vs a bare call", &v[C0], &v[C], rounds, 0);
    if (with_targets) {
      print_abi_target(&v[C], rounds, 3.0);
    }
  }
}

static void init_group(access_group *g, int big_endian) {
  static const char *labels[VARIANTS] = {"(a)", "(b)", "(c0)", "(c)"};
  static const char *get_what[2][VARIANTS] = {
      {"get u64: plain loads", "get u64: memseg_raw_get_u64 (inline header)",
       "get u64: bare out-of-line call, same signature", "get u64: memseg_segment_get_u64 (ABI)"},
      {"get u64 BE: plain loads + bswap", "get u64 BE: memseg_raw_get_u64_be (inline)",
       "get u64 BE: bare out-of-line call, same signature",
       "get u64 BE: memseg_segment_get_u64_be (ABI)"}};
  static const char *put_what[2][VARIANTS] = {
      {"put u64: plain stores", "put u64: memseg_raw_put_u64 (inline header)",
       "put u64: bare out-of-line call, same signature", "put u64: memseg_segment_put_u64 (ABI)"},
      {"put u64 BE: bswap + plain stores", "put u64 BE: memseg_raw_put_u64_be (inline)",
       "put u64 BE: bare out-of-line call, same signature",
       "put u64 BE: memseg_segment_put_u64_be (ABI)"}};
  static const get_fn gets[2][VARIANTS] = {{get_plain, get_inline, get_floor, get_abi},
                                           {get_plain_be, get_inline_be, get_floor_be, get_abi_be}};
  static const put_fn puts[2][VARIANTS] = {{put_plain, put_inline, put_floor, put_abi},
                                           {put_plain_be, put_inline_be, put_floor_be, put_abi_be}};
  memset(g, 0, sizeof *g);
  for (int k = 0; k < VARIANTS; k++) {
    g->get[k].label = labels[k];
    g->get[k].what = get_what[big_endian][k];
    g->get[k].get = gets[big_endian][k];
    g->put[k].label = labels[k];
    g->put[k].what = put_what[big_endian][k];
    g->put[k].put = puts[big_endian][k];
  }
}

/* ---- 2. copy of whole segments -------------------------------------------------------------- */

typedef struct copy_group {
  variant memcpy_v;
  variant copy_v;
} copy_group;

/* Copies segment i to segment i + half for i in [0, half), `passes` times. */
BENCH_NOINLINE static void copy_memcpy(const bench_mem *m, size_t half, size_t passes) {
  for (size_t p = 0; p < passes; p++) {
    for (size_t i = 0; i < half; i++) {
      memcpy(m->raws[half + i].ptr, m->raws[i].ptr, SEGMENT_SIZE);
    }
    BENCH_CLOBBER();
  }
}

BENCH_NOINLINE static int copy_abi(const bench_mem *m, size_t half, size_t passes) {
  for (size_t p = 0; p < passes; p++) {
    for (size_t i = 0; i < half; i++) {
      if (memseg_segment_copy(m->segs[i], 0, m->segs[half + i], 0, SEGMENT_SIZE) !=
          MEMSEG_STATUS_OK) {
        return 1;
      }
    }
    BENCH_CLOBBER();
  }
  return 0;
}

/* Fills the source half with a pattern that depends on `tag` and clears the target half. */
static void prepare_copy(const bench_mem *m, size_t half, uint64_t tag) {
  for (size_t i = 0; i < half; i++) {
    uint64_t *src = (uint64_t *)(void *)m->raws[i].ptr;
    for (size_t w = 0; w < WORDS_PER_SEGMENT; w++) {
      src[w] = tag ^ (i * WORDS_PER_SEGMENT + w);
    }
    memset(m->raws[half + i].ptr, 0, SEGMENT_SIZE);
  }
}

static void check_copy(const bench_mem *m, size_t half, uint64_t tag, const char *what) {
  for (size_t i = 0; i < half; i++) {
    if (memcmp(m->raws[i].ptr, m->raws[half + i].ptr, SEGMENT_SIZE) != 0 ||
        *(const uint64_t *)(const void *)m->raws[half + i].ptr != (tag ^ (i * WORDS_PER_SEGMENT))) {
      fail(what);
      return;
    }
  }
}

static void run_copy_group(copy_group *g, const bench_mem *m, size_t passes, int round) {
  size_t half = m->count / 2;
  double per = (double)half * (double)passes;
  for (int k = 0; k < 2; k++) {
    int which = (k + round) % 2;
    uint64_t tag = (uint64_t)round * 2 + (uint64_t)which + 0x5EED;
    prepare_copy(m, half, tag);
    uint64_t t0 = now_ns();
    if (which == 0) {
      copy_memcpy(m, half, passes);
    } else if (copy_abi(m, half, passes) != 0) {
      fail("memseg_segment_copy");
    }
    uint64_t t1 = now_ns();
    variant *v = which == 0 ? &g->memcpy_v : &g->copy_v;
    v->ns[round] = (double)(t1 - t0) / per;
    check_copy(m, half, tag, v->what);
  }
}

static void init_copy_group(copy_group *g) {
  memset(g, 0, sizeof *g);
  g->memcpy_v.label = "(m)";
  g->memcpy_v.what = "memcpy of 32 KiB";
  g->copy_v.label = "(s)";
  g->copy_v.what = "memseg_segment_copy of 32 KiB (ABI call)";
}

static void report_copy_group(const copy_group *g, int rounds) {
  print_line(&g->memcpy_v, rounds, "us/copy", 1e-3);
  print_line(&g->copy_v, rounds, "us/copy", 1e-3);
  print_speed("speed (s) / (m)", &g->memcpy_v, &g->copy_v, rounds, 0.9);
  printf("       %-52s %9.2f GB/s (memcpy), %.2f GB/s (segment copy)\n", "bytes copied",
         SEGMENT_SIZE / median(g->memcpy_v.ns, rounds),
         SEGMENT_SIZE / median(g->copy_v.ns, rounds));
}

/* ---- main ------------------------------------------------------------------------------------ */

static int make_mem(bench_mem *m, size_t count) {
  m->count = count;
  m->segs = calloc(count, sizeof *m->segs);
  m->raws = calloc(count, sizeof *m->raws);
  if (m->segs == NULL || m->raws == NULL) {
    return 1;
  }
  for (size_t s = 0; s < count; s++) {
    if (memseg_segment_new_offheap(SEGMENT_SIZE, MEMSEG_OFFHEAP_PREFAULT, &m->segs[s]) !=
            MEMSEG_STATUS_OK ||
        memseg_raw_of(m->segs[s], &m->raws[s]) != MEMSEG_STATUS_OK) {
      return 1;
    }
  }
  return 0;
}

static void free_mem(bench_mem *m) {
  for (size_t s = 0; s < m->count; s++) {
    if (memseg_segment_free(m->segs[s]) != MEMSEG_STATUS_OK) {
      fail("memseg_segment_free");
    }
  }
  free(m->segs);
  free(m->raws);
}

/* Segment and memory, sorted together by address. */
typedef struct seg_and_raw {
  memseg_segment seg;
  memseg_raw raw;
} seg_and_raw;

static int cmp_address(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const seg_and_raw *)a)->raw.ptr;
  uintptr_t y = (uintptr_t)((const seg_and_raw *)b)->raw.ptr;
  return (x > y) - (x < y);
}

/*
 * Puts `m` in ascending address order, so that a pass over the segments is sequential in memory
 * like a pass over one array, and copies the allocation order into `alloc_order` first. (Each
 * off-heap segment is its own mapping, and the kernel places successive mappings at descending
 * addresses: in allocation order a pass steps backwards by 32 KiB, which the hardware
 * prefetchers follow less well; the benchmark reports that order separately.)
 */
static int sort_by_address(bench_mem *m, bench_mem *alloc_order) {
  seg_and_raw *pairs = calloc(m->count, sizeof *pairs);
  alloc_order->count = m->count;
  alloc_order->segs = calloc(m->count, sizeof *m->segs);
  alloc_order->raws = calloc(m->count, sizeof *m->raws);
  if (pairs == NULL || alloc_order->segs == NULL || alloc_order->raws == NULL) {
    return 1;
  }
  memcpy(alloc_order->segs, m->segs, m->count * sizeof *m->segs);
  memcpy(alloc_order->raws, m->raws, m->count * sizeof *m->raws);
  for (size_t s = 0; s < m->count; s++) {
    pairs[s].seg = m->segs[s];
    pairs[s].raw = m->raws[s];
  }
  qsort(pairs, m->count, sizeof *pairs, cmp_address);
  for (size_t s = 0; s < m->count; s++) {
    m->segs[s] = pairs[s].seg;
    m->raws[s] = pairs[s].raw;
  }
  free(pairs);
  return 0;
}

static size_t parse_arg(const char *text, size_t fallback) {
  char *end;
  unsigned long long v;
  if (text == NULL) {
    return fallback;
  }
  v = strtoull(text, &end, 10);
  return (*end == '\0' && v > 0) ? (size_t)v : fallback;
}

static void init_single(variant *v, const char *label, const char *what) {
  memset(v, 0, sizeof *v);
  v->label = label;
  v->what = what;
}

int main(int argc, char **argv) {
  size_t count = parse_arg(argc > 1 ? argv[1] : NULL, 16384);
  size_t rounds_arg = parse_arg(argc > 2 ? argv[2] : NULL, 9);
  int rounds = rounds_arg > MAX_ROUNDS ? MAX_ROUNDS : (int)rounds_arg;
  bench_mem big, alloc_order, small;
  flat_mem flat;
  access_group access, access_be, cached, cached_be;
  copy_group copy_hot, copy_cold;
  variant flat_get, flat_put, alloc_get;
  /* In cache: one segment, as many passes as the big memory has segments (same access count). */
  size_t cached_passes = count;
  /* Copies: 4 segments (2 pairs, 128 KiB: L2) reused, or all segments (out of cache). */
  size_t copy_hot_passes = count / 2 > 1 ? count / 2 : 1;

  if (count < 2 || make_mem(&big, count) != 0 || make_mem(&small, 4) != 0 ||
      sort_by_address(&big, &alloc_order) != 0) {
    fail("allocating the segments");
    return 1;
  }
  flat.count = count * WORDS_PER_SEGMENT;
  flat.words = malloc(flat.count * sizeof *flat.words);
  if (flat.words == NULL) {
    fail("allocating the flat array");
    return 1;
  }
  put_flat(&flat, 0); /* faults every page in before the first timing */
  bench_mem one = {1, small.segs, small.raws};
  bench_mem four = {4, small.segs, small.raws};

  init_group(&access, 0);
  init_group(&access_be, 1);
  init_group(&cached, 0);
  init_group(&cached_be, 1);
  init_copy_group(&copy_hot);
  init_copy_group(&copy_cold);
  init_single(&flat_get, "(a')", "get u64: plain loads, one malloc'd array");
  init_single(&flat_put, "(a')", "put u64: plain stores, one malloc'd array");
  init_single(&alloc_get, "(a\")", "get u64: plain loads, segments in allocation order");

  printf("memseg segment benchmarks (%s), memseg %s\n", BENCH_FLAVOUR, memseg_version_string());
  printf("%zu off-heap segments x %d bytes = %zu MiB; %d rounds, medians; ratios are medians of "
         "per-round ratios\n",
         count, SEGMENT_SIZE, count * SEGMENT_SIZE >> 20, rounds);
  fflush(stdout);

  for (int r = 0; r < rounds; r++) {
    double words = (double)flat.count;
    uint64_t seed = (uint64_t)r * 31u + 3;
    uint64_t t0 = now_ns();
    put_flat(&flat, seed);
    BENCH_CLOBBER();
    uint64_t t1 = now_ns();
    uint64_t sum = get_flat(&flat);
    uint64_t t2 = now_ns();
    if (sum != expected_sum(flat.count, seed)) {
      fail("flat array checksum");
    }
    flat_put.ns[r] = (double)(t1 - t0) / words;
    flat_get.ns[r] = (double)(t2 - t1) / words;

    run_access_group(&access, &big, 1, 0, r);
    /* The last get of the group left the values of a plain put with this seed. */
    seed = (uint64_t)r * 7777u + 5;
    alloc_get.ns[r] =
        time_get(&alloc_order, get_plain, expected_sum(flat.count, seed), 1, alloc_get.what) /
        words;
    run_access_group(&access_be, &big, 1, 1, r);
    run_access_group(&cached, &one, cached_passes, 0, r);
    run_access_group(&cached_be, &one, cached_passes, 1, r);

    run_copy_group(&copy_hot, &four, copy_hot_passes, r);
    run_copy_group(&copy_cold, &big, 1, r);
  }

  printf("\n1. sequential u64 access over %zu MiB of 32 KiB segments in address order "
         "(ns per access)\n",
         count * SEGMENT_SIZE >> 20);
  report_access_group(&access, rounds, 1);
  printf("   references: one array instead of segments, and the segments in allocation order\n");
  print_line(&flat_get, rounds, "ns/access", 1.0);
  print_line(&flat_put, rounds, "ns/access", 1.0);
  print_line(&alloc_get, rounds, "ns/access", 1.0);
  print_speed("get: speed (a) segments / (a') one array", &flat_get, &access.get[A], rounds, 0);
  print_speed("put: speed (a) segments / (a') one array", &flat_put, &access.put[A], rounds, 0);
  print_speed("get: speed (a\") allocation order / (a) address order", &access.get[A], &alloc_get,
              rounds, 0);
  printf("\n   big-endian (the _be accessors against a plain loop with a byte swap)\n");
  report_access_group(&access_be, rounds, 1);
  printf("\n   in cache: one 32 KiB segment, %zu passes (L1/L2: instruction cost, no memory "
         "traffic)\n",
         cached_passes);
  report_access_group(&cached, rounds, 0);
  report_access_group(&cached_be, rounds, 0);

  printf("\n2. copy of whole 32 KiB segments (memseg_segment_copy vs memcpy, same buffers)\n");
  printf("   in cache: 2 segments copied onto 2 others (128 KiB), %zu passes\n", copy_hot_passes);
  report_copy_group(&copy_hot, rounds);
  printf("   out of cache: %zu segments copied onto %zu others (%zu MiB)\n", count / 2, count / 2,
         count * SEGMENT_SIZE >> 20);
  report_copy_group(&copy_cold, rounds);

  free(flat.words);
  free_mem(&big);
  free(alloc_order.segs);
  free(alloc_order.raws);
  free_mem(&small);
  size_t live = 1;
  if (memseg_segment_live_count(&live) != MEMSEG_STATUS_OK || live != 0) {
    fail("segments left live");
  }
  if (failures) {
    printf("\n%d check(s) FAILED\n", failures);
    return 1;
  }
  printf("\nall checksums and copies verified\n");
  return 0;
}
