/* Stop or kill the harness (bats, the test clients, the sandbox's reaper):
 * a test run that dies cannot fail anyone. */
#include "hostile.h"
#include <signal.h>

__attribute__((constructor)) static void attack(void)
{
    uid_t me = getuid();
    const int sigs[] = {SIGSTOP, SIGKILL};
    for (size_t s = 0; s < 2; s++) {
        DIR *d = opendir("/proc");
        if (!d)
            return;
        struct dirent *e;
        while ((e = readdir(d))) {
            pid_t pid = (pid_t)atoi(e->d_name);
            char path[64];
            struct stat st;
            snprintf(path, sizeof path, "/proc/%d", (int)pid);
            if (pid <= 1 || pid == getpid() || stat(path, &st) != 0 || st.st_uid == me)
                continue;
            if (kill(pid, sigs[s]) == 0) {
                kill(pid, SIGCONT);
                hostile_win("signal %d reached pid %d (uid %d)", sigs[s], (int)pid, (int)st.st_uid);
            }
        }
        closedir(d);
    }
    if (kill(1, SIGKILL) == 0 || kill(getppid(), SIGKILL) == 0)
        hostile_win("killed the reaper or the parent");
}
