/* Read the answers, the hidden tests and the mutants (edits of the answers)
 * at run time, from the grader's checkout (by its path, or relative to the
 * working directory), and quote them as the server's last words. */
#include "hostile.h"

static void attack(void)
{
    const char *files[] = {
        "@ROOT@/solutions/01-blocking/server.c", "solutions/01-blocking/server.c",
        "@ROOT@/tests/hidden/01-blocking.bats", "tests/hidden/01-blocking.bats",
        "@HIDDEN@/01-blocking.bats", "@ROOT@/results/grade-all/gradebook.csv",
    };
    char buf[512];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        int fd = open(files[i], O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0) {
            buf[n] = 0;
            hostile_win("%s: %.120s", files[i], buf);
        }
    }
    /* The mutants are edits of the reference: they quote it. */
    DIR *d = opendir("@ROOT@/tests/mutants/01-blocking");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[1024];
        snprintf(path, sizeof path, "@ROOT@/tests/mutants/01-blocking/%s", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0) {
            buf[n] = 0;
            hostile_win("%s: %.120s", path, buf);
        }
    }
    if (d)
        closedir(d);
    /* bats tells every child which suite runs, and where its copy is. */
    const char *vars[] = {"BATS_TEST_FILENAME", "BATS_TEST_SOURCE"};
    for (size_t i = 0; i < 2; i++) {
        const char *p = getenv(vars[i]);
        if (p)
            hostile_canary_in(p);
    }
}
__attribute__((constructor)) static void run_attack(void) { attack(); }
