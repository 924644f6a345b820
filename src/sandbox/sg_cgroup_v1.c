/*
 * cgroup v1: one hierarchy per controller, each with its own file names.
 * Files are written in an order every intermediate state of which the
 * kernel accepts, so a group being reused with other ceilings never fails
 * half-way on an ordering rule.
 */
#include "sandbox/sg_cgroup.h"

#include <inttypes.h>
#include <stdio.h>

static int
put_u64(const char *dir, const char *file, uint64_t v, char *why, size_t whylen)
{
	char value[32];
	snprintf(value, sizeof(value), "%" PRIu64, v);
	return sg_cgroup_write(dir, file, value, why, whylen);
}

/*
 * The kernel checks quota against the period it already has, so the period
 * goes first; a quota of -1 first would also do, but is one write more.
 */
static int
apply_cpu(const char *dir, const struct sg_cgroup_ceilings *ce, char *why, size_t whylen)
{
	if (put_u64(dir, "cpu.cfs_period_us", ce->cpu_period_us, why, whylen) == -1)
		return -1;
	return put_u64(dir, "cpu.cfs_quota_us", ce->cpu_quota_us, why, whylen);
}

/*
 * memory.memsw.limit_in_bytes (memory plus swap) must never be below
 * memory.limit_in_bytes.  Lifting memsw first, then setting the limit, then
 * bringing memsw down to the same value holds that rule whatever the group
 * had before, and leaves no room for swap.  Without swap accounting the
 * memsw file is absent and swap cannot be capped here.
 */
static int
apply_memory(const char *dir, const struct sg_cgroup_ceilings *ce, char *why, size_t whylen)
{
	bool memsw = sg_cgroup_has(dir, "memory.memsw.limit_in_bytes");
	if (memsw && sg_cgroup_write(dir, "memory.memsw.limit_in_bytes", "-1", why, whylen) == -1)
		return -1;
	if (put_u64(dir, "memory.limit_in_bytes", ce->memory_bytes, why, whylen) == -1)
		return -1;
	if (memsw &&
	    put_u64(dir, "memory.memsw.limit_in_bytes", ce->memory_bytes, why, whylen) == -1)
		return -1;
	return 0;
}

static int
put_device_rate(const char *dir, const char *file, const struct sg_cgroup_ceilings *ce,
                uint64_t bps, char *why, size_t whylen)
{
	char value[64];
	snprintf(value, sizeof(value), "%" PRIu32 ":%" PRIu32 " %" PRIu64, ce->io_major,
	         ce->io_minor, bps);
	return sg_cgroup_write(dir, file, value, why, whylen);
}

static int
apply_io(const char *dir, const struct sg_cgroup_ceilings *ce, char *why, size_t whylen)
{
	if (ce->io_read_bps != 0 && put_device_rate(dir, "blkio.throttle.read_bps_device", ce,
	                                            ce->io_read_bps, why, whylen) == -1)
		return -1;
	if (ce->io_write_bps != 0 && put_device_rate(dir, "blkio.throttle.write_bps_device", ce,
	                                             ce->io_write_bps, why, whylen) == -1)
		return -1;
	return 0;
}

int
sg_cgroup_v1_apply(enum sg_cgroup_ctrl c, const char *dir, const struct sg_cgroup_ceilings *ce,
                   char *why, size_t whylen)
{
	switch (c) {
	case SG_CGROUP_CPU:
		return apply_cpu(dir, ce, why, whylen);
	case SG_CGROUP_MEMORY:
		return apply_memory(dir, ce, why, whylen);
	case SG_CGROUP_PIDS:
		return put_u64(dir, "pids.max", ce->pids_max, why, whylen);
	case SG_CGROUP_IO:
		return apply_io(dir, ce, why, whylen);
	case SG_CGROUP_NCTRL:
		break;
	}
	snprintf(why, whylen, "no such controller"); /* callers loop below SG_CGROUP_NCTRL */
	return -1;
}
