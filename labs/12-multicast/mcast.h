/*
 * mcast.h - what the announcing server and discover share: the
 * announcement's format, the defaults, and small parsers.
 */
#ifndef NETLABS_MCAST_H
#define NETLABS_MCAST_H

#include <netinet/in.h>
#include <stddef.h>

/* The default group and port discover listens on.  239.0.0.0/8 is the
 * administratively scoped range (RFC 2365): it never leaves the
 * organisation, the right place for a private service's discovery. */
#define DEFAULT_GROUP "239.255.95.27"
#define DEFAULT_GROUP_PORT 9527

/* A server announces "netlabs ADDR:PORT": the address and port its echo
 * socket is bound to. */
#define ANNOUNCE_PREFIX "netlabs "
#define ANNOUNCE_MAX 64 /* bytes: the longest announcement is 30 */
#define ANNOUNCE_PERIOD_MS 1000

/* Parse "A.B.C.D:PORT" (a numeric IPv4 address, a port 1-65535, nothing
 * else) into *sa.  0, or -1 if s is anything else. */
int endpoint_parse(const char *s, struct sockaddr_in *sa);

/* Parse an announcement, data[0..n) (not NUL-terminated): exactly
 * ANNOUNCE_PREFIX and an endpoint.  0 with *sa set, or -1. */
int announcement_parse(const char *data, size_t n, struct sockaddr_in *sa);

/* Milliseconds on the monotonic clock (never jumps, unlike the time of
 * day): for deadlines and periods. */
long long monotonic_ms(void);

#endif
