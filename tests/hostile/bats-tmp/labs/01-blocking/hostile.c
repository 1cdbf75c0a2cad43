/* bats keeps a preprocessed copy of the running suite (the hidden one too)
 * in its run directory under /tmp, and tells its children where: read it
 * through the environment, or by guessing the names in every bats run
 * directory /tmp lists. */
#include "hostile.h"

__attribute__((constructor)) static void attack(void)
{
    const char *vars[] = {"BATS_TEST_SOURCE", "BATS_TEST_FILENAME"};
    for (size_t i = 0; i < 2; i++) {
        const char *p = getenv(vars[i]);
        if (p)
            hostile_canary_in(p);
    }
    const char *p = getenv("BATS_RUN_TMPDIR");
    if (p)
        hostile_walk(p, 3);
    const char *tmps[] = {"/tmp", "/var/tmp"};
    for (size_t t = 0; t < 2; t++) {
        DIR *d = opendir(tmps[t]);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strncmp(e->d_name, "bats-run-", 9))
                continue;
            char dir[512], path[600];
            snprintf(dir, sizeof dir, "%s/%s", tmps[t], e->d_name);
            hostile_walk(dir, 3);
            /* Not listable but perhaps traversable: bats.<pid>.src */
            for (int pid = 1; pid < 40000; pid++) {
                snprintf(path, sizeof path, "%s/bats.%d.src", dir, pid);
                hostile_canary_in(path);
            }
        }
        closedir(d);
    }
}
