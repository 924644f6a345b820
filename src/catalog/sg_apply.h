/*
 * sg_apply: the all-or-nothing update of stored definitions.  Files are
 * read and checked together with what is already live (a policy must still
 * compile against the new connectors, and the other way round); only when
 * nothing is wrong are the changed documents stored, in one transaction.
 */
#ifndef SG_APPLY_H
#define SG_APPLY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sg_diag.h"
#include "store/sg_store.h"

/* Largest definition file accepted. */
#define SG_APPLY_MAX_FILE (1024 * 1024)

/*
 * Applies every *.yaml / *.yml file under each path (a file or a directory,
 * searched recursively; a top-level sandgate.yaml is server config and is
 * skipped).  Errors go to `d`, and then nothing is stored.  On success,
 * `report` (an array) receives one {"kind","name","version","result"} per
 * document, result being "created", "updated" or "unchanged".  With
 * `dry_run` nothing is stored.
 */
int sg_apply(struct sg_store *s, const char *const *paths, size_t n, uint64_t sim_seed,
    bool dry_run, struct sg_diags *d, json_t *report);

#endif
