/* Leave a daemon behind: fork, leave the process group and the session,
 * fork again, and live on after the server is stopped. */
#include "hostile.h"
#include <signal.h>

__attribute__((constructor)) static void attack(void)
{
    if (fork() != 0)
        return; /* the server itself goes on (and fails, like the starter) */
    setsid();
    if (fork() != 0)
        _exit(0);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    for (int fd = 0; fd < 64; fd++)
        close(fd);
    for (;;)
        pause();
}
