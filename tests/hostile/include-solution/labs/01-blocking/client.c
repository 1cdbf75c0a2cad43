#include "@ROOT@/solutions/01-blocking/client.c"
