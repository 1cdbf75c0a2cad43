/* Reach the host through Unix-domain sockets: the one the check listens on
 * (by path and in the abstract namespace), and any socket under /run, /tmp
 * and /var/run (a docker or database socket on a real grading host). */
#include "hostile.h"
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static int try_connect(const char *path, int abstract)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len + 2 > sizeof a.sun_path)
        return -1;
    memcpy(a.sun_path + (abstract ? 1 : 0), path, len);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int r = connect(fd, (struct sockaddr *)&a,
                    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (abstract ? 1 : 0)));
    if (r == 0 && write(fd, "hello from the sandbox\n", 23) < 0) { /* still connected */ }
    close(fd);
    return r;
}

static void scan(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISSOCK(st.st_mode) && try_connect(path, 0) == 0)
            hostile_win("connected to the host socket %s", path);
        if (S_ISDIR(st.st_mode) && depth > 0)
            scan(path, depth - 1);
    }
    closedir(d);
}

__attribute__((constructor)) static void attack(void)
{
    if (try_connect("@SOCK@", 0) == 0)
        hostile_win("connected to the host socket @SOCK@");
    if (try_connect("@ABSTRACT@", 1) == 0)
        hostile_win("connected to the host's abstract socket @ABSTRACT@");
    scan("/run", 3);
    scan("/var/run", 3);
    scan("/tmp", 3);
}
