/*
 * calc.c - the calculator protocol (calc.h): frames and arithmetic.
 *
 * Two rules run through this file.  Nothing is trusted: a length, a
 * number, an operator each arrive as bytes from a stranger, and each is
 * checked before it is used (a LEN of 9999 must not make us wait for
 * 9999 bytes, a 30-digit number must not wrap around).  And nothing is
 * copied: the parser looks at the bytes where they lie in the input
 * buffer, and a frame that is not complete yet is simply left there.
 */
#define _POSIX_C_SOURCE 200809L

#include "calc.h"

#include <stdint.h>
#include <stdio.h>

/* ---------- frames ------------------------------------------------------------ */

ssize_t frame_next(const char *data, size_t n, const char **payload, size_t *len)
{
    size_t digits = 0, plen = 0;
    for (;;) {
        if (digits == n)
            return 0; /* only digits so far: a frame may still come */
        char ch = data[digits];
        if (ch == '@')
            break;
        if (ch < '0' || ch > '9' || digits == FRAME_MAX_DIGITS)
            return -1; /* not a digit, or a 5th digit: no need to wait */
        plen = plen * 10 + (size_t)(ch - '0');
        digits++;
    }
    if (digits == 0 || plen > FRAME_MAX_PAYLOAD)
        return -1;
    size_t end = digits + 1 + plen; /* where the closing '@' must be */
    if (n <= end)
        return 0;
    if (data[end] != '@')
        return -1;
    *payload = data + digits + 1;
    *len = plen;
    return (ssize_t)(end + 1);
}

/* ---------- numbers and operators ------------------------------------------------ */

/* A decimal int64: an optional '-', then one or more digits, nothing else.
 * 0 and *v set, or -1 (not a number, or out of range). */
static int parse_int64(const char *s, size_t n, long long *v)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && s[i] == '-') {
        neg = 1;
        i++;
    }
    if (i == n)
        return -1; /* empty, or "-" alone */
    /* Accumulate the magnitude as unsigned: -INT64_MIN does not fit in
     * int64, but it fits in uint64. */
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t m = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (m > (limit - d) / 10)
            return -1; /* m * 10 + d > limit */
        m = m * 10 + d;
    }
    *v = neg ? (long long)(0 - m) : (long long)m;
    if (neg && m == (uint64_t)INT64_MAX + 1)
        *v = INT64_MIN; /* (the cast above would be implementation-defined) */
    return 0;
}

enum calc_status calc_parse(const char *p, size_t n, long long *x,
                            const char **op, size_t *oplen, long long *y)
{
    /* Three tokens separated by single spaces: find the two spaces. */
    size_t sp1 = 0;
    while (sp1 < n && p[sp1] != ' ')
        sp1++;
    size_t sp2 = sp1 + 1;
    while (sp2 < n && p[sp2] != ' ')
        sp2++;
    if (sp1 >= n || sp2 >= n)
        return CALC_MALFORMED; /* fewer than three tokens */
    *op = p + sp1 + 1;
    *oplen = sp2 - sp1 - 1;
    /* A third space lands inside Y, which then is not a number. */
    if (*oplen == 0 || parse_int64(p, sp1, x) == -1 ||
        parse_int64(p + sp2 + 1, n - sp2 - 1, y) == -1)
        return CALC_MALFORMED;
    return CALC_OK;
}

enum calc_status calc_apply(long long x, char op, long long y, long long *result)
{
    switch (op) {
    case '+':
        return __builtin_add_overflow(x, y, result) ? CALC_OVERFLOW : CALC_OK;
    case '-':
        return __builtin_sub_overflow(x, y, result) ? CALC_OVERFLOW : CALC_OK;
    case '*':
        return __builtin_mul_overflow(x, y, result) ? CALC_OVERFLOW : CALC_OK;
    case '/':
        if (y == 0)
            return CALC_DIV_ZERO;
        if (x == INT64_MIN && y == -1)
            return CALC_OVERFLOW; /* 2^63 does not fit; in C it traps */
        *result = x / y;
        return CALC_OK;
    case '%':
        if (y == 0)
            return CALC_DIV_ZERO;
        /* INT64_MIN % -1 is 0 in arithmetic, but x86's idiv traps on it. */
        *result = y == -1 ? 0 : x % y;
        return CALC_OK;
    default:
        return CALC_BAD_OP;
    }
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
