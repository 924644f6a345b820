/*
 * sg_gcra: the generic cell rate algorithm on one 64-bit cell holding the
 * theoretical arrival time (TAT), in nanoseconds on the monotonic clock.
 */
#ifndef SG_GCRA_H
#define SG_GCRA_H

#include <stdbool.h>
#include <stdint.h>

struct sg_gcra_limit {
	uint64_t emission_ns; /* T = period / rate; > 0 */
	uint32_t burst;       /* >= 1; tau = T * (burst - 1) */
};

struct sg_gcra_result {
	bool allowed;
	uint32_t limit;          /* the burst: the most that may be taken at once */
	uint32_t remaining;      /* whole units still available after this decision */
	uint64_t retry_after_ns; /* when denied: wait this long, then the same request fits */
	uint64_t reset_ns;       /* time until the bucket is completely full again */
};

/*
 * Pure decision: given the stored TAT, returns the result and, when allowed,
 * the new TAT to store in *new_tat.  A cost of 0 only peeks.  A cost larger
 * than the burst can never be admitted: it is denied with retry_after_ns
 * UINT64_MAX, since no wait would help.  `now` may be less than a previously
 * seen now (clock edges): the cell never moves backwards.
 */
struct sg_gcra_result sg_gcra_decide(const struct sg_gcra_limit *l, uint64_t stored_tat,
                                     uint64_t now, uint32_t cost, uint64_t *new_tat);

/*
 * As sg_gcra_decide, but the last `reserve_ns` of the bucket is kept for
 * others: the call is admitted only if it leaves at least that much room.
 * Lower workload classes use it, so they can never drain what critical work
 * may need.  The retry_after_ns of a denial includes the reserve.
 */
struct sg_gcra_result sg_gcra_decide_reserved(const struct sg_gcra_limit *l, uint64_t stored_tat,
                                              uint64_t now, uint32_t cost, uint64_t reserve_ns,
                                              uint64_t *new_tat);

/* Atomic update of a shared cell with compare-and-swap. */
struct sg_gcra_result sg_gcra_take(const struct sg_gcra_limit *l, _Atomic uint64_t *cell,
                                   uint64_t now, uint32_t cost);
struct sg_gcra_result sg_gcra_take_reserved(const struct sg_gcra_limit *l, _Atomic uint64_t *cell,
                                            uint64_t now, uint32_t cost, uint64_t reserve_ns);

/*
 * Gives back a take of `cost` that must not count (a later limit refused
 * the call).  Exact: the bucket ends as if the take had never happened,
 * whatever others took in between.
 */
void sg_gcra_refund(const struct sg_gcra_limit *l, _Atomic uint64_t *cell, uint32_t cost);

/*
 * Adds `cost` the call turned out to have (the upstream reported more
 * usage).  Never refused: the work is done; the bucket goes into debt and
 * later calls wait it out.
 */
void sg_gcra_charge(const struct sg_gcra_limit *l, _Atomic uint64_t *cell, uint64_t now,
                    uint32_t cost);

#endif
