/* Allocation-failure injection, compiled only into test builds
 * (-DPV_FAULT_INJECTION, `make fault`): the environment says which
 * allocations fail, so tests can show that a failed allocation costs one
 * connection, not the process. In other builds every check is a constant
 * 0 and no trace of the switch is left in the binary.
 *
 *   PV_FAULT_BUF_NTH=N      the Nth buffer allocation fails (1-based)
 *   PV_FAULT_ALLOC_AFTER=N  every allocation (buffer, request state,
 *                           connection) after the first N fails
 *   PV_FAULT_RTT_MS=A=MS,.. doctor --residency's round trips to address A
 *                           (text as in $upstream_addr) take MS longer */
#ifndef PV_FAULT_H
#define PV_FAULT_H

enum { PV_FAULT_BUF = 1, PV_FAULT_OTHER = 2 };

#ifdef PV_FAULT_INJECTION
/* Whether this allocation of kind PV_FAULT_* is to fail. */
int pv_fault_alloc(int kind);
/* Milliseconds `doctor --residency` adds to the round trips it measures
 * to addr ("127.0.0.1:8080"): PV_FAULT_RTT_MS="ADDR=MS[,ADDR=MS...]", a
 * delay the tests inject without root (tc netem needs it). */
double pv_fault_rtt_ms(const char *addr);
#else
#define pv_fault_alloc(kind) 0
#define pv_fault_rtt_ms(addr) 0.0
#endif

#endif
