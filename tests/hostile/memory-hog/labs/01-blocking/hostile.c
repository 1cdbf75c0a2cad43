/* Take all the memory there is, 64 MiB at a time, touching every page. */
#include "hostile.h"
#include <sys/mman.h>

__attribute__((constructor)) static void attack(void)
{
    size_t chunk = 64u << 20, got = 0;
    while (got < (16ul << 30)) {
        char *p = malloc(chunk);
        if (!p) {
            p = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED)
                break;
        }
        memset(p, 1, chunk);
        got += chunk;
    }
    if (got >= (2ul << 30))
        hostile_win("allocated and touched %zu MiB", got >> 20);
}
