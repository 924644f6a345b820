/*
 * sg_run_screen: what a template run leaves behind (its output, its log
 * lines, its error message) is screened before it is stored or shown.
 * Stored data outlives the call, so card numbers, IBANs, SSNs and secrets
 * are masked there even where a call would only alert, unless the
 * policy allows the class for the run's role.
 */
#ifndef SG_RUN_SCREEN_H
#define SG_RUN_SCREEN_H

#include "catalog/sg_snapshot.h"
#include "dlp/sg_dlp_action.h"
#include "runs/sg_run_doc.h"

/*
 * Rewrites d->output, d->logs and d->message in place.  0, or -1 when the
 * screen could not run: then all three are withheld (fail closed).
 */
int sg_run_screen(struct sg_run_doc *d, const struct sg_snapshot *snap, const char *role,
                  enum sg_mode mode, const struct sg_dlp_token_key *key);

#endif
