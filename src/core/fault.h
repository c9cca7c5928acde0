/* Allocation-failure injection, compiled only into test builds
 * (-DPV_FAULT_INJECTION, `make fault`): the environment says which
 * allocations fail, so tests can show that a failed allocation costs one
 * connection, not the process. In other builds every check is a constant
 * 0 and no trace of the switch is left in the binary.
 *
 *   PV_FAULT_BUF_NTH=N      the Nth buffer allocation fails (1-based)
 *   PV_FAULT_ALLOC_AFTER=N  every allocation (buffer, request state,
 *                           connection) after the first N fails */
#ifndef PV_FAULT_H
#define PV_FAULT_H

enum { PV_FAULT_BUF = 1, PV_FAULT_OTHER = 2 };

#ifdef PV_FAULT_INJECTION
/* Whether this allocation of kind PV_FAULT_* is to fail. */
int pv_fault_alloc(int kind);
#else
#define pv_fault_alloc(kind) 0
#endif

#endif
