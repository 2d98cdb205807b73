/* One open-addressed table keyed by host tid, for the fast paths' per-task
 * rows (fastpath.c's staging slots, identity.c's ids).  Each entry starts
 * with `int tid`: 0 never used, -1 a removed entry (a tombstone), so that a
 * lookup goes on past it.  Not part of the cffi interface. */
#ifndef SENTRY_TIDTABLE_H
#define SENTRY_TIDTABLE_H
#include <stddef.h>

#define TID_AT(base, stride, i) (*(int *)((char *)(base) + (size_t)(i) * (stride)))

/* Index of tid's entry, or -1. */
static inline int tid_find(void *base, size_t stride, unsigned size, int tid)
{
	unsigned h = (unsigned)tid % size;
	for (unsigned n = 0; n < size; n++, h = (h + 1) % size) {
		if (TID_AT(base, stride, h) == tid) return (int)h;
		if (TID_AT(base, stride, h) == 0) return -1;
	}
	return -1;
}

/* Index of a free entry for tid (it is not in the table), now claimed for
 * it; -1 when the table is full. */
static inline int tid_claim(void *base, size_t stride, unsigned size, int tid)
{
	unsigned h = (unsigned)tid % size;
	for (unsigned n = 0; n < size; n++, h = (h + 1) % size) {
		if (TID_AT(base, stride, h) <= 0) {
			TID_AT(base, stride, h) = tid;
			return (int)h;
		}
	}
	return -1;
}
#endif
