/*
 * bufpool.c - the size-class buffer pool; bufpool.h says why and how.
 * YOUR TASK: TODOs 1-4.  bufpool.h is the contract: read it first, every
 * function below must do exactly what it says there.
 *
 * Given: the pool's structs and the invariants they keep (below),
 *        pool_create(), release_one(), pool_prealloc(), pool_destroy(),
 *        the stats.
 * Yours: TODO 1 class_of(), TODO 2 new_buf(), TODO 3 pool_alloc() and
 *        pool_free(), TODO 4 pool_reserve().  Each TODO says what the code
 *        must guarantee, not how to write it; the handout's "Hints"
 *        section has the steps, if you want them.
 *
 * Test it alone before the server uses it:
 *   cc -std=c11 -Wall -Wextra -g -fsanitize=address,undefined -Icommon \
 *      -o /tmp/bufpool_test tests/unit/bufpool_test.c labs/08-reactor/bufpool.c
 *   /tmp/bufpool_test
 *
 * What it leaves out: free lists never shrink on their own (only an
 * allocation at the cap trims other classes), and there is no lock (one
 * pool per thread).
 */
#define _POSIX_C_SOURCE 200809L

#include "bufpool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---------- the pool -------------------------------------------------------- */

static const size_t class_size[POOL_NCLASSES] = {
    4096, 16384, 65536, 262144, 1048576, 4194304, 8388608,
};

/* What every function below keeps true when it returns (the unit tests and
 * the stats check it):
 *   - cls[c].free_list links exactly cls[c].nfree buffers of class c
 *     (through ->next), none of them in use;
 *   - cls[c].in_use counts the class-c buffers handed out and not freed;
 *     cls[c].peak is the highest in_use ever seen;
 *   - held is the data bytes (cap of each buffer, not its header) of every
 *     buffer malloc'd and not yet given back to malloc: in use plus free;
 *     held never passes the pool's cap;
 *   - failures counts the requests the pool refused (cap, malloc, or a
 *     size past the largest class). */
struct pool_class {
    struct pool_buf *free_list;
    size_t nfree;
    size_t in_use;
    size_t peak;
};

struct bufpool {
    struct pool_class cls[POOL_NCLASSES];
    size_t held;     /* bytes of data in every buffer we malloc'd and hold */
    size_t cap;
    size_t failures;
};

/* The starter's way of saying "not written yet".  (A finished allocator
 * never exits: it returns NULL and lets the caller decide.) */
_Noreturn static void todo(const char *what)
{
    fprintf(stderr, "%s is not written yet\n", what);
    exit(1);
}

struct bufpool *pool_create(size_t cap)
{
    struct bufpool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cap = cap;
    return p;
}

/* The class index for size, or -1 if it is too large. */
static int class_of(size_t size)
{
    /* TODO 1: the index of the smallest class that holds size bytes (a
     * request of 0 bytes gets the smallest class), or -1 for a size no
     * class holds.  Exact at every boundary: a class holds its own size. */
    (void)size;
    todo("TODO 1: class_of() in bufpool.c");
}

size_t pool_class_size(size_t size)
{
    int c = class_of(size);
    return c < 0 ? 0 : class_size[c];
}

/* Really free (to malloc) one buffer from class c's free list. */
static void release_one(struct bufpool *p, int c)
{
    struct pool_class *pc = &p->cls[c];
    struct pool_buf *b = pc->free_list;
    pc->free_list = b->next;
    pc->nfree--;
    p->held -= b->cap;
    free(b);
}

/* A fresh buffer of class c from malloc, within the cap. */
static struct pool_buf *new_buf(struct bufpool *p, int c)
{
    /* TODO 2: a new buffer of class c from malloc, header and data in one
     * block (struct pool_buf), its fields set for an empty buffer of that
     * class, counted in held (it is not on a free list, nor counted in
     * use: the caller does that).  Contract:
     *   - held never passes the cap: when the new buffer would not fit,
     *     free buffers of the OTHER classes go back to malloc first
     *     (release_one(); the biggest first, and no more than needed);
     *     if it still does not fit, or malloc fails: NULL, errno ENOMEM;
     *   - never exits: the caller closes one connection, not the server. */
    (void)p;
    (void)c;
    (void)release_one;
    todo("TODO 2: new_buf() in bufpool.c");
}

int pool_prealloc(struct bufpool *p, size_t size, size_t count)
{
    int c = class_of(size);
    if (c < 0) {
        errno = EMSGSIZE;
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        struct pool_buf *b = new_buf(p, c);
        if (!b)
            return -1;
        b->next = p->cls[c].free_list;
        p->cls[c].free_list = b;
        p->cls[c].nfree++;
    }
    return 0;
}

struct pool_buf *pool_alloc(struct bufpool *p, size_t size)
{
    /* TODO 3a: bufpool.h's pool_alloc(): an empty buffer (head = len = 0,
     * next NULL) of size's class, reused from its free list when there is
     * one (no malloc once the pool is warm), else new.  Too large: NULL,
     * EMSGSIZE; the cap or malloc refused: NULL, ENOMEM.  Every refusal is
     * counted in failures; the invariants above hold either way. */
    (void)p;
    (void)size;
    todo("TODO 3: pool_alloc() in bufpool.c");
}

void pool_free(struct bufpool *p, struct pool_buf *b)
{
    /* TODO 3b: bufpool.h's pool_free(): b (NULL: nothing) goes back to
     * its class's free list, for the next pool_alloc() of that class; the
     * invariants above hold afterwards (held does not change: the pool
     * still holds the memory). */
    (void)p;
    (void)b;
    todo("TODO 3: pool_free() in bufpool.c");
}

int pool_reserve(struct bufpool *p, struct pool_buf **bp, size_t room)
{
    /* TODO 4: bufpool.h's pool_reserve(): afterwards at least `room`
     * bytes can be appended at buf_tail(*bp), after the same unconsumed
     * bytes, in the same order.  Contract:
     *   - *bp NULL: a new buffer;
     *   - a buffer changes class only when its data plus room cannot fit
     *     in its own class, even with the data moved to the front (no copy
     *     at all if the room is already there);
     *   - on failure (no class that large: EMSGSIZE; the cap or malloc:
     *     ENOMEM; each counted in failures): -1, and *bp exactly as it
     *     was, the same buffer holding the same bytes. */
    (void)p;
    (void)bp;
    (void)room;
    todo("TODO 4: pool_reserve() in bufpool.c");
}

size_t pool_destroy(struct bufpool *p)
{
    if (!p)
        return 0;
    size_t leaked = 0;
    for (int c = 0; c < POOL_NCLASSES; c++) {
        while (p->cls[c].free_list)
            release_one(p, c);
        leaked += p->cls[c].in_use;
    }
    free(p);
    return leaked;
}

/* ---------- stats ----------------------------------------------------------- */

void pool_get_stats(const struct bufpool *p, struct pool_stats *st)
{
    memset(st, 0, sizeof *st);
    for (int c = 0; c < POOL_NCLASSES; c++) {
        st->cls[c].size = class_size[c];
        st->cls[c].in_use = p->cls[c].in_use;
        st->cls[c].free = p->cls[c].nfree;
        st->cls[c].peak = p->cls[c].peak;
        st->in_use += p->cls[c].in_use;
    }
    st->held = p->held;
    st->cap = p->cap;
    st->failures = p->failures;
}

void pool_print_stats(const struct bufpool *p, FILE *to)
{
    struct pool_stats st;
    pool_get_stats(p, &st);
    for (int c = 0; c < POOL_NCLASSES; c++)
        fprintf(to, "pool: class %zu: in_use %zu free %zu peak %zu\n", st.cls[c].size,
                st.cls[c].in_use, st.cls[c].free, st.cls[c].peak);
    fprintf(to, "pool: total: in_use %zu held %zu cap %zu failures %zu\n", st.in_use, st.held,
            st.cap, st.failures);
    fflush(to);
}
