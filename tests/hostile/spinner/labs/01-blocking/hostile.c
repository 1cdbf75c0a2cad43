/* Burn CPU forever, never listening. */
#include "hostile.h"

__attribute__((constructor)) static void attack(void)
{
    volatile unsigned long n = 0;
    for (;;)
        n++;
}
