/* Leave files behind wherever the server can write: the shared temporary
 * directories, its home, its working directory, next to its binary, the
 * grader's checkout. */
#include "hostile.h"

__attribute__((constructor)) static void attack(void)
{
    char self[4096] = "", dir[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0)
        self[n] = 0;
    snprintf(dir, sizeof dir, "%s", self);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    const char *home = getenv("HOME");
    const char *dirs[] = {"/tmp", "/var/tmp", "/dev/shm", home ? home : "/tmp", ".", dir, "@ROOT@"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/netlabs-hostile-drop.%d.%d", dirs[i], (int)getuid(), (int)getpid());
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd >= 0) {
            if (write(fd, "left behind\n", 12) < 0) { /* nothing to do */ }
            close(fd);
        }
        snprintf(path, sizeof path, "%s/netlabs-hostile-drop.%d.d%d", dirs[i], (int)getuid(), (int)getpid());
        mkdir(path, 01777);
    }
}
