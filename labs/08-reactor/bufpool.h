/*
 * bufpool.h - a size-class buffer pool.
 *
 * A server that gives every connection a fixed 64 KiB buffer spends
 * 640 MB on 10,000 idle clients; one that mallocs exactly what each read
 * needs fragments the heap and calls malloc on the data path.  The pool
 * sits in between:
 *
 *   - Sizes are rounded up to a few classes (4K, 16K, 64K, 256K, 1M, 4M,
 *     8M).  Few sizes means a freed buffer almost always fits the next
 *     request, so buffers are reused instead of returned to malloc.
 *   - Each class keeps a free list.  pool_free() pushes a buffer on it,
 *     pool_alloc() pops one: no malloc, no page faults, once warm.
 *   - The pool has a cap on the bytes it holds (in use + free).  An
 *     allocation that would pass the cap first releases free buffers of
 *     other classes back to malloc; if that is not enough it returns NULL
 *     with errno = ENOMEM.  It never exits: the caller decides (a server
 *     closes the one connection that asked, and goes on).
 *   - Stats per class (in use, free, peak in use, failures) show where the
 *     memory is; a server prints them on SIGUSR1.
 *
 * One pool per event loop, owned by the caller: not a global singleton,
 * and no lock, because a single thread uses it.  A multi-threaded server
 * would give each loop thread its own pool rather than share a locked one.
 */
#ifndef NETLABS_BUFPOOL_H
#define NETLABS_BUFPOOL_H

#include <stddef.h>
#include <stdio.h>

#define POOL_NCLASSES 7
#define POOL_MIN_SIZE ((size_t)4096)             /* the smallest class */
#define POOL_MAX_SIZE ((size_t)8 * 1024 * 1024)  /* the largest class */

/* A buffer: one malloc holds this header and cap bytes of data.  The
 * unconsumed bytes are data[head .. head+len); bytes may be appended at
 * data[head+len .. cap). */
struct pool_buf {
    struct pool_buf *next; /* free-list link, NULL while in use */
    size_t cap;            /* bytes in data[]: the class size */
    size_t head;           /* first unconsumed byte */
    size_t len;            /* unconsumed bytes */
    unsigned cls;          /* index of its class */
    char data[];
};

/* The unconsumed bytes, and the room after them. */
static inline char *buf_data(struct pool_buf *b) { return b->data + b->head; }
static inline char *buf_tail(struct pool_buf *b) { return b->data + b->head + b->len; }
static inline size_t buf_room(const struct pool_buf *b) { return b->cap - b->head - b->len; }
/* n bytes were written at buf_tail(). */
static inline void buf_commit(struct pool_buf *b, size_t n) { b->len += n; }
/* n bytes at buf_data() are done with. */
static inline void buf_consume(struct pool_buf *b, size_t n)
{
    b->head += n;
    b->len -= n;
    if (b->len == 0)
        b->head = 0;
}

struct pool_class_stats {
    size_t size;   /* the class size in bytes */
    size_t in_use; /* buffers handed out and not freed yet */
    size_t free;   /* buffers on the free list */
    size_t peak;   /* the highest in_use seen */
};

struct pool_stats {
    struct pool_class_stats cls[POOL_NCLASSES];
    size_t held;     /* bytes of data held: in use + free (the cap counts this) */
    size_t cap;      /* the cap on held */
    size_t in_use;   /* buffers in use, all classes */
    size_t failures; /* allocations refused (cap or size) */
};

struct bufpool;

/* A pool that holds at most cap bytes of buffer data.  NULL if malloc
 * fails (errno ENOMEM). */
struct bufpool *pool_create(size_t cap);

/* Free every buffer on the free lists and the pool itself.  Returns the
 * number of buffers still in use (they are not freed: the caller leaked
 * them); 0 in a correct program. */
size_t pool_destroy(struct bufpool *p);

/* Fill the free list of size's class with count buffers now, so the
 * first clients do not pay for malloc and page faults.  0, or -1 with
 * errno (ENOMEM: cap or malloc; EMSGSIZE: size too large). */
int pool_prealloc(struct bufpool *p, size_t size, size_t count);

/* The class size a request of size bytes gets (size 0 gets the smallest
 * class), or 0 if size is larger than POOL_MAX_SIZE. */
size_t pool_class_size(size_t size);

/* An empty buffer of at least size bytes (head = len = 0).  NULL with
 * errno = ENOMEM when the cap (or malloc) refuses, EMSGSIZE when size is
 * larger than the largest class.  Never exits. */
struct pool_buf *pool_alloc(struct bufpool *p, size_t size);

/* Make room for at least room more bytes after the data of *bp.  *bp may
 * be NULL (then it is allocated).  Moves the data to the front if that is
 * enough, otherwise moves it to a buffer of a bigger class and frees the
 * old one.  0, or -1 with errno as pool_alloc (then *bp is unchanged). */
int pool_reserve(struct bufpool *p, struct pool_buf **bp, size_t room);

/* Give a buffer back to its class's free list.  NULL is ignored. */
void pool_free(struct bufpool *p, struct pool_buf *b);

void pool_get_stats(const struct bufpool *p, struct pool_stats *st);

/* Print the stats, one line per class and a total line, each starting
 * with "pool:". */
void pool_print_stats(const struct bufpool *p, FILE *to);

#endif
