/*
 * mcast.c - the announcement's format and small parsers (see mcast.h).
 */
#define _POSIX_C_SOURCE 200809L

#include "mcast.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <time.h>

int endpoint_parse(const char *s, struct sockaddr_in *sa)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || colon - s >= INET_ADDRSTRLEN)
        return -1;
    char host[INET_ADDRSTRLEN];
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';

    /* Digits only, no sign, no spaces, at most 5 of them: strtol would
     * accept " +80". */
    const char *p = colon + 1;
    long port = 0;
    int digits = 0;
    for (; *p; p++, digits++) {
        if (!isdigit((unsigned char)*p) || digits == 5)
            return -1;
        port = port * 10 + (*p - '0');
    }
    if (digits == 0 || port < 1 || port > 65535)
        return -1;

    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return -1;
    return 0;
}

int announcement_parse(const char *data, size_t n, struct sockaddr_in *sa)
{
    const size_t plen = sizeof ANNOUNCE_PREFIX - 1;
    if (n <= plen || n >= ANNOUNCE_MAX || memcmp(data, ANNOUNCE_PREFIX, plen) != 0)
        return -1;
    /* A datagram is bytes: copy the rest into a string of our own before
     * any string function looks at it (a NUL inside makes it invalid). */
    char rest[ANNOUNCE_MAX];
    memcpy(rest, data + plen, n - plen);
    rest[n - plen] = '\0';
    if (strlen(rest) != n - plen)
        return -1;
    return endpoint_parse(rest, sa);
}

long long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
