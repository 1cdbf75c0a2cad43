/*
 * bufpool.c - the size-class buffer pool; bufpool.h says why and how.
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
    for (int i = 0; i < POOL_NCLASSES; i++)
        if (size <= class_size[i])
            return i;
    return -1;
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

/* Make room under the cap for need more bytes by releasing free buffers
 * of other classes, biggest first.  0 if it fits now, -1 if it cannot. */
static int make_room(struct bufpool *p, size_t need, int keep)
{
    for (int c = POOL_NCLASSES - 1; c >= 0 && p->held + need > p->cap; c--) {
        if (c == keep)
            continue;
        while (p->cls[c].free_list && p->held + need > p->cap)
            release_one(p, c);
    }
    return p->held + need <= p->cap ? 0 : -1;
}

/* A fresh buffer of class c from malloc, within the cap. */
static struct pool_buf *new_buf(struct bufpool *p, int c)
{
    size_t size = class_size[c];
    if (size > p->cap || make_room(p, size, c) == -1) {
        errno = ENOMEM;
        return NULL;
    }
    struct pool_buf *b = malloc(sizeof *b + size);
    if (!b) {
        errno = ENOMEM;
        return NULL;
    }
    b->next = NULL;
    b->cap = size;
    b->head = b->len = 0;
    b->cls = (unsigned)c;
    p->held += size;
    return b;
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
    int c = class_of(size);
    if (c < 0) {
        p->failures++;
        errno = EMSGSIZE;
        return NULL;
    }
    struct pool_class *pc = &p->cls[c];
    struct pool_buf *b = pc->free_list;
    if (b) {
        pc->free_list = b->next;
        pc->nfree--;
        b->next = NULL;
        b->head = b->len = 0;
    } else if (!(b = new_buf(p, c))) {
        p->failures++;
        return NULL;
    }
    if (++pc->in_use > pc->peak)
        pc->peak = pc->in_use;
    return b;
}

void pool_free(struct bufpool *p, struct pool_buf *b)
{
    if (!b)
        return;
    struct pool_class *pc = &p->cls[b->cls];
    pc->in_use--;
    b->next = pc->free_list;
    pc->free_list = b;
    pc->nfree++;
}

int pool_reserve(struct bufpool *p, struct pool_buf **bp, size_t room)
{
    struct pool_buf *old = *bp;
    if (!old) {
        struct pool_buf *b = pool_alloc(p, room);
        if (!b)
            return -1;
        *bp = b;
        return 0;
    }
    if (buf_room(old) >= room)
        return 0;
    /* Enough space in total: slide the data to the front. */
    if (old->cap - old->len >= room) {
        memmove(old->data, buf_data(old), old->len);
        old->head = 0;
        return 0;
    }
    if (room > POOL_MAX_SIZE || old->len > POOL_MAX_SIZE - room) {
        p->failures++;
        errno = EMSGSIZE;
        return -1;
    }
    /* Move to a bigger class.  The old buffer stays valid until the copy
     * is done, so a failure leaves *bp as it was. */
    struct pool_buf *b = pool_alloc(p, old->len + room);
    if (!b)
        return -1;
    memcpy(b->data, buf_data(old), old->len);
    b->len = old->len;
    pool_free(p, old);
    *bp = b;
    return 0;
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
