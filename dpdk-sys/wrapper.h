/* The DPDK headers the project binds. Keep this list narrow: every header pulls in
 * static inline functions that bindgen wraps into C, and each one costs build time. */
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_dev.h>
#include <rte_bus_vdev.h>
#include <rte_thread.h>

/* rte_errno is a per-lcore TLS variable behind a macro; Rust cannot name it. */
int dpdk_sys_errno(void);
