/* Run the grader's own build of the reference solution instead of ours
 * (glibc passes argc, argv and envp to constructors). */
#include "hostile.h"

__attribute__((constructor)) static void attack(int argc, char **argv, char **envp)
{
    (void)argc;
    const char *bins[] = {"@ROOT@/build/plain/solutions/01-blocking/server",
                          "build/plain/solutions/01-blocking/server",
                          "../build/plain/solutions/01-blocking/server"};
    for (size_t i = 0; i < sizeof bins / sizeof *bins; i++)
        execve(bins[i], argv, envp);
}
