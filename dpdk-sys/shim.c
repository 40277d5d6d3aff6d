#include <rte_errno.h>

int dpdk_sys_errno(void) { return rte_errno; }
