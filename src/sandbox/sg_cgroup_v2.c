/*
 * cgroup v2: one unified hierarchy.  A controller's files appear in a group
 * only once its parent lists the controller in cgroup.subtree_control, so
 * the caller enables controllers top-down before writing ceilings.
 */
#include "sandbox/sg_cgroup.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/*
 * Writes only the controllers not yet enabled: a group delegated with its
 * controllers already on (systemd's Delegate=) then needs no write at all,
 * which matters because the kernel refuses to enable controllers for the
 * children of a non-root group that holds processes itself.  All missing
 * names go in one write; a caller that needs to know which name failed
 * asks again one at a time.
 */
int
sg_cgroup_v2_enable(const char *dir, const char *const *names, size_t n, char *why, size_t whylen)
{
	char have[512];
	char want[256] = "";
	size_t len = 0;
	if (sg_cgroup_read(dir, "cgroup.subtree_control", have, sizeof(have)) == -1)
		have[0] = '\0'; /* unreadable: the write below fails and says why */
	for (size_t i = 0; i < n && len < sizeof(want); i++)
		if (!sg_cgroup_listed(have, names[i]))
			len += (size_t)snprintf(want + len, sizeof(want) - len, "%s+%s",
			                        len ? " " : "", names[i]);
	if (len == 0)
		return 0;
	return sg_cgroup_write(dir, "cgroup.subtree_control", want, why, whylen);
}

static int
put_u64(const char *dir, const char *file, uint64_t v, char *why, size_t whylen)
{
	char value[32];
	snprintf(value, sizeof(value), "%" PRIu64, v);
	return sg_cgroup_write(dir, file, value, why, whylen);
}

static int
apply_cpu(const char *dir, const struct sg_cgroup_ceilings *ce, char *why, size_t whylen)
{
	char value[48];
	snprintf(value, sizeof(value), "%" PRIu64 " %" PRIu64, ce->cpu_quota_us, ce->cpu_period_us);
	return sg_cgroup_write(dir, "cpu.max", value, why, whylen);
}

/* memory.swap.max exists only with swap accounting; without it there is no swap to cap. */
static int
apply_memory(const char *dir, const struct sg_cgroup_ceilings *ce, char *why, size_t whylen)
{
	if (put_u64(dir, "memory.max", ce->memory_bytes, why, whylen) == -1)
		return -1;
	if (sg_cgroup_has(dir, "memory.swap.max"))
		return sg_cgroup_write(dir, "memory.swap.max", "0", why, whylen);
	return 0;
}

static int
apply_io(const char *dir, const struct sg_cgroup_ceilings *ce, char *why, size_t whylen)
{
	char value[128];
	int n = snprintf(value, sizeof(value), "%" PRIu32 ":%" PRIu32, ce->io_major, ce->io_minor);
	if (ce->io_read_bps != 0)
		n += snprintf(value + n, sizeof(value) - (size_t)n, " rbps=%" PRIu64,
		              ce->io_read_bps);
	if (ce->io_write_bps != 0)
		snprintf(value + n, sizeof(value) - (size_t)n, " wbps=%" PRIu64, ce->io_write_bps);
	return sg_cgroup_write(dir, "io.max", value, why, whylen);
}

int
sg_cgroup_v2_apply(enum sg_cgroup_ctrl c, const char *dir, const struct sg_cgroup_ceilings *ce,
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
