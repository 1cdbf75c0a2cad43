/* Read the grader's processes through /proc: their environment, command
 * lines, open files and memory maps, and the files they hold open. */
#include "hostile.h"

__attribute__((constructor)) static void attack(void)
{
    hostile_canary_in("/proc/self/environ");
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[600];
        const char *files[] = {"environ", "cmdline", "maps"};
        for (size_t i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "/proc/%s/%s", e->d_name, files[i]);
            hostile_canary_in(path);
        }
        /* What it has open: the hidden suite, a log ... */
        for (int fd = 0; fd < 64; fd++) {
            snprintf(path, sizeof path, "/proc/%s/fd/%d", e->d_name, fd);
            hostile_canary_in(path);
        }
        snprintf(path, sizeof path, "/proc/%s/root/tmp", e->d_name);
        hostile_walk(path, 4);
        snprintf(path, sizeof path, "/proc/%s/cwd", e->d_name);
        hostile_walk(path, 3);
    }
    closedir(d);
}
