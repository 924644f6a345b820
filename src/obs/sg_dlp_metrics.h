/*
 * sg_dlp_metrics: sandgate_dlp_events_total{class,action,direction,connector},
 * what the screen found and did, for /metrics.
 *
 * Counters live in one process-wide open-addressed table that is never
 * freed, so they survive reloads.  Classes come from policy and
 * connectors from the catalog, both bounded by what an admin applied, but
 * the label set is capped anyway: past SG_DLP_METRICS_MAX series, every
 * new one counts in a single series whose labels are all "other".
 * Counting is lock-free once a series exists; making one takes a lock.
 */
#ifndef SG_DLP_METRICS_H
#define SG_DLP_METRICS_H

#include <stdint.h>
#include <stdio.h>

#define SG_DLP_METRICS_MAX 512

/* Counts one event.  Any argument may be NULL (counted as ""). */
void sg_dlp_metrics_count(const char *data_class, const char *action, const char *direction,
                          const char *connector);

/* Writes the family in Prometheus text format. */
void sg_dlp_metrics_render(FILE *f);

/* The count of one series, 0 when it does not exist ("other" labels: the overflow). */
uint64_t sg_dlp_metrics_get(const char *data_class, const char *action, const char *direction,
                            const char *connector);

#endif
