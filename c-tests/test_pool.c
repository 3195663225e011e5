/*
 * Buffer pools through the C ABI: network and local pools, requests (non-blocking, per channel,
 * blocking with timeouts), availability by callback and by a pollable file descriptor,
 * listeners, overdraft, exclusive segments as segment handles, buffers (reference counts,
 * indices, tags, raw view, bytes), read-only slices, builder/consumer across two threads, stats,
 * and the bad inputs: min > max, minimums over the total, release twice, use after release,
 * destroy twice, write through a read-only slice, timeouts, stale and wrong-kind handles.
 */
#define _POSIX_C_SOURCE 200809L /* pthreads, poll */
#include <assert.h>
#include <poll.h>
#include <pthread.h>
#include <time.h>

#include "memseg_test.h"

#define SEG 4096

static memseg_network_pool network(size_t count) {
  memseg_network_pool net = {0};
  CHECK_OK(memseg_network_pool_new(count, SEG, 0, &net));
  return net;
}

static memseg_local_pool local(memseg_network_pool net, size_t min, size_t max) {
  memseg_local_pool_config config = {0};
  memseg_local_pool pool = {0};
  config.min = min;
  config.max = max;
  CHECK_OK(memseg_local_pool_new(net, &config, &pool));
  return pool;
}

static memseg_buffer request(memseg_local_pool pool) {
  memseg_buffer b = {0};
  CHECK_OK(memseg_local_pool_request(pool, &b));
  return b;
}

static bool readable(int fd) {
  struct pollfd p;
  p.fd = fd;
  p.events = POLLIN;
  p.revents = 0;
  CHECK(poll(&p, 1, 0) >= 0);
  return (p.revents & POLLIN) != 0;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void test_bad_configurations(void) {
  memseg_network_pool net = {0}, untouched = {0};
  memseg_local_pool pool = {0}, a;
  memseg_local_pool_config config = {0};
  memseg_network_pool_counters stats;

  CHECK_STATUS(memseg_network_pool_new(0, SEG, 0, &net), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_network_pool_new(4, 0, 0, &net), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_network_pool_new(4, SEG, 0x80, &net), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_network_pool_new(4, SEG, 0, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_EQ(net.bits, untouched.bits);
  CHECK_OK(memseg_network_pool_new(10, SEG, MEMSEG_NETWORK_POOL_HEAP, &net));

  config.min = 5;
  config.max = 4;
  CHECK_STATUS(memseg_local_pool_new(net, &config, &pool), MEMSEG_STATUS_INVALID_ARGUMENT);
  {
    char msg[256];
    memseg_last_error_message(msg, sizeof msg);
    CHECK(strstr(msg, "above its maximum") != NULL);
  }
  config.min = 0;
  config.max = 0;
  CHECK_STATUS(memseg_local_pool_new(net, &config, &pool), MEMSEG_STATUS_INVALID_ARGUMENT);
  config.max = 4;
  config.max_per_channel = 2; /* without channels */
  CHECK_STATUS(memseg_local_pool_new(net, &config, &pool), MEMSEG_STATUS_INVALID_ARGUMENT);
  config.max_per_channel = 0;
  config.max_overdraft = (size_t)1 << 31; /* above 2^31 - 1 */
  CHECK_STATUS(memseg_local_pool_new(net, &config, &pool), MEMSEG_STATUS_INVALID_ARGUMENT);
  {
    char msg[256];
    memseg_last_error_message(msg, sizeof msg);
    CHECK(strstr(msg, "overdraft maximum") != NULL);
  }
  config.max_overdraft = 0;
  CHECK_STATUS(memseg_local_pool_new(net, NULL, &pool), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_EQ(pool.bits, 0);

  a = local(net, 6, 6);
  CHECK_STATUS(memseg_local_pool_new(net, &(memseg_local_pool_config){5, 8, 0, 0, 0}, &pool),
               MEMSEG_STATUS_INVALID_ARGUMENT);
  {
    char msg[256];
    memseg_last_error_message(msg, sizeof msg);
    CHECK(strstr(msg, "insufficient network buffers") != NULL);
  }
  CHECK_EQ(pool.bits, 0);
  CHECK_OK(memseg_network_pool_stats(net, &stats));
  CHECK_EQ(stats.required, 6);
  CHECK_EQ(stats.local_pools, 1);
  CHECK_EQ(stats.total, 10);

  /* Destroying the network pool while a local pool lives is refused and changes nothing. */
  CHECK_STATUS(memseg_network_pool_destroy(net), MEMSEG_STATUS_IN_USE);
  CHECK_OK(memseg_network_pool_stats(net, &stats));
  CHECK_OK(memseg_local_pool_destroy(a));
  CHECK_STATUS(memseg_local_pool_destroy(a), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_local_pool_destroy((memseg_local_pool){0}));
  CHECK_OK(memseg_network_pool_destroy(net));
  CHECK_STATUS(memseg_network_pool_destroy(net), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_network_pool_destroy((memseg_network_pool){0}));
  CHECK_STATUS(memseg_network_pool_stats(net, &stats), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_local_pool_new(net, &config, &pool), MEMSEG_STATUS_STALE_HANDLE);
}

static void test_redistribution_and_stats(void) {
  memseg_network_pool net = network(100);
  memseg_local_pool a = local(net, 10, 50), b, c;
  memseg_local_pool_counters sa, sb, sc;
  CHECK_OK(memseg_local_pool_stats(a, &sa));
  CHECK_EQ(sa.size, 50);
  b = local(net, 10, 90);
  CHECK_OK(memseg_local_pool_stats(a, &sa));
  CHECK_OK(memseg_local_pool_stats(b, &sb));
  CHECK_EQ(sa.size, 36); /* 80 spare, capacities 40 and 80: 80 * 40 / 120 = 26 */
  CHECK_EQ(sb.size, 64);
  CHECK_EQ(sa.min, 10);
  CHECK_EQ(sa.max, 50);
  c = local(net, 5, 5);
  CHECK_OK(memseg_local_pool_stats(a, &sa));
  CHECK_OK(memseg_local_pool_stats(b, &sb));
  CHECK_OK(memseg_local_pool_stats(c, &sc));
  CHECK_EQ(sa.size + sb.size + sc.size, 100);
  CHECK_OK(memseg_local_pool_destroy(b));
  CHECK_OK(memseg_local_pool_stats(a, &sa));
  CHECK_EQ(sa.size, 50);
  CHECK_OK(memseg_local_pool_destroy(a));
  CHECK_OK(memseg_local_pool_destroy(c));
  CHECK_OK(memseg_network_pool_destroy(net));
}

static void test_buffers_and_slices(void) {
  memseg_network_pool net = network(2);
  memseg_local_pool pool = local(net, 1, 1);
  memseg_buffer b = request(pool), slice = {0}, none = {0};
  size_t value = 0;
  uint32_t refs = 0;
  uint8_t tag = 99, out[16], *ptr = NULL;
  bool flag = false;
  memseg_local_pool_counters stats;

  CHECK_OK(memseg_buffer_size(b, &value));
  CHECK_EQ(value, 0);
  CHECK_OK(memseg_buffer_capacity(b, &value));
  CHECK_EQ(value, SEG);
  CHECK_OK(memseg_buffer_tag(b, &tag));
  CHECK_EQ(tag, MEMSEG_BUFFER_TAG_DATA);
  CHECK_STATUS(memseg_local_pool_request(pool, &none), MEMSEG_STATUS_WOULD_BLOCK);
  CHECK_EQ(none.bits, 0);

  CHECK_OK(memseg_buffer_append(b, (const uint8_t *)"hello world", 11));
  CHECK_OK(memseg_buffer_set_tag(b, MEMSEG_BUFFER_TAG_EVENT));
  CHECK_OK(memseg_buffer_raw(b, &ptr, &value));
  CHECK_EQ(value, SEG);
  CHECK_MEM(ptr, "hello", 5);
  ptr[0] = 'j'; /* the raw view is the buffer's memory */
  CHECK_OK(memseg_buffer_get_bytes(b, 0, out, 5));
  CHECK_MEM(out, "jello", 5);
  CHECK_STATUS(memseg_buffer_get_bytes(b, SEG - 2, out, 3), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_STATUS(memseg_buffer_get_bytes(b, SIZE_MAX, out, 2), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_STATUS(memseg_buffer_get_bytes(b, 0, NULL, 2), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_buffer_set_size(b, SEG + 1), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_OK(memseg_buffer_set_reader_index(b, 6));
  CHECK_STATUS(memseg_buffer_set_size(b, 5), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_buffer_set_reader_index(b, 12), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_OK(memseg_buffer_read(b, out, 5));
  CHECK_MEM(out, "world", 5);
  CHECK_STATUS(memseg_buffer_read(b, out, 1), MEMSEG_STATUS_END_OF_DATA);

  /* A read-only slice shares the count; writing through it is refused. */
  CHECK_OK(memseg_buffer_slice(b, 6, 5, &slice));
  CHECK_STATUS(memseg_buffer_slice(b, 6, 6, &none), MEMSEG_STATUS_OUT_OF_BOUNDS);
  CHECK_OK(memseg_buffer_ref_count(b, &refs));
  CHECK_EQ(refs, 2);
  CHECK_OK(memseg_buffer_is_read_only(slice, &flag));
  CHECK(flag);
  CHECK_STATUS(memseg_buffer_put_bytes(slice, 0, (const uint8_t *)"x", 1), MEMSEG_STATUS_READ_ONLY);
  CHECK_STATUS(memseg_buffer_append(slice, (const uint8_t *)"x", 1), MEMSEG_STATUS_READ_ONLY);
  CHECK_STATUS(memseg_buffer_set_size(slice, 1), MEMSEG_STATUS_READ_ONLY);
  CHECK_STATUS(memseg_buffer_set_tag(slice, 3), MEMSEG_STATUS_READ_ONLY);
  CHECK_OK(memseg_buffer_get_bytes(slice, 0, out, 5));
  CHECK_MEM(out, "world", 5);
  CHECK_OK(memseg_buffer_tag(slice, &tag));
  CHECK_EQ(tag, MEMSEG_BUFFER_TAG_EVENT);

  /* Retain and release on one handle; the last release makes it stale. The count is the
   * handle's references plus the slice's. */
  CHECK_OK(memseg_buffer_retain(b));
  CHECK_OK(memseg_buffer_ref_count(b, &refs));
  CHECK_EQ(refs, 3);
  CHECK_OK(memseg_buffer_ref_count(slice, &refs));
  CHECK_EQ(refs, 3);
  CHECK_OK(memseg_buffer_release(b));
  CHECK_OK(memseg_buffer_ref_count(b, &refs));
  CHECK_EQ(refs, 2);
  CHECK_OK(memseg_buffer_size(b, &value));
  CHECK_OK(memseg_buffer_release(b));
  CHECK_STATUS(memseg_buffer_size(b, &value), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_buffer_release(b), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_buffer_retain(b), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_buffer_append(b, (const uint8_t *)"x", 1), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_buffer_release((memseg_buffer){0}));
  /* The slice still holds the segment. */
  CHECK_OK(memseg_local_pool_stats(pool, &stats));
  CHECK_EQ(stats.in_use, 1);
  CHECK_OK(memseg_buffer_get_bytes(slice, 0, out, 5));
  CHECK_MEM(out, "world", 5);
  CHECK_OK(memseg_buffer_release(slice));
  CHECK_OK(memseg_local_pool_stats(pool, &stats));
  CHECK_EQ(stats.in_use, 0);

  /* A fresh buffer starts clean. */
  b = request(pool);
  CHECK_OK(memseg_buffer_size(b, &value));
  CHECK_EQ(value, 0);
  CHECK_OK(memseg_buffer_tag(b, &tag));
  CHECK_EQ(tag, MEMSEG_BUFFER_TAG_DATA);
  /* Wrong kinds and nulls. */
  CHECK_STATUS(memseg_buffer_size((memseg_buffer){pool.bits}, &value),
               MEMSEG_STATUS_WRONG_HANDLE_KIND);
  CHECK_STATUS(memseg_local_pool_request((memseg_local_pool){b.bits}, &none),
               MEMSEG_STATUS_WRONG_HANDLE_KIND);
  CHECK_STATUS(memseg_buffer_size(b, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_local_pool_request(pool, NULL), MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_buffer_size((memseg_buffer){0}, &value), MEMSEG_STATUS_INVALID_HANDLE);

  /* Destroying the local pool keeps the buffer valid; the network pool reports it. */
  CHECK_OK(memseg_local_pool_destroy(pool));
  CHECK_STATUS(memseg_local_pool_request(pool, &none), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_buffer_append(b, (const uint8_t *)"kept", 4));
  CHECK_STATUS(memseg_network_pool_destroy(net), MEMSEG_STATUS_IN_USE);
  {
    char msg[512];
    memseg_last_error_message(msg, sizeof msg);
    CHECK(strstr(msg, "1 of 2 segments out") != NULL);
  }
  CHECK_OK(memseg_buffer_get_bytes(b, 0, out, 4));
  CHECK_MEM(out, "kept", 4);
  CHECK_OK(memseg_buffer_release(b));
  CHECK_OK(memseg_network_pool_destroy(net));
}

static int callback_calls;
static void on_available(void *ctx) {
  CHECK(ctx == &callback_calls);
  callback_calls++;
}

struct release_later {
  memseg_buffer buffer;
  int delay_ms;
};

static void *release_after(void *arg) {
  struct release_later *r = arg;
  struct timespec t = {0, (long)r->delay_ms * 1000000L};
  nanosleep(&t, NULL);
  CHECK_OK(memseg_buffer_release(r->buffer));
  return NULL;
}

static void test_blocking_fd_and_callback(void) {
  memseg_network_pool net = network(2);
  memseg_local_pool pool = local(net, 2, 2);
  memseg_buffer a, b, c = {0};
  memseg_local_pool_counters stats;
  int fd = -1, fd2 = -1;
  bool available = false;
  double start;
  pthread_t thread;
  struct release_later later;

  CHECK_OK(memseg_local_pool_set_callback(pool, on_available, &callback_calls));
  CHECK_OK(memseg_local_pool_fd(pool, &fd));
  CHECK_OK(memseg_local_pool_fd(pool, &fd2));
  CHECK_EQ(fd, fd2);
  CHECK(readable(fd));
  a = request(pool);
  CHECK(readable(fd));
  b = request(pool);
  CHECK(!readable(fd));
  CHECK_OK(memseg_local_pool_is_available(pool, &available));
  CHECK(!available);

  start = now_ms();
  CHECK_STATUS(memseg_local_pool_request_blocking(pool, MEMSEG_NO_CHANNEL, 30, &c),
               MEMSEG_STATUS_TIMEOUT);
  CHECK(now_ms() - start >= 29.0);
  CHECK_EQ(c.bits, 0);
  CHECK_STATUS(memseg_local_pool_request_blocking(pool, MEMSEG_NO_CHANNEL, 0, &c),
               MEMSEG_STATUS_TIMEOUT);

  CHECK_OK(memseg_buffer_release(a));
  CHECK(readable(fd));
  CHECK_EQ(callback_calls, 1);

  /* A blocked request wakes when another thread releases a buffer. */
  a = request(pool);
  later.buffer = b;
  later.delay_ms = 20;
  CHECK(pthread_create(&thread, NULL, release_after, &later) == 0);
  CHECK_OK(memseg_local_pool_request_blocking(pool, MEMSEG_NO_CHANNEL, -1, &c));
  CHECK(pthread_join(thread, NULL) == 0);
  CHECK_OK(memseg_local_pool_stats(pool, &stats));
  CHECK_EQ(stats.waited_requests, 3);
  CHECK_EQ(stats.in_use, 2);
  CHECK_OK(memseg_buffer_release(a));
  CHECK_OK(memseg_buffer_release(c));
  CHECK_OK(memseg_local_pool_set_callback(pool, NULL, NULL));
  CHECK_OK(memseg_local_pool_destroy(pool));
  CHECK_OK(memseg_network_pool_destroy(net));
}

static void test_channels_and_overdraft(void) {
  memseg_network_pool net = network(8);
  memseg_local_pool_config config = {4, 4, 2, 2, 1};
  memseg_local_pool pool = {0};
  memseg_buffer a, b, c, d, e, f, none = {0};
  uint32_t channel = 0;
  int fd = -1;
  memseg_local_pool_counters stats;

  CHECK_OK(memseg_local_pool_new(net, &config, &pool));
  CHECK_OK(memseg_local_pool_fd(pool, &fd));
  CHECK_OK(memseg_local_pool_request_channel(pool, 0, &a));
  CHECK_OK(memseg_buffer_channel(a, &channel));
  CHECK_EQ(channel, 0);
  CHECK_OK(memseg_local_pool_request_channel(pool, 0, &b));
  CHECK(!readable(fd)); /* channel 0 at its limit */
  CHECK_STATUS(memseg_local_pool_request_channel(pool, 0, &none), MEMSEG_STATUS_WOULD_BLOCK);
  CHECK_STATUS(memseg_local_pool_request_blocking(pool, 0, 5, &none), MEMSEG_STATUS_TIMEOUT);
  CHECK_STATUS(memseg_local_pool_request_channel(pool, 2, &none), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_local_pool_request_channel(pool, MEMSEG_NO_CHANNEL, &none),
               MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_OK(memseg_local_pool_request_channel(pool, 1, &c));
  CHECK_OK(memseg_buffer_release(b));
  CHECK(readable(fd));
  CHECK_OK(memseg_local_pool_request(pool, &d));
  CHECK_OK(memseg_buffer_channel(d, &channel));
  CHECK_EQ(channel, MEMSEG_NO_CHANNEL);
  CHECK_OK(memseg_local_pool_request(pool, &e)); /* the pool's 4th */
  CHECK(!readable(fd));
  CHECK_OK(memseg_local_pool_request(pool, &f)); /* overdraft */
  CHECK_OK(memseg_local_pool_stats(pool, &stats));
  CHECK_EQ(stats.overdraft, 1);
  CHECK_EQ(stats.in_use, 5);
  CHECK_STATUS(memseg_local_pool_request(pool, &none), MEMSEG_STATUS_WOULD_BLOCK);
  CHECK_OK(memseg_buffer_release(f));
  CHECK_OK(memseg_local_pool_stats(pool, &stats));
  CHECK_EQ(stats.overdraft, 0);
  CHECK(!readable(fd)); /* the overdraft buffer went back to the network pool */
  CHECK_OK(memseg_buffer_release(a));
  CHECK_OK(memseg_buffer_release(c));
  CHECK_OK(memseg_buffer_release(d));
  CHECK_OK(memseg_buffer_release(e));
  CHECK_OK(memseg_local_pool_destroy(pool));
  CHECK_OK(memseg_network_pool_destroy(net));
}

static memseg_buffer listened[4];
static int listened_count;
static int destroyed_calls;
static bool listener(void *ctx, memseg_buffer buffer) {
  int want = *(int *)ctx;
  if (buffer.bits == 0) {
    destroyed_calls++;
    return false;
  }
  listened[listened_count++] = buffer;
  return listened_count < want;
}

static void test_listeners(void) {
  memseg_network_pool net = network(2);
  memseg_local_pool pool = local(net, 2, 2);
  memseg_buffer a, b;
  bool registered = true;
  int want = 2;
  CHECK_OK(memseg_local_pool_add_listener(pool, listener, &want, &registered));
  CHECK(!registered); /* buffers are available: request them */
  CHECK_STATUS(memseg_local_pool_add_listener(pool, NULL, &want, &registered),
               MEMSEG_STATUS_NULL_ARGUMENT);
  a = request(pool);
  b = request(pool);
  CHECK_OK(memseg_local_pool_add_listener(pool, listener, &want, &registered));
  CHECK(registered);
  CHECK_OK(memseg_buffer_release(a));
  CHECK_EQ(listened_count, 1);
  CHECK_OK(memseg_buffer_release(b));
  CHECK_EQ(listened_count, 2);
  CHECK_OK(memseg_buffer_release(listened[0]));
  CHECK_OK(memseg_buffer_release(listened[1]));
  CHECK_EQ(listened_count, 2); /* had enough */
  a = request(pool);
  b = request(pool);
  want = 1;
  CHECK_OK(memseg_local_pool_add_listener(pool, listener, &want, &registered));
  CHECK(registered);
  CHECK_OK(memseg_local_pool_destroy(pool));
  CHECK_EQ(destroyed_calls, 1);
  CHECK_OK(memseg_buffer_release(a));
  CHECK_OK(memseg_buffer_release(b));
  CHECK_EQ(listened_count, 2);
  CHECK_OK(memseg_network_pool_destroy(net));
}

static void test_exclusive_segments(void) {
  memseg_network_pool net = network(4);
  memseg_network_pool other = network(1);
  memseg_local_pool pool = local(net, 1, 4);
  memseg_segment segs[3] = {{0}, {0}, {0}}, theirs[1] = {{0}};
  memseg_network_pool_counters stats;
  memseg_local_pool_counters ls;
  uint64_t v = 0;

  CHECK_STATUS(memseg_network_pool_request_exclusive(net, 4, 0, segs),
               MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_EQ(segs[0].bits, 0);
  CHECK_OK(memseg_network_pool_request_exclusive(net, 3, 100, segs));
  CHECK_OK(memseg_network_pool_stats(net, &stats));
  CHECK_EQ(stats.exclusive, 3);
  CHECK_EQ(stats.required, 4);
  CHECK_OK(memseg_local_pool_stats(pool, &ls));
  CHECK_EQ(ls.size, 1);
  CHECK_EQ(mt_size(segs[0]), SEG);
  CHECK_OK(memseg_segment_put_u64_be(segs[2], 8, 42));
  CHECK_OK(memseg_segment_get_u64_be(segs[2], 8, &v));
  CHECK_EQ(v, 42);
  CHECK_STATUS(memseg_segment_free(segs[0]), MEMSEG_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(memseg_network_pool_destroy(net), MEMSEG_STATUS_IN_USE);
  /* All or nothing: a segment of another pool, or one listed twice, gives nothing back. */
  CHECK_OK(memseg_network_pool_request_exclusive(other, 1, 0, theirs));
  {
    memseg_segment mixed[2];
    mixed[0] = segs[0];
    mixed[1] = theirs[0];
    CHECK_STATUS(memseg_network_pool_recycle_exclusive(net, mixed, 2),
                 MEMSEG_STATUS_INVALID_ARGUMENT);
    mixed[1] = segs[0];
    CHECK_STATUS(memseg_network_pool_recycle_exclusive(net, mixed, 2),
                 MEMSEG_STATUS_INVALID_ARGUMENT);
  }
  CHECK_OK(memseg_network_pool_stats(net, &stats));
  CHECK_EQ(stats.exclusive, 3);
  CHECK_OK(memseg_network_pool_recycle_exclusive(net, segs, 3));
  CHECK_STATUS(memseg_segment_get_u64_be(segs[2], 8, &v), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_STATUS(memseg_network_pool_recycle_exclusive(net, segs, 1), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_network_pool_recycle_exclusive(other, theirs, 1));
  CHECK_OK(memseg_network_pool_stats(net, &stats));
  CHECK_EQ(stats.exclusive, 0);
  CHECK_OK(memseg_local_pool_stats(pool, &ls));
  CHECK_EQ(ls.size, 4);

  /* Timeout: the pool holds every segment, the reservation fits, the segments do not come. */
  {
    memseg_buffer held[4];
    int i;
    for (i = 0; i < 4; i++) held[i] = request(pool);
    CHECK_STATUS(memseg_network_pool_request_exclusive(net, 2, 10, segs),
                 MEMSEG_STATUS_TIMEOUT);
    CHECK_OK(memseg_network_pool_stats(net, &stats));
    CHECK_EQ(stats.exclusive, 0);
    CHECK_EQ(stats.required, 1);
    for (i = 0; i < 4; i++) CHECK_OK(memseg_buffer_release(held[i]));
  }
  CHECK_OK(memseg_local_pool_destroy(pool));
  CHECK_OK(memseg_network_pool_destroy(net));
  CHECK_OK(memseg_network_pool_destroy(other));
}

struct consumer_arg {
  memseg_buffer_consumer consumer;
  uint8_t got[SEG];
  size_t len;
};

static void *consume(void *arg) {
  struct consumer_arg *c = arg;
  bool finished = false;
  while (!finished) {
    memseg_buffer slice;
    size_t size = 0;
    CHECK_OK(memseg_buffer_consumer_build(c->consumer, &slice));
    CHECK_OK(memseg_buffer_size(slice, &size));
    CHECK(c->len + size <= SEG);
    CHECK_OK(memseg_buffer_get_bytes(slice, 0, c->got + c->len, size));
    c->len += size;
    CHECK_OK(memseg_buffer_release(slice));
    CHECK_OK(memseg_buffer_consumer_is_finished(c->consumer, &finished));
  }
  return NULL;
}

static void test_builder_and_consumer(void) {
  memseg_network_pool net = network(1);
  memseg_local_pool pool = local(net, 1, 1);
  memseg_buffer_builder builder = {0};
  static struct consumer_arg arg;
  static uint8_t expected[SEG];
  pthread_t thread;
  size_t written = 0, total = 0, size = 0;
  uint32_t i;
  memseg_local_pool_counters stats;
  bool available = true;

  CHECK_OK(memseg_local_pool_request_builder(pool, MEMSEG_NO_CHANNEL, &builder));
  CHECK_OK(memseg_buffer_builder_create_consumer(builder, true, &arg.consumer));
  CHECK_OK(memseg_buffer_consumer_is_data_available(arg.consumer, &available));
  CHECK(!available);
  CHECK(pthread_create(&thread, NULL, consume, &arg) == 0);
  for (i = 0; i < 1100; i++) {
    uint8_t chunk[4];
    chunk[0] = (uint8_t)(i >> 24);
    chunk[1] = (uint8_t)(i >> 16);
    chunk[2] = (uint8_t)(i >> 8);
    chunk[3] = (uint8_t)i;
    CHECK_OK(memseg_buffer_builder_append(builder, chunk, 4, &written));
    memcpy(expected + total, chunk, written);
    total += written;
    CHECK_OK(memseg_buffer_builder_commit(builder));
  }
  CHECK_EQ(total, SEG);
  CHECK_OK(memseg_buffer_builder_finish(builder, &size));
  CHECK_EQ(size, SEG);
  CHECK_STATUS(memseg_buffer_builder_append(builder, expected, 1, &written), MEMSEG_STATUS_CLOSED);
  CHECK(pthread_join(thread, NULL) == 0);
  CHECK_EQ(arg.len, SEG);
  CHECK_MEM(arg.got, expected, SEG);
  CHECK_OK(memseg_buffer_builder_free(builder));
  CHECK_STATUS(memseg_buffer_builder_free(builder), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_local_pool_stats(pool, &stats));
  CHECK_EQ(stats.in_use, 1); /* the consumer still shares the buffer */
  CHECK_OK(memseg_buffer_consumer_free(arg.consumer));
  CHECK_STATUS(memseg_buffer_consumer_free(arg.consumer), MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_buffer_consumer_free((memseg_buffer_consumer){0}));
  CHECK_OK(memseg_buffer_builder_free((memseg_buffer_builder){0}));
  CHECK_OK(memseg_local_pool_stats(pool, &stats));
  CHECK_EQ(stats.in_use, 0);
  CHECK_OK(memseg_local_pool_destroy(pool));
  CHECK_OK(memseg_network_pool_destroy(net));
}

/* Records spanning buffers the way a result partition writes them: the record serializer
 * copies into buffer builders of a local pool (each copy committed), the consumers' slices
 * feed a record deserializer, and the records come back whole and in order. */
static void test_records_through_builders(void) {
  memseg_network_pool net = network(16);
  memseg_local_pool pool = local(net, 16, 16);
  memseg_record_serializer ser = {0};
  memseg_record_deserializer de = {0};
  memseg_buffer_builder builders[16];
  memseg_buffer_consumer consumers[16];
  memseg_segment copies[16];
  size_t nb = 0, i, n, written = 0;
  bool done = false;
  uint8_t record[4096];

  CHECK_OK(memseg_record_serializer_new(&ser));
  CHECK_OK(memseg_local_pool_request_builder(pool, MEMSEG_NO_CHANNEL, &builders[0]));
  CHECK_OK(memseg_buffer_builder_create_consumer(builders[0], true, &consumers[0]));
  nb = 1;
  CHECK_STATUS(memseg_record_serializer_copy_to_builder(ser, builders[0], NULL, &done),
               MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(memseg_record_serializer_copy_to_builder(ser, (memseg_buffer_builder){0},
                                                        &written, &done),
               MEMSEG_STATUS_INVALID_HANDLE);
  for (i = 0; i < 4; i++) {
    memset(record, (int)(i + 1), sizeof record);
    CHECK_OK(memseg_record_serializer_serialize(ser, record, 1000 * i + 10));
    for (;;) {
      CHECK_OK(memseg_record_serializer_copy_to_builder(ser, builders[nb - 1], &written, &done));
      if (done) {
        break;
      }
      CHECK(nb < 16);
      CHECK_OK(memseg_buffer_builder_finish(builders[nb - 1], NULL));
      CHECK_OK(memseg_local_pool_request_builder(pool, MEMSEG_NO_CHANNEL, &builders[nb]));
      CHECK_OK(memseg_buffer_builder_create_consumer(builders[nb], true, &consumers[nb]));
      nb++;
    }
  }
  CHECK_OK(memseg_buffer_builder_finish(builders[nb - 1], NULL));
  CHECK(nb >= 2); /* 6056 bytes of records over 4 KiB buffers */

  CHECK_OK(memseg_record_deserializer_new(MEMSEG_RECORD_DEFAULT_MAX_LEN, &de));
  n = 0;
  for (i = 0; i < nb; i++) {
    memseg_buffer slice;
    uint8_t *ptr;
    size_t size;
    CHECK_OK(memseg_buffer_consumer_build(consumers[i], &slice));
    CHECK_OK(memseg_buffer_raw(slice, &ptr, &size));
    CHECK(size > 0);
    CHECK_OK(memseg_segment_new_heap(size, &copies[i]));
    CHECK_OK(memseg_segment_put_bytes(copies[i], 0, ptr, size));
    CHECK_OK(memseg_buffer_release(slice));
    CHECK_OK(memseg_record_deserializer_set_next_buffer(de, copies[i], 0, size));
    for (;;) {
      const uint8_t *rec;
      size_t len, k;
      memseg_status st = memseg_record_deserializer_next_record(de, &rec, &len);
      if (st == MEMSEG_STATUS_NEED_MORE_DATA) {
        break;
      }
      CHECK_OK(st);
      CHECK_EQ(len, 1000 * n + 10);
      for (k = 0; k < len; k++) {
        CHECK_EQ(rec[k], n + 1);
      }
      n++;
    }
  }
  CHECK_EQ(n, 4);
  CHECK_OK(memseg_record_deserializer_free(de));
  for (i = 0; i < nb; i++) {
    CHECK_OK(memseg_buffer_consumer_free(consumers[i]));
    CHECK_OK(memseg_buffer_builder_free(builders[i]));
    mt_free(copies[i]);
  }
  CHECK_OK(memseg_record_serializer_free(ser));
  CHECK_OK(memseg_local_pool_destroy(pool));
  CHECK_OK(memseg_network_pool_destroy(net));
}

/* A builder on a buffer requested with a wait: served at once while one is free, TIMEOUT when
 * none comes back in time, served again once the first builder's buffer is recycled. */
static void test_builder_blocking_request(void) {
  memseg_network_pool net = network(2);
  memseg_local_pool pool = local(net, 1, 1);
  memseg_buffer_builder a = {0}, b = {0x77};
  double started;
  CHECK_STATUS(memseg_local_pool_request_builder_blocking(pool, MEMSEG_NO_CHANNEL, 10, NULL),
               MEMSEG_STATUS_NULL_ARGUMENT);
  CHECK_OK(memseg_local_pool_request_builder_blocking(pool, MEMSEG_NO_CHANNEL, 10, &a));
  started = now_ms();
  CHECK_STATUS(memseg_local_pool_request_builder_blocking(pool, MEMSEG_NO_CHANNEL, 30, &b),
               MEMSEG_STATUS_TIMEOUT);
  CHECK(now_ms() - started >= 25);
  CHECK_EQ(b.bits, 0x77);
  CHECK_OK(memseg_buffer_builder_free(a));
  CHECK_OK(memseg_local_pool_request_builder_blocking(pool, MEMSEG_NO_CHANNEL, 10, &b));
  CHECK_OK(memseg_buffer_builder_free(b));
  CHECK_OK(memseg_local_pool_destroy(pool));
  CHECK_STATUS(memseg_local_pool_request_builder_blocking(pool, MEMSEG_NO_CHANNEL, 10, &b),
               MEMSEG_STATUS_STALE_HANDLE);
  CHECK_OK(memseg_network_pool_destroy(net));
}

int main(void) {
  RUN(test_bad_configurations);
  RUN(test_redistribution_and_stats);
  RUN(test_buffers_and_slices);
  RUN(test_blocking_fd_and_callback);
  RUN(test_channels_and_overdraft);
  RUN(test_listeners);
  RUN(test_exclusive_segments);
  RUN(test_builder_and_consumer);
  RUN(test_records_through_builders);
  RUN(test_builder_blocking_request);
  return 0;
}
