/*
 * 17-io-uring: the uppercase echo of labs 01-08 as a completion-based
 * server on io_uring (through liburing).
 *
 * YOUR TASK: TODOs 1-6; read labs/17-io-uring/README.md first.  Given: the
 * command line, the ring's setup (setup_ring), the memory of the buffer
 * ring, the connection struct and its lists, user_data, get_sqe(), the
 * helpers for sends, cancels, appending output and the starved list, the
 * signal (a poll on a signalfd, through the ring) and the clean exit.
 * Yours: the provided-buffer ring (TODO 1), the multishot accept (TODO 2),
 * the receives (TODO 3), the sends (TODO 4), closing (TODO 5) and the loop
 * (TODO 6).  Each TODO says what the code must guarantee; the handout's
 * Hints have steps.  (Helpers only your code calls are static inline: an
 * unused one is no warning.)
 *
 * The model: we never ask "is this fd ready?".  We queue operations
 * ("accept on the listener", "receive on this connection", "send these
 * bytes") as SQEs in the submission queue, one io_uring_enter() hands the
 * kernel all of them and waits, and each finished operation comes back as
 * a CQE in the completion queue, with its result and its user_data.
 *
 * The rules a completion-based server lives by:
 *   - a multishot request stays armed while its completions carry
 *     IORING_CQE_F_MORE.  One without it was the last: re-arm it (the
 *     kernel ends one on an error, on an empty buffer ring (-ENOBUFS),
 *     on a full CQ, at EOF);
 *   - memory an operation in flight points to (the connection, its send
 *     buffer) stays put until that operation's last completion: a
 *     connection is freed, and its fd closed, only once nothing of it is
 *     in flight (what is, is cancelled first and its completion reaped).
 */
#define _GNU_SOURCE /* signalfd's SFD_* flags come with it too */

#include "wrap.h"

#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define SQ_ENTRIES 2048  /* SQEs queued per io_uring_enter() at most */
#define CQ_ENTRIES 16384 /* completions the CQ holds before it overflows */
#define NBUFS 256        /* provided receive buffers (a power of 2) */
#define BUF_SIZE 4096    /* bytes per provided buffer */
#define BGID 0           /* the buffer group our recvs pick from */
#define KEEP_MAX 65536   /* an emptied send buffer larger than this is freed */
#define SEND_MAX (256 * 1024) /* bytes per send SQE, see arm_send() */

static int verbose; /* -v: log connects and closes */

/* ---------- user_data: which operation a completion belongs to ------------ */

/* Each SQE carries 64 bits of user_data that come back in its CQE.  Ours:
 * the connection's address (malloc aligns it to 16) with the operation in
 * the low bits, or just the operation when no connection is involved. */
enum op { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_CANCEL, OP_CLOSE, OP_SIGNAL, OP_LISTEN_POLL };
#define OP_MASK 7u

/* ---------- connections ------------------------------------------------------ */

struct outbuf {
    char *data;
    size_t len, size;
};

struct conn {
    struct conn *prev, *next;   /* every connection, for the exit */
    struct conn *sprev, *snext; /* on the starved list (recv ended: -ENOBUFS) */
    struct conn *knext;         /* on the list of sends to start this turn */
    int fd;
    int recv_armed;  /* a recv of ours is in flight (until its last CQE) */
    int send_busy;   /* a send is in flight: tx must not move */
    int starved;     /* on the starved list, waiting for buffers */
    int kick_queued; /* on the kick list */
    int eof;         /* the client half-closed: flush, then close */
    int closing;     /* close once nothing is in flight */
    int cancelled;   /* cancels submitted for what was in flight */
    struct outbuf tx; /* the send in flight reads tx.data[tx_off .. tx.len) */
    size_t tx_off;
    struct outbuf acc; /* what arrived meanwhile, sent when tx is done */
    char name[ADDR_STRLEN];
};

static struct io_uring ring;
static struct conn *conns;   /* every open connection */
static struct conn *starved; /* connections whose recv waits for buffers */
static struct conn *kicks;   /* connections that received bytes this turn */
static int multishot_recv = 1; /* cleared if the kernel refuses it */
static int listenfd = -1, sigfd = -1, spare_fd = -1;
static int stop_requested;

/* The provided-buffer ring: NBUFS entries (addr, len, bid) the kernel
 * takes buffers from, and the NBUFS * BUF_SIZE bytes they point to. */
static struct io_uring_buf_ring *bufring;
static size_t bufring_bytes;
static char *bufs;
static int bufs_returned; /* added to the ring, not yet made visible */

static inline void *udata(void *p, enum op op)
{
    return (void *)((uintptr_t)p | op);
}

/* An SQE to fill in.  With the SQ full (thousands of connections served
 * in one turn), submit what is queued so far to make room. */
static struct io_uring_sqe *get_sqe(void)
{
    for (;;) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        if (sqe)
            return sqe;
        int r = io_uring_submit(&ring);
        if (r == -EBUSY || r == -EAGAIN) {
            /* The CQ is full and its overflow could not be flushed:
             * every CQE we looked at is marked seen already (main loop),
             * so fetching completions makes room; they wait for the
             * next turn. */
            io_uring_get_events(&ring);
            continue;
        }
        if (r < 0 && r != -EINTR) {
            errno = -r;
            unix_error("io_uring_submit", NULL);
        }
    }
}

/* ---------- the provided-buffer ring ------------------------------------------ */

static char *buf_addr(unsigned bid)
{
    return bufs + (size_t)bid * BUF_SIZE;
}

/* Hand buffer bid back to the kernel.  It becomes visible to the kernel
 * at the next bufs_publish(): one store for a whole turn's buffers. */
static inline void buf_return(unsigned bid)
{
    io_uring_buf_ring_add(bufring, buf_addr(bid), BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(NBUFS), bufs_returned++);
}

static inline void bufs_publish(void)
{
    if (bufs_returned > 0) {
        io_uring_buf_ring_advance(bufring, bufs_returned);
        bufs_returned = 0;
    }
}

/* liburing 2.3 has no io_uring_setup_buf_ring(): map the ring ourselves
 * (page-aligned, as the kernel requires), register it, fill it. */
static void setup_buffers(void)
{
    bufring_bytes = NBUFS * sizeof(struct io_uring_buf);
    void *p = mmap(NULL, bufring_bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        unix_error("mmap", "buffer ring");
    bufring = p;
    /* mmap, not malloc: the kernel writes into these behind the back of
     * any memory checker, and mapped memory counts as initialised. */
    p = mmap(NULL, (size_t)NBUFS * BUF_SIZE, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        unix_error("mmap", "receive buffers");
    bufs = p;

    /* TODO 1: make these NBUFS buffers of BUF_SIZE bytes the kernel's to
     * pick from: register bufring (NBUFS entries) as buffer group BGID, then
     * put every buffer in it (buffer id bid at buf_addr(bid)) and publish
     * them.  Fail with a message that names the call if the kernel refuses
     * (a kernel before 5.19 has no buffer rings).  After this, a receive
     * that selects a buffer from group BGID finds NBUFS of them. */
    app_error("TODO 1: setup_buffers (the provided-buffer ring) is not written yet");
}

/* ---------- arming operations ---------------------------------------------------- */

static void arm_accept(void)
{
    /* TODO 2 (with on_accept): queue ONE accept on listenfd that stays armed
     * and completes once per new connection (multishot), its user_data
     * OP_ACCEPT.  New sockets non-blocking and close-on-exec (see the
     * handout: why non-blocking, when the ring never blocks us). */
    app_error("TODO 2: arm_accept (the multishot accept) is not written yet");
}

static void arm_recv(struct conn *c)
{
    /* TODO 3 (with on_recv): queue a receive on c->fd that has no buffer of
     * its own: the kernel picks one from group BGID when data arrives.
     * Multishot (one SQE, one completion per arrival) while multishot_recv
     * is set; a single-shot recv of up to BUF_SIZE once it is cleared.
     * user_data: c and OP_RECV.  Set c->recv_armed: a receive of c is in
     * flight until its last completion. */
    (void)c;
    (void)multishot_recv;
    app_error("TODO 3: arm_recv (a receive from the buffer ring) is not written yet");
}

/* Send the rest of tx.  At most SEND_MAX at a time: a send that cannot
 * finish waits for room (the kernel polls the socket for us and resumes
 * it), and one that has waited too often is handed to a kernel worker
 * thread (io-wq) instead; a bounded send finishes in a few rounds. */
static inline void arm_send(struct conn *c)
{
    struct io_uring_sqe *sqe = get_sqe();
    size_t n = c->tx.len - c->tx_off;
    io_uring_prep_send(sqe, c->fd, c->tx.data + c->tx_off, n < SEND_MAX ? n : SEND_MAX, MSG_NOSIGNAL);
    io_uring_sqe_set_data(sqe, udata(c, OP_SEND));
    c->send_busy = 1;
}

static inline void arm_cancel(struct conn *c, enum op op)
{
    struct io_uring_sqe *sqe = get_sqe();
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)udata(c, op), 0);
    io_uring_sqe_set_data(sqe, udata(NULL, OP_CANCEL));
}

/* ---------- the starved list: recvs ended by -ENOBUFS ------------------------------ */

static inline void starve(struct conn *c)
{
    c->starved = 1;
    c->sprev = NULL;
    c->snext = starved;
    if (starved)
        starved->sprev = c;
    starved = c;
}

static void unstarve(struct conn *c)
{
    if (!c->starved)
        return;
    if (c->sprev)
        c->sprev->snext = c->snext;
    else
        starved = c->snext;
    if (c->snext)
        c->snext->sprev = c->sprev;
    c->starved = 0;
}

/* At the end of a turn every buffer taken during it has been copied and
 * given back, so the ring has room again: re-arm the starved recvs.
 * (Re-arming at once, inside the turn, could meet the same empty ring.) */
static inline void feed_starved(void)
{
    while (starved) {
        struct conn *c = starved;
        unstarve(c);
        if (!c->closing && !c->eof)
            arm_recv(c);
    }
}

/* ---------- connection life ------------------------------------------------------ */

static inline void conn_open(int fd)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        unix_warn("calloc", "connection");
        close(fd);
        return;
    }
    c->fd = fd;
    /* Nagle off: a message that arrives over two turns leaves in two
     * sends, and Nagle would hold the second until the client's delayed
     * ACK (40 ms).  The one syscall per connection this loop makes itself:
     * io_uring has no setsockopt request before Linux 6.7. */
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == -1)
        unix_warn("setsockopt TCP_NODELAY", "connection");
    c->next = conns;
    if (conns)
        conns->prev = c;
    conns = c;
    if (verbose) {
        peer_str(fd, c->name, sizeof c->name);
        err_msg("connect %s", c->name);
    }
    arm_recv(c);
}

/* Close c if it is closing and nothing of it is in flight; otherwise
 * cancel what is (once) and come back when its last completion arrives. */
static void conn_maybe_close(struct conn *c)
{
    /* TODO 5: nothing happens unless c->closing.  While a receive or a send
     * of c is in flight, the kernel may still write into c's buffers and
     * will post a completion whose user_data points at c: cancel each of
     * them (arm_cancel; once: c->cancelled) and return; their completions
     * (-ECANCELED, or their normal end) call back here.  Once nothing is in
     * flight: close c->fd (through the ring: io_uring_prep_close, user_data
     * OP_CLOSE), take c off the starved list, the kick list (if
     * c->kick_queued) and the list of connections, free its buffers and
     * c.  Log "close NAME" with -v. */
    (void)c;
    app_error("TODO 5: conn_maybe_close is not written yet");
}

static inline void conn_fail(struct conn *c)
{
    c->closing = 1;
    conn_maybe_close(c);
}

/* Start the next send if none is in flight: what has accumulated becomes
 * the buffer in flight.  After EOF, with nothing left to send, mark c for
 * closing (the caller's conn_maybe_close() does it: c must outlive this
 * call). */
static inline void conn_kick(struct conn *c)
{
    /* TODO 4 (with on_send): at most ONE send per connection in flight,
     * and the kernel reads a send's bytes when it runs it, not when it is
     * queued, so bytes it points to must not move or change meanwhile.
     * If no send is in flight (and c is not closing) and c->acc holds
     * bytes, they become the buffer in flight (swap acc and tx, tx_off 0,
     * acc emptied) and arm_send(c) sends them.  Else, at EOF with nothing
     * left to send and no receive in flight, mark c closing (the caller's
     * conn_maybe_close does the rest; never free c here). */
    (void)c;
    app_error("TODO 4: conn_kick (starting the next send) is not written yet");
}

/* c received bytes: send them at the end of the turn, with whatever else
 * arrives for c in the same turn.  A 16 KiB message often completes as
 * four 4 KiB receives in one turn: one send instead of four (and without
 * TCP_NODELAY, the first 4 KiB would go out alone while Nagle's algorithm
 * held the other 12 KiB until the client's delayed ACK). */
static inline void queue_kick(struct conn *c)
{
    if (!c->kick_queued) {
        c->kick_queued = 1;
        c->knext = kicks;
        kicks = c;
    }
}

static inline void flush_kicks(void)
{
    while (kicks) {
        struct conn *c = kicks;
        kicks = c->knext;
        c->kick_queued = 0;
        conn_kick(c);
        conn_maybe_close(c);
    }
}

/* Append n bytes, uppercased, to c's accumulating buffer.  0 or -1. */
static inline int conn_append(struct conn *c, const char *p, size_t n)
{
    struct outbuf *b = &c->acc;
    if (b->size - b->len < n) {
        size_t size = b->size ? b->size : BUF_SIZE;
        while (size - b->len < n)
            size *= 2;
        char *q = realloc(b->data, size);
        if (!q)
            return -1;
        b->data = q;
        b->size = size;
    }
    memcpy(b->data + b->len, p, n);
    upcase(b->data + b->len, n);
    b->len += n;
    return 0;
}

/* ---------- completions ------------------------------------------------------------ */

/* The multishot accept ended with error err, not a transient one.  Out of
 * fds (EMFILE, ENFILE), re-arming at once would fail at once (accept takes
 * an fd number before it looks at the queue) and spin: refuse the waiting
 * clients with the spare fd (they read EOF, "no", instead of silence).
 * Then, for that error as for any other, wait for the next client to
 * arrive (a poll needs no fd; its completion, OP_LISTEN_POLL, re-arms the
 * accept). */
static inline void accept_failed(int err)
{
    if (err == EMFILE || err == ENFILE) {
        err_msg("accept: out of fds: closing new clients");
        while (spare_fd_refuse(listenfd, &spare_fd) == 1)
            ;
    } else {
        errno = err;
        unix_warn("accept (io_uring)", "listening socket");
    }
    struct io_uring_sqe *sqe = get_sqe();
    io_uring_prep_poll_add(sqe, listenfd, POLLIN);
    io_uring_sqe_set_data(sqe, udata(NULL, OP_LISTEN_POLL));
}

static void on_accept(const struct io_uring_cqe *cqe)
{
    /* TODO 2: a completion of the accept.  res >= 0 is a new connection's
     * fd: open it (conn_open).  Without IORING_CQE_F_MORE the accept has
     * ended: re-arm it, except after an error that is not transient
     * (accept_error_is_transient), which goes to accept_failed() (out of
     * fds, re-arming at once would spin). */
    (void)cqe;
    app_error("TODO 2: on_accept is not written yet");
}

static void on_recv(struct conn *c, const struct io_uring_cqe *cqe)
{
    /* TODO 3: a completion of c's receive.
     *   - Without IORING_CQE_F_MORE it was the receive's last: c->recv_armed
     *     = 0, and it must be re-armed (unless c is closing, or at EOF, or
     *     as below).
     *   - With IORING_CQE_F_BUFFER it used buffer id (flags >>
     *     IORING_CQE_BUFFER_SHIFT): copy its res bytes, uppercased, into c's
     *     output (conn_append), then give the buffer back (buf_return), every
     *     time, whatever else happens.
     *   - res > 0: queue_kick(c) (the send starts at the end of the turn).
     *     res == 0: EOF, c->eof: flush what is owed (conn_kick), then close.
     *     -ENOBUFS: the ring was empty, not an error: put c on the starved
     *     list (starve); the loop re-arms it once buffers are back.  -EINVAL
     *     with multishot_recv set: a kernel without multishot receives
     *     (before 6.0): clear it and re-arm.  -ECANCELED: ours (c is
     *     closing).  Anything else: close c (log it unless ECONNRESET).
     *   - end with conn_maybe_close(c): c may be gone after it. */
    (void)c;
    (void)cqe;
    app_error("TODO 3: on_recv is not written yet");
}

static void on_send(struct conn *c, const struct io_uring_cqe *cqe)
{
    /* TODO 4: a completion of c's send (no send of c is in flight any
     * more).  res < 0: -EINTR/-EAGAIN, send again (unless closing);
     * -EPIPE, -ECONNRESET, -ECANCELED silently, anything else with a log:
     * close c (conn_fail).  res >= 0 is how many bytes were sent, possibly
     * fewer than asked (a short send): send the rest of tx before anything
     * newer.  Once tx is all sent: empty it, start the next send
     * (conn_kick), and end with conn_maybe_close(c). */
    (void)c;
    (void)cqe;
    app_error("TODO 4: on_send is not written yet");
}

static void on_signal(const struct io_uring_cqe *cqe)
{
    struct signalfd_siginfo si;
    if (cqe->res < 0) {
        errno = -cqe->res;
        unix_error("poll (io_uring)", "signalfd");
    }
    /* Consume it (it stays pending otherwise); either way, stop. */
    if (read(sigfd, &si, sizeof si) == -1 && errno != EAGAIN)
        unix_warn("read", "signalfd");
    stop_requested = 1;
}

static inline void handle(const struct io_uring_cqe *cqe)
{
    uintptr_t ud = (uintptr_t)io_uring_cqe_get_data(cqe);
    struct conn *c = (struct conn *)(ud & ~(uintptr_t)OP_MASK);
    switch ((enum op)(ud & OP_MASK)) {
    case OP_ACCEPT:
        on_accept(cqe);
        break;
    case OP_RECV:
        on_recv(c, cqe);
        break;
    case OP_SEND:
        on_send(c, cqe);
        break;
    case OP_SIGNAL:
        on_signal(cqe);
        break;
    case OP_LISTEN_POLL: /* a client waits: try accepting again */
        arm_accept();
        break;
    case OP_CLOSE:
        if (cqe->res < 0) {
            errno = -cqe->res;
            unix_warn("close (io_uring)", "connection");
        }
        break;
    case OP_CANCEL: /* -ENOENT or -EALREADY: it was finishing anyway */
        break;
    }
}

/* ---------- setup and main ------------------------------------------------------- */

static void setup_ring(void)
{
    struct io_uring_params p;
    /* Completions are reaped by this thread only, when it asks
     * (DEFER_TASKRUN): no interrupt of the loop for each of them.  A
     * kernel before 6.1 refuses those flags (EINVAL): plain ring then. */
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
              IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    p.cq_entries = CQ_ENTRIES;
    int r = io_uring_queue_init_params(SQ_ENTRIES, &ring, &p);
    if (r == -EINVAL) {
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = CQ_ENTRIES;
        r = io_uring_queue_init_params(SQ_ENTRIES, &ring, &p);
    }
    if (r < 0) {
        errno = -r;
        unix_error("io_uring_queue_init",
                   r == -ENOSYS || r == -EPERM ? "(io_uring is disabled here: sysctl kernel.io_uring_disabled, or a seccomp filter)"
                   : r == -ENOMEM ? "(RLIMIT_MEMLOCK too low for the rings on this kernel? ulimit -l)"
                                  : NULL);
    }
    /* Without NODROP (before 5.5) a full CQ silently loses completions. */
    if (!(p.features & IORING_FEAT_NODROP))
        app_error("io_uring: this kernel drops completions when the CQ is full (no IORING_FEAT_NODROP)");
}

int main(int argc, char **argv)
{
    struct server_opts opts;
    parse_args(argc, argv, &opts);
    verbose = opts.verbose;
    Ignore_sigpipe(); /* belt and braces: every send has MSG_NOSIGNAL */

    /* SIGINT/SIGTERM: blocked, and read as a completion (a poll on a
     * signalfd), so the stop is one more event of the loop. */
    sigfd = Stop_signalfd(0);

    listenfd = Tcp_listen(opts.addr, opts.port);
    /* Only for spare_fd_refuse() (out of fds): io_uring never blocks on
     * it either way. */
    Set_nonblocking(listenfd);
    spare_fd = spare_fd_open();
    if (spare_fd == -1)
        unix_error("open", "/dev/null (the spare fd)");

    setup_ring();
    setup_buffers();
    arm_accept();
    struct io_uring_sqe *sqe = get_sqe();
    io_uring_prep_poll_add(sqe, sigfd, POLLIN);
    io_uring_sqe_set_data(sqe, udata(NULL, OP_SIGNAL));
    Announce_listening(listenfd);

    while (!stop_requested) {
        /* TODO 6: one turn of the loop.  Start the sends of the connections
         * that received during the last turn (flush_kicks), make the buffers
         * given back visible to the kernel (bufs_publish), re-arm the
         * starved receives (feed_starved), then ONE syscall: submit every
         * SQE queued since the last turn and wait for at least one
         * completion (io_uring_submit_and_wait).  -EINTR, -EBUSY, -EAGAIN
         * are not fatal (go on to the completions there are).  Then handle
         * every completion available (at most CQ_ENTRIES per turn): copy
         * it, mark it seen, then handle() the copy (a handler may need SQEs,
         * and a full CQ only makes room as we consume it). */
        app_error("TODO 6: the loop is not written yet");
    }

    /* A clean exit.  Submit what is queued (closes among it), then tear the
     * ring down: the kernel cancels every request still in flight, so
     * nothing can touch our memory any more; then free it all. */
    io_uring_submit(&ring);
    io_uring_queue_exit(&ring);
    while (conns) {
        struct conn *c = conns;
        conns = c->next;
        close(c->fd);
        free(c->tx.data);
        free(c->acc.data);
        free(c);
    }
    munmap(bufring, bufring_bytes);
    munmap(bufs, (size_t)NBUFS * BUF_SIZE);
    close(listenfd);
    close(spare_fd);
    close(sigfd);
    return 0;
}
