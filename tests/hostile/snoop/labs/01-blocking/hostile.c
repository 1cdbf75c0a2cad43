/* Look everywhere a grading machine keeps things (other submissions,
 * other grading runs' build trees, the instructor's home, the checkout) for
 * the canary the check planted in them. */
#include "hostile.h"

__attribute__((constructor)) static void attack(void)
{
    const char *dirs[] = {"/tmp", "/var/tmp", "/dev/shm", "/run", "/home", "/root",
                          "/srv", "/mnt", "/opt", "/work", "@ROOT@"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
        hostile_walk(dirs[i], 6);
}
