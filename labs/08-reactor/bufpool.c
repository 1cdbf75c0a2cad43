/*
 * bufpool.c - the size-class buffer pool; bufpool.h says why and how.
 * YOUR TASK: TODOs 1-4.  bufpool.h is the contract: read it first, every
 * function below must do exactly what it says there.
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
    /* TODO 1: return the index of the smallest class whose size is >=
     * size (0 for size 0), or -1 if size > POOL_MAX_SIZE.  Mind the
     * boundaries: 4096 is class 0, 4097 is class 1. */
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
    /* TODO 2: if p->held + the class size would pass p->cap, first
     * release_one() free buffers of the OTHER classes (biggest first)
     * until it fits; if it still does not fit, errno = ENOMEM and return
     * NULL.  Then malloc(sizeof(struct pool_buf) + size) (NULL: ENOMEM),
     * set next, cap, head, len, cls, add the size to p->held, return it.
     * Never exit here: the server closes one connection, not itself. */
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
    /* TODO 3a: find the class (too large: count a failure, EMSGSIZE,
     * NULL).  Pop a buffer from its free list, or new_buf() one (NULL:
     * count a failure, return NULL; errno is set).  Reset head and len
     * and next; count it in_use and update peak. */
    (void)p;
    (void)size;
    todo("TODO 3: pool_alloc() in bufpool.c");
}

void pool_free(struct bufpool *p, struct pool_buf *b)
{
    /* TODO 3b: NULL does nothing.  Otherwise push b on its class's free
     * list (b->cls) and move it from in_use to free in the counts. */
    (void)p;
    (void)b;
    todo("TODO 3: pool_free() in bufpool.c");
}

int pool_reserve(struct bufpool *p, struct pool_buf **bp, size_t room)
{
    /* TODO 4: make room for `room` more bytes after the data of *bp.
     *   - *bp NULL: pool_alloc(p, room) into *bp.
     *   - buf_room() already enough: nothing to do.
     *   - cap - len enough: memmove the data to the front (head = 0).
     *   - else: len + room past POOL_MAX_SIZE is EMSGSIZE (count a
     *     failure); otherwise pool_alloc a buffer for len + room, copy
     *     the data, pool_free the old one, store the new one in *bp.
     * On failure return -1 and leave *bp exactly as it was. */
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
