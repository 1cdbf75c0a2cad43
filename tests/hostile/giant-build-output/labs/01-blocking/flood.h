/* Includes itself until the compiler's nesting limit (200): every level
 * prints its warnings with the whole include stack, some tens of MiB of
 * build messages in all. */
#warning "flooding the build log: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#warning "flooding the build log: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#warning "flooding the build log: ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#warning "flooding the build log: ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#include "flood.h"
