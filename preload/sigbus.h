/* Keeping a truncated state file from killing the process.
 *
 * Any process of a claim can truncate the claim's state file, and touching a mapping past the end
 * of its file raises SIGBUS, even for pages touched before (the kernel unmaps them). Checking the
 * file's size before each use would cost a system call per allocation (several hundred ns), so
 * instead a SIGBUS handler covers the mappings registered here: a fault inside one replaces the
 * whole mapping with zeroed private memory (the faulting access then completes) and sets the
 * mapping's `damaged` flag, which the next charge sees (it also sees the lost magic) and fails
 * the process closed. A SIGBUS anywhere else goes to the handler that was installed before ours,
 * or gets the default action. The handler is installed when the first state file is mapped; a
 * program that installs its own SIGBUS handler later (and does not chain to ours) takes over. */
#ifndef GPUQ_SIGBUS_H
#define GPUQ_SIGBUS_H

#include <stddef.h>

/* 0, or -1 (errno set) when there is no room or the handler cannot be installed. */
int gpuq_sigbus_guard(void *start, size_t size, int *damaged);

void gpuq_sigbus_unguard(void *start);

#endif
