/*
 * route's state, shared by its two halves: step_route.c (the simulator and
 * the choice) and step_route_live.c (a real upstream).
 */
#ifndef SG_STEP_ROUTE_H
#define SG_STEP_ROUTE_H

#include <stdint.h>

#include "path/sg_req.h"

struct live;

struct route_ctx {
	uint64_t start_ns; /* when the call reached route; its deadline runs from here */
	struct live *live; /* a real upstream's attempts, or NULL */
};

/* A call to the environment's real upstream; suspends until it has an answer. */
enum sg_step_rc sg_route_live(struct sg_req *r, struct route_ctx *rc);
/* Ends what is in flight and frees the attempts' state (the slot's release). */
void sg_route_live_release(struct sg_req *r, struct route_ctx *rc);

#endif
