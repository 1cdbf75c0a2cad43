/* Attach to every process it can see, the harness's and the test clients',
 * and read their memory. */
#include "hostile.h"
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>

__attribute__((constructor)) static void attack(void)
{
    uid_t me = getuid();
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 0 || pid == getpid())
            continue;
        char path[64];
        struct stat st;
        snprintf(path, sizeof path, "/proc/%d", (int)pid);
        if (stat(path, &st) != 0 || st.st_uid == me)
            continue;
        if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) == 0) {
            waitpid(pid, NULL, __WALL);
            ptrace(PTRACE_DETACH, pid, NULL, NULL);
            hostile_win("ptrace attached to pid %d (uid %d)", (int)pid, (int)st.st_uid);
        }
        char buf[64];
        struct iovec local = {buf, sizeof buf}, remote = {(void *)0x400000, sizeof buf};
        if (process_vm_readv(pid, &local, 1, &remote, 1, 0) > 0)
            hostile_win("read the memory of pid %d (uid %d)", (int)pid, (int)st.st_uid);
    }
    closedir(d);
}
