/* Fill the disk: write as much as it can wherever it can, in many files
 * (one file is capped by RLIMIT_FSIZE), ignoring SIGXFSZ.  It stops by
 * itself at 48 MiB a place, so that a failing check does not fill the
 * machine it runs on; 24 MiB anywhere is more than the check allows. */
#include "hostile.h"
#include <signal.h>

__attribute__((constructor)) static void attack(void)
{
    signal(SIGXFSZ, SIG_IGN);
    static char mib[1 << 20];
    memset(mib, 'x', sizeof mib);
    char self[4096] = "", dir[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0)
        self[n] = 0;
    snprintf(dir, sizeof dir, "%s", self);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    const char *dirs[] = {"/tmp", "/var/tmp", "/dev/shm", ".", dir};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        size_t total = 0;
        for (int f = 0; f < 48 && total < (48u << 20); f++) {
            char path[4200];
            snprintf(path, sizeof path, "%s/netlabs-hostile-drop.%d.fill.%d", dirs[i], (int)getuid(), f);
            int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (fd < 0)
                break;
            ssize_t w;
            int wrote_any = 0;
            while (total < (48u << 20) && (w = write(fd, mib, sizeof mib)) > 0) {
                total += (size_t)w;
                wrote_any = 1;
            }
            close(fd);
            if (!wrote_any)
                break; /* the filesystem is full */
        }
        if (total >= (24u << 20))
            hostile_win("wrote %zu MiB into %s", total >> 20, dirs[i]);
    }
}
