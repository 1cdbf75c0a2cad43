/*
 * bufpool_test.c - unit tests of lab 08's buffer pool (solutions/08-reactor/bufpool.c).
 *
 *   make build/plain/unit/bufpool_test && build/plain/unit/bufpool_test [SEED]
 *   make SAN=address build/address/unit/bufpool_test    (ASan+UBSan)
 *
 * Prints TAP ("ok N - ...", "not ok N - ...").  The last tests drive random
 * alloc/reserve/consume/free sequences against a shadow copy of every
 * buffer's contents; a failure prints the seed, and `bufpool_test SEED`
 * replays it.
 */
#define _POSIX_C_SOURCE 200809L

#include "../../solutions/08-reactor/bufpool.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int ntest, nfail;
static char why[512]; /* the first failed check of the current test */

/* Record the first failed check of the current test, with its details. */
#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond) && !why[0]) {                                            \
            int l_ = snprintf(why, sizeof why, "line %d: %s: ", __LINE__, #cond); \
            if (l_ > 0 && (size_t)l_ < sizeof why)                           \
                snprintf(why + l_, sizeof why - (size_t)l_, __VA_ARGS__);    \
        }                                                                    \
    } while (0)

static void report(const char *name)
{
    ntest++;
    if (why[0]) {
        nfail++;
        printf("not ok %d - %s\n# %s\n", ntest, name, why);
    } else {
        printf("ok %d - %s\n", ntest, name);
    }
    fflush(stdout);
    why[0] = '\0';
}

static const size_t sizes[POOL_NCLASSES] = {
    4096, 16384, 65536, 262144, 1048576, 4194304, 8388608,
};

/* ---------- size classes ----------------------------------------------------------- */

static void test_class_rounding(void)
{
    CHECK(pool_class_size(0) == 4096, "0 -> %zu", pool_class_size(0));
    CHECK(pool_class_size(1) == 4096, "1 -> %zu", pool_class_size(1));
    for (int c = 0; c < POOL_NCLASSES; c++) {
        size_t s = sizes[c], next = c + 1 < POOL_NCLASSES ? sizes[c + 1] : 0;
        CHECK(pool_class_size(s - 1) == s, "%zu -> %zu, want %zu", s - 1, pool_class_size(s - 1), s);
        CHECK(pool_class_size(s) == s, "%zu -> %zu, want %zu", s, pool_class_size(s), s);
        CHECK(pool_class_size(s + 1) == next, "%zu -> %zu, want %zu", s + 1, pool_class_size(s + 1), next);
    }
    CHECK(pool_class_size(SIZE_MAX) == 0, "SIZE_MAX -> %zu", pool_class_size(SIZE_MAX));
    report("class rounding: s-1, s and s+1 at every class boundary, 0, and too large");
}

static void test_alloc_gets_its_class(void)
{
    struct bufpool *p = pool_create((size_t)64 << 20);
    CHECK(p != NULL, "pool_create");
    size_t asks[] = {0, 1, 4095, 4096, 4097, 16383, 16384, 16385, 65537, 1048577, 8388608};
    for (size_t i = 0; p && i < sizeof asks / sizeof asks[0]; i++) {
        struct pool_buf *b = pool_alloc(p, asks[i]);
        CHECK(b != NULL, "alloc %zu", asks[i]);
        if (!b)
            continue;
        CHECK(b->cap == pool_class_size(asks[i]), "alloc %zu: cap %zu", asks[i], b->cap);
        CHECK(b->head == 0 && b->len == 0, "alloc %zu: not empty", asks[i]);
        memset(b->data, 0xa5, b->cap); /* every byte is ours (ASan checks) */
        pool_free(p, b);
    }
    errno = 0;
    struct pool_buf *big = p ? pool_alloc(p, POOL_MAX_SIZE + 1) : NULL;
    CHECK(big == NULL && errno == EMSGSIZE, "alloc of max+1: %p errno %d", (void *)big, errno);
    CHECK(pool_destroy(p) == 0, "buffers still in use");
    report("alloc returns an empty buffer of exactly its class, writable to the last byte; max+1 is EMSGSIZE");
}

static void test_reuse(void)
{
    struct bufpool *p = pool_create((size_t)64 << 20);
    struct pool_buf *a = pool_alloc(p, 5000);
    struct pool_buf *b = pool_alloc(p, 6000);
    CHECK(a && b && a != b, "two buffers");
    pool_free(p, a);
    struct pool_buf *c = pool_alloc(p, 10000); /* same class (16K) */
    CHECK(c == a, "freed %p, got %p back", (void *)a, (void *)c);
    struct pool_buf *d = pool_alloc(p, 100); /* another class: not the 16K buffer */
    CHECK(d != a && d->cap == 4096, "other class got %p cap %zu", (void *)d, d->cap);
    pool_free(p, b);
    pool_free(p, c);
    pool_free(p, d);
    struct pool_stats st;
    pool_get_stats(p, &st);
    CHECK(st.cls[1].free == 2 && st.cls[1].in_use == 0 && st.cls[1].peak == 2,
          "16K: free %zu in_use %zu peak %zu", st.cls[1].free, st.cls[1].in_use, st.cls[1].peak);
    CHECK(st.held == 2 * 16384 + 4096, "held %zu", st.held);
    CHECK(pool_destroy(p) == 0, "leak");
    report("a freed buffer is reused for the next request of its class; stats count it free");
}

/* ---------- the cap ---------------------------------------------------------------- */

static void test_cap_returns_null(void)
{
    /* In a child: an allocator that exit()s or abort()s at the cap must
     * fail this test, not end the test program. */
    pid_t pid = fork();
    if (pid == 0) {
        struct bufpool *p = pool_create(65536 + 4096);
        struct pool_buf *a = pool_alloc(p, 65536);
        struct pool_buf *b = pool_alloc(p, 4096);
        errno = 0;
        struct pool_buf *c = pool_alloc(p, 4096); /* over the cap */
        int e = errno;
        struct pool_stats st;
        pool_get_stats(p, &st);
        int code = !a || !b ? 10 : c ? 11 : e != ENOMEM ? 12 : st.failures != 1 ? 13
                   : st.held != 65536 + 4096 ? 14 : 0;
        pool_free(p, a);
        pool_free(p, b);
        pool_destroy(p);
        _exit(code);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "child %s %d: 10 no buffer under the cap, 11 got a buffer past the cap, "
          "12 errno not ENOMEM, 13 failures not counted, 14 held wrong; else the allocator exited",
          WIFEXITED(status) ? "exit" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    report("past the cap, alloc returns NULL with ENOMEM and the program goes on (no exit)");
}

static void test_cap_trims_free_lists(void)
{
    struct bufpool *p = pool_create(65536);
    struct pool_buf *a = pool_alloc(p, 65536);
    CHECK(a != NULL, "the whole cap in one buffer");
    pool_free(p, a);
    /* The 64K buffer is free but counts against the cap; a 4K request
     * must release it rather than fail. */
    struct pool_buf *b = pool_alloc(p, 4096);
    CHECK(b != NULL, "4K after freeing 64K failed: errno %d", errno);
    struct pool_stats st;
    pool_get_stats(p, &st);
    CHECK(st.held <= st.cap, "held %zu > cap %zu", st.held, st.cap);
    CHECK(st.cls[2].free == 0, "64K free list %zu", st.cls[2].free);
    pool_free(p, b);
    errno = 0;
    CHECK(pool_prealloc(p, 4096, 17) == -1 && errno == ENOMEM, "prealloc past the cap");
    CHECK(pool_prealloc(p, POOL_MAX_SIZE + 1, 1) == -1 && errno == EMSGSIZE, "prealloc too large");
    CHECK(pool_destroy(p) == 0, "leak");
    report("at the cap, free buffers of other classes are released before a request fails");
}

static void test_prealloc(void)
{
    struct bufpool *p = pool_create((size_t)1 << 20);
    CHECK(pool_prealloc(p, 4096, 10) == 0, "prealloc");
    struct pool_stats st;
    pool_get_stats(p, &st);
    CHECK(st.cls[0].free == 10 && st.cls[0].in_use == 0 && st.held == 40960,
          "free %zu in_use %zu held %zu", st.cls[0].free, st.cls[0].in_use, st.held);
    struct pool_buf *b = pool_alloc(p, 1);
    pool_get_stats(p, &st);
    CHECK(st.cls[0].free == 9 && st.held == 40960, "alloc after prealloc malloc'd");
    pool_free(p, b);
    CHECK(pool_destroy(p) == 0, "leak");
    report("prealloc fills a free list; the next alloc takes from it");
}

/* ---------- reserve (grow by moving) ------------------------------------------------- */

static void test_reserve(void)
{
    struct bufpool *p = pool_create((size_t)64 << 20);
    struct pool_buf *b = NULL;
    CHECK(pool_reserve(p, &b, 100) == 0 && b && b->cap == 4096, "reserve on NULL");
    for (size_t i = 0; i < 4000; i++)
        b->data[i] = (char)i;
    buf_commit(b, 4000);
    buf_consume(b, 3000); /* 1000 left at head 3000 */
    struct pool_buf *before = b;
    CHECK(pool_reserve(p, &b, 3000) == 0 && b == before && b->head == 0,
          "sliding to the front should be enough: %p head %zu", (void *)b, b->head);
    for (size_t i = 0; i < 1000; i++)
        CHECK(b->data[i] == (char)(i + 3000), "slide lost byte %zu", i);
    CHECK(pool_reserve(p, &b, 10000) == 0 && b != before && b->cap == 16384 && b->len == 1000,
          "grow to 16K: cap %zu len %zu", b->cap, b->len);
    for (size_t i = 0; i < 1000; i++)
        CHECK(buf_data(b)[i] == (char)(i + 3000), "grow lost byte %zu", i);
    struct pool_stats st;
    pool_get_stats(p, &st);
    CHECK(st.cls[0].in_use == 0 && st.cls[0].free == 1, "the 4K buffer went back: in_use %zu", st.cls[0].in_use);
    struct pool_buf *keep = b;
    errno = 0;
    CHECK(pool_reserve(p, &b, POOL_MAX_SIZE) == -1 && errno == EMSGSIZE && b == keep,
          "1000 + max bytes cannot fit any class");
    pool_free(p, b);
    CHECK(pool_destroy(p) == 0, "leak");
    report("reserve slides data to the front when that is enough, else moves it to a bigger class");
}

static void test_reserve_at_cap(void)
{
    struct bufpool *p = pool_create(4096 + 16384 - 1);
    struct pool_buf *b = pool_alloc(p, 10);
    memcpy(b->data, "keep", 4);
    buf_commit(b, 4);
    struct pool_buf *keep = b;
    errno = 0;
    CHECK(pool_reserve(p, &b, 8000) == -1 && errno == ENOMEM, "grow past the cap");
    CHECK(b == keep && b->len == 4 && memcmp(b->data, "keep", 4) == 0, "failed grow changed the buffer");
    pool_free(p, b);
    CHECK(pool_destroy(p) == 0, "leak");
    report("a grow refused by the cap leaves the buffer and its data as they were");
}

static void test_destroy_counts_leaks(void)
{
    struct bufpool *p = pool_create((size_t)1 << 20);
    struct pool_buf *a = pool_alloc(p, 1), *b = pool_alloc(p, 70000);
    size_t n = pool_destroy(p);
    CHECK(n == 2, "destroy said %zu in use, want 2", n);
    free(a); /* the caller's leak, cleaned up here so ASan stays quiet */
    free(b);
    report("destroy reports the buffers still in use");
}

/* ---------- randomized: alloc / reserve / consume / free ---------------------------- */

#define SLOTS 64

struct shadow {
    struct pool_buf *b;
    unsigned char *copy; /* what b's unconsumed bytes must be */
    size_t len;
};

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Mostly small sizes, sometimes up to 1 MiB, rarely past the largest class. */
static size_t rnd_size(void)
{
    switch (rnd() % 16) {
    case 0:
        return POOL_MAX_SIZE + 1 + rnd() % 100;
    case 1: case 2:
        return rnd() % (1 << 20);
    default:
        return rnd() % 20000;
    }
}

static void check_invariants(struct bufpool *p, struct shadow *s, size_t cap, long op)
{
    struct pool_stats st;
    pool_get_stats(p, &st);
    size_t live[POOL_NCLASSES] = {0}, held = 0, in_use = 0;
    for (int i = 0; i < SLOTS; i++)
        if (s[i].b)
            for (int c = 0; c < POOL_NCLASSES; c++)
                if (s[i].b->cap == sizes[c])
                    live[c]++;
    for (int c = 0; c < POOL_NCLASSES; c++) {
        CHECK(st.cls[c].in_use == live[c], "op %ld class %zu: in_use %zu, %zu live", op, sizes[c],
              st.cls[c].in_use, live[c]);
        CHECK(st.cls[c].peak >= st.cls[c].in_use, "op %ld: peak below in_use", op);
        held += (st.cls[c].in_use + st.cls[c].free) * sizes[c];
        in_use += st.cls[c].in_use;
    }
    CHECK(st.held == held, "op %ld: held %zu, classes add up to %zu", op, st.held, held);
    CHECK(st.in_use == in_use, "op %ld: total in_use %zu, classes add up to %zu", op, st.in_use, in_use);
    CHECK(st.held <= cap, "op %ld: held %zu past the cap %zu", op, st.held, cap);
}

static void random_run(uint64_t seed, size_t cap, long ops, const char *name)
{
    rng_state = seed ? seed : 1;
    struct bufpool *p = pool_create(cap);
    struct shadow s[SLOTS];
    memset(s, 0, sizeof s);
    size_t refused = 0;
    for (long op = 0; op < ops && !why[0]; op++) {
        struct shadow *x = &s[rnd() % SLOTS];
        switch (rnd() % 4) {
        case 0: /* alloc (or free, if the slot is taken) */
        case 1:
            if (x->b) {
                pool_free(p, x->b);
                free(x->copy);
                memset(x, 0, sizeof *x);
            } else {
                size_t n = rnd_size();
                errno = 0;
                x->b = pool_alloc(p, n);
                if (!x->b) {
                    CHECK(errno == (n > POOL_MAX_SIZE ? EMSGSIZE : ENOMEM), "op %ld alloc %zu errno %d", op, n, errno);
                    refused++;
                } else {
                    CHECK(x->b->cap >= n && x->b->len == 0, "op %ld alloc %zu cap %zu", op, n, x->b->cap);
                }
            }
            break;
        case 2: { /* append random bytes, growing */
            size_t n = rnd() % 3 ? rnd() % 5000 : rnd() % 300000;
            struct pool_buf *before = x->b;
            if (pool_reserve(p, &x->b, n) == -1) {
                CHECK(x->b == before, "op %ld failed reserve moved the buffer", op);
                refused++;
                break;
            }
            CHECK(buf_room(x->b) >= n, "op %ld reserve %zu left room %zu", op, n, buf_room(x->b));
            unsigned char *nc = realloc(x->copy, x->len + n + 1);
            if (!nc)
                abort();
            x->copy = nc;
            for (size_t i = 0; i < n; i++)
                x->copy[x->len + i] = (unsigned char)rnd();
            memcpy(buf_tail(x->b), x->copy + x->len, n);
            buf_commit(x->b, n);
            x->len += n;
            break;
        }
        case 3: /* consume some, then check what is left */
            if (x->b && x->len) {
                size_t n = rnd() % (x->len + 1);
                buf_consume(x->b, n);
                memmove(x->copy, x->copy + n, x->len - n);
                x->len -= n;
            }
            break;
        }
        if (x->b) {
            CHECK(x->b->len == x->len, "op %ld: len %zu, shadow %zu", op, x->b->len, x->len);
            CHECK(x->len == 0 || memcmp(buf_data(x->b), x->copy, x->len) == 0, "op %ld: contents differ", op);
        }
        if (op % 64 == 0)
            check_invariants(p, s, cap, op);
    }
    check_invariants(p, s, cap, ops);
    for (int i = 0; i < SLOTS; i++) {
        pool_free(p, s[i].b);
        free(s[i].copy);
    }
    struct pool_stats st;
    pool_get_stats(p, &st);
    CHECK(st.in_use == 0, "in_use %zu after freeing all", st.in_use);
    CHECK(pool_destroy(p) == 0, "leak at destroy");
    if (why[0]) {
        size_t l = strlen(why);
        snprintf(why + l, sizeof why - l, "; replay: bufpool_test %llu", (unsigned long long)seed);
    }
    char title[200];
    snprintf(title, sizeof title, "%s (seed %llu, %ld ops, %zu refused)", name, (unsigned long long)seed, ops, refused);
    report(title);
}

int main(int argc, char **argv)
{
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
    printf("1..13\n");
    test_class_rounding();
    test_alloc_gets_its_class();
    test_reuse();
    test_cap_returns_null();
    test_cap_trims_free_lists();
    test_prealloc();
    test_reserve();
    test_reserve_at_cap();
    test_destroy_counts_leaks();
    random_run(seed, (size_t)256 << 20, 20000, "random alloc/grow/consume/free, roomy cap: contents and stats stay right");
    random_run(seed + 1, (size_t)2 << 20, 20000, "random alloc/grow/consume/free, tight 2 MiB cap: refusals are clean");
    random_run(seed + 2, 300000, 20000, "random alloc/grow/consume/free, 300 KB cap");
    random_run(seed + 3, (size_t)24 << 20, 20000, "random alloc/grow/consume/free, 24 MiB cap");
    return nfail ? 1 : 0;
}
