UNIT_SRCS_bufpool_test := solutions/08-reactor/bufpool.c
