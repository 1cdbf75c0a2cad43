/*
 * calc.c - the calculator protocol (calc.h): frames and arithmetic.
 *
 * Two rules run through this file.  Nothing is trusted: a length, a
 * number, an operator each arrive as bytes from a stranger, and each is
 * checked before it is used (a LEN of 9999 must not make us wait for
 * 9999 bytes, a 30-digit number must not wrap around).  And nothing is
 * copied: the parser looks at the bytes where they lie in the input
 * buffer, and a frame that is not complete yet is simply left there.
 *
 * YOUR TASK: TODOs 1-3 here, then TODO 4 in server.c.  Read
 * labs/09-framing/README.md first.  Until they are written, the server
 * stops with a "not written yet" message at the first request.
 */
#define _POSIX_C_SOURCE 200809L

#include "calc.h"

#include <stdint.h>
#include <stdio.h>

#include "wrap.h"

/* The starter's way of saying "not written yet". */
_Noreturn static void todo(const char *what)
{
    app_error("%s is not written yet", what);
}

/* ---------- frames ------------------------------------------------------------ */

ssize_t frame_next(const char *data, size_t n, const char **payload, size_t *len)
{
    /* TODO 1: the frame scanner, as calc.h specifies it.  Decide from the
     * bytes present, and only from them: never read past data[n - 1],
     * never wait for bytes that cannot make the frame valid (a fifth
     * digit, a LEN over 1024 or a wrong closing byte is an error the
     * moment it arrives), and never trust LEN before checking it. */
    (void)data;
    (void)n;
    (void)payload;
    (void)len;
    todo("TODO 1: frame_next() in calc.c");
}

/* ---------- numbers and operators ------------------------------------------------ */

/* A decimal int64: an optional '-', then one or more digits, nothing else.
 * 0 and *v set, or -1 (not a number, or out of range). */
static int parse_int64(const char *s, size_t n, long long *v)
{
    /* TODO 2: an optional '-', then one or more digits and nothing else,
     * within [INT64_MIN, INT64_MAX].  Detect overflow BEFORE it happens
     * (signed overflow is undefined behaviour in C, and UBSan is
     * watching): INT64_MIN has no positive twin, so mind that edge.
     * strtoll() is not the tool: it skips blanks, takes '+', and a number
     * followed by junk looks fine to it. */
    (void)s;
    (void)n;
    (void)v;
    todo("TODO 2: parse_int64() in calc.c");
}

enum calc_status calc_parse(const char *p, size_t n, long long *x,
                            const char **op, size_t *oplen, long long *y)
{
    /* TODO 3a: split "X OP Y" into three non-empty tokens separated by
     * single spaces, and parse X and Y; anything else is CALC_MALFORMED.
     * The operator token is only located here (it may be "x", "++" or
     * "~": other labs give it meanings), never judged: checking X and Y
     * first is what makes "3 before 2" true.  Look at the bytes where
     * they are; do not copy or NUL-terminate them. */
    (void)p;
    (void)n;
    (void)x;
    (void)op;
    (void)oplen;
    (void)y;
    (void)parse_int64;
    todo("TODO 3: calc_parse() in calc.c");
}

enum calc_status calc_apply(long long x, char op, long long y, long long *result)
{
    /* TODO 3b: apply one of + - * / % with the statuses of calc.h in
     * their order: unknown operator (2), then division by zero (1), then
     * overflow (4).  Overflow includes INT64_MIN / -1; INT64_MIN % -1 is 0
     * (but the CPU traps on it if you just compute it).  / and % truncate
     * toward zero, as C's do.  GCC's __builtin_add_overflow and friends
     * help.  Nothing here may trap or be undefined. */
    (void)x;
    (void)op;
    (void)y;
    (void)result;
    todo("TODO 3: calc_apply() in calc.c");
}

enum calc_status calc_eval(const char *p, size_t n, long long *result)
{
    long long x, y;
    const char *op;
    size_t oplen;
    enum calc_status st = calc_parse(p, n, &x, &op, &oplen, &y);
    if (st != CALC_OK)
        return st;
    if (oplen != 1)
        return CALC_BAD_OP;
    return calc_apply(x, op[0], y, result);
}

size_t calc_format(enum calc_status st, long long result, char *out, size_t cap)
{
    char body[32];
    int bn = snprintf(body, sizeof body, "%d %lld", (int)st, st == CALC_OK ? result : 0);
    int fn = snprintf(out, cap, "%d@%s@", bn, body);
    return fn < 0 ? 0 : (size_t)fn < cap ? (size_t)fn : cap - 1;
}

size_t calc_reply(const char *payload, size_t n, char *out, size_t cap)
{
    long long result = 0;
    enum calc_status st = calc_eval(payload, n, &result);
    return calc_format(st, result, out, cap);
}
