/*
 * calc.h - the calculator protocol: finding frames in a byte stream, and
 * answering a request.  No I/O here: the server (server.c) and the client
 * (client.c) both use it on bytes they already have.
 *
 * A frame is LEN@PAYLOAD@ : LEN is the payload's length as 1 to 4 ASCII
 * digits (leading zeros allowed, at most 1024), then '@', exactly LEN
 * payload bytes, then '@'.  "7@12 + 30@" is a request, "4@0 42@" its
 * reply.  labs/09-framing/README.md has the whole protocol.
 */
#ifndef NETLABS_CALC_H
#define NETLABS_CALC_H

#include <stddef.h>
#include <sys/types.h>

#define FRAME_MAX_PAYLOAD 1024 /* the largest LEN */
#define FRAME_MAX_DIGITS 4     /* ... written with at most this many digits */
/* The longest frame: 4 digits, '@', 1024 bytes, '@'. */
#define FRAME_MAX_LEN (FRAME_MAX_DIGITS + 1 + FRAME_MAX_PAYLOAD + 1)

/* The reply to a bad frame (status 9). */
#define BAD_FRAME_REPLY "3@9 0@"

/* Reply statuses. */
enum calc_status {
    CALC_OK = 0,
    CALC_DIV_ZERO = 1,   /* / or % by zero */
    CALC_BAD_OP = 2,     /* an operator other than + - * / % */
    CALC_MALFORMED = 3,  /* not "X OP Y" with int64 X and Y */
    CALC_OVERFLOW = 4,   /* the result does not fit in int64 */
    CALC_BUSY = 5,       /* (lab 10: the queue is full) */
    CALC_BAD_FRAME = 9,
};

/* Look for one frame at the start of data[0..n).
 *   > 0: a whole frame of that many bytes; *payload and *len give its
 *        payload (inside data, not copied).
 *     0: not complete yet: every byte so far is a valid beginning; wait
 *        for more (the bytes stay where they are).
 *    -1: a bad frame, known as soon as the offending byte is there: LEN
 *        empty, not digits, a 5th digit, over 1024, or the byte after
 *        the payload not '@'. */
ssize_t frame_next(const char *data, size_t n, const char **payload, size_t *len);

/* Split a request payload "X OP Y" (three non-empty tokens, single
 * spaces) and parse X and Y.  CALC_OK with *x, *y and the operator token
 * (*op, *oplen: inside the payload, not checked here), or CALC_MALFORMED.
 * (Later labs add operators of their own: they parse with this, then
 * decide.) */
enum calc_status calc_parse(const char *payload, size_t n, long long *x,
                            const char **op, size_t *oplen, long long *y);

/* Apply a one-byte operator.  CALC_OK and *result, or CALC_BAD_OP (not
 * one of + - * / %), CALC_DIV_ZERO, CALC_OVERFLOW, in that order. */
enum calc_status calc_apply(long long x, char op, long long y, long long *result);

/* Evaluate a request payload "X OP Y": calc_parse, then calc_apply (an
 * operator token longer than one byte is CALC_BAD_OP).  Sets *result
 * when CALC_OK. */
enum calc_status calc_eval(const char *payload, size_t n, long long *result);

/* The whole reply frame for a request payload ("4@0 42@"), written to
 * out (cap bytes; 32 always suffice).  Returns its length. */
size_t calc_reply(const char *payload, size_t n, char *out, size_t cap);

/* A reply frame "LEN@STATUS RESULT@" for a status and result, into out
 * (cap >= 32).  Returns its length. */
size_t calc_format(enum calc_status st, long long result, char *out, size_t cap);

#endif
