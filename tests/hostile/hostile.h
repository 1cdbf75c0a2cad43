/*
 * hostile.h - what the hostile submissions share.  tests/checks/hostile
 * copies it into every one of them, next to the starter's files; each
 * hostile.c runs its attack from a constructor, before the starter's main().
 *
 * An attack that works says so as the server's last words on stderr
 * ("HOSTILE-WIN: ...") and exits: the grading report quotes a server's last
 * words, so the check sees it there.  An attack that fails says nothing and
 * lets the starter run (and fail every test, as it does untouched).
 */
#ifndef HOSTILE_H
#define HOSTILE_H

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HOSTILE_UNUSED __attribute__((unused))

static HOSTILE_UNUSED void hostile_win(const char *fmt, ...)
{
    char msg[180];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\'')
            *p = ' ';
    fprintf(stderr, "HOSTILE-WIN: %s\n", msg);
    _exit(1);
}

/* The check plants "NETLABS-CANARY-<random>" in what must stay secret. */
static HOSTILE_UNUSED void hostile_canary_in(const char *path)
{
    static char buf[1 << 20];
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        if (n > 0) {
            buf[n] = 0;
            /* The canary itself, not a mention of it: 16 hex digits follow. */
            for (char *p = buf; (p = memmem(p, (size_t)(buf + n - p), "NETLABS-CANARY-", 15)); p++) {
                size_t k = 0;
                while (k < 16 && p + 15 + k < buf + n && strchr("0123456789abcdef", p[15 + k]))
                    k++;
                if (k == 16)
                    hostile_win("read %s: %.40s", path, p);
            }
        }
    }
    close(fd);
}

/* Every readable file below DIR, DEPTH levels down at most. */
static HOSTILE_UNUSED void hostile_walk(const char *dir, int depth)
{
    static int budget = 50000;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && budget-- > 0) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", strcmp(dir, "/") ? dir : "", e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth > 0)
            hostile_walk(path, depth - 1);
        else if (S_ISREG(st.st_mode))
            hostile_canary_in(path);
    }
    closedir(d);
}

#endif
