#include "runs/sg_run_screen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlp/sg_dlp_scan.h"

/* The classes whose stored copies are masked by default (DLP.md). */
static bool
kept_masked(const char *data_class)
{
	return strncmp(data_class, "financial.", 10) == 0 || strcmp(data_class, "pii.ssn") == 0 ||
	       strncmp(data_class, "secret.", 7) == 0;
}

/*
 * What a stored copy gets: nothing for other classes; for the kept-masked
 * ones a mask, or what the policy says when it allows the class outright
 * or asks for more than a mask (a token, a redaction).  A block cannot
 * take back a run that has finished, so it masks.
 */
static enum sg_dlp_action
stored_action(const struct sg_dlp_policy *p, const char *data_class, const struct sg_dlp_subject *s)
{
	if (!kept_masked(data_class))
		return SG_DLP_ALLOW;
	enum sg_dlp_action a = sg_dlp_policy_action(p, data_class, s);
	if (a == SG_DLP_ALLOW || a == SG_DLP_TOKENIZE || a == SG_DLP_REDACT)
		return a;
	return SG_DLP_MASK;
}

/* {"output": ..., "logs": [...], "message": "..."}: one document, one scan. */
static char *
gather(const struct sg_run_doc *d)
{
	json_t *j = json_pack("{s:O?, s:O, s:s}", "output", d->output, "logs", d->logs, "message",
	                      d->message);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return text;
}

static void
withhold(struct sg_run_doc *d)
{
	json_decref(d->output);
	d->output = json_null();
	json_decref(d->logs);
	d->logs = json_pack("[s]", "[withheld: the data screen could not check the logs]");
	snprintf(d->message, sizeof(d->message), "%s",
	         d->message[0] ? "[withheld: the data screen could not check the message]" : "");
}

/* Takes the screened document apart into the run's fields. */
static int
scatter(struct sg_run_doc *d, const char *text, size_t len)
{
	json_t *j = json_loadb(text, len, 0, NULL);
	json_t *out = json_object_get(j, "output"), *logs = json_object_get(j, "logs");
	const char *msg = json_string_value(json_object_get(j, "message"));
	if (j == NULL || logs == NULL || msg == NULL) {
		json_decref(j);
		return -1;
	}
	json_decref(d->output);
	d->output = out ? json_incref(out) : NULL;
	json_decref(d->logs);
	d->logs = json_incref(logs);
	snprintf(d->message, sizeof(d->message), "%s", msg);
	json_decref(j);
	return 0;
}

static int
screen(struct sg_run_doc *d, const struct sg_snapshot *snap, const struct sg_dlp_subject *subj,
       const struct sg_dlp_token_key *key)
{
	static _Thread_local struct sg_dlp_verdict verdicts[SG_DLP_MAX_HITS];
	const struct sg_dlp_policy *p = sg_policy_dlp(snap->defs->policy);
	struct sg_dlp_scanner *sc = sg_dlp_scanner_thread();
	struct sg_dlp_result res;
	struct sg_json_doc doc;
	struct sg_jbuf out = {0};
	bool rewrite = false;
	char *text = gather(d);
	int rc = -1;
	if (text == NULL || sc == NULL || snap->defs->dlp_db == NULL ||
	    sg_json_parse(text, strlen(text), 4096, &doc, NULL) != SG_JSON_OK ||
	    sg_dlp_scan_json(sc, snap->defs->dlp_db, doc.root, NULL, 0, &res) != 0 ||
	    res.truncated) /* findings past the cap would be stored as they are */
		goto done;
	for (size_t i = 0; i < res.n_hits; i++) {
		verdicts[i].hit = &res.hits[i];
		verdicts[i].action = stored_action(p, res.hits[i].data_class, subj);
		rewrite |= verdicts[i].action != SG_DLP_ALLOW;
		if (verdicts[i].action == SG_DLP_TOKENIZE && key == NULL)
			goto done;
	}
	if (!rewrite) {
		rc = 0;
		goto done;
	}
	if (sg_dlp_rewrite(doc.root, &res, verdicts, res.n_hits, p, key, NULL, 0, &out) == 0)
		rc = scatter(d, out.data, out.len);
done:
	sg_jbuf_release(&out);
	free(text);
	return rc;
}

int
sg_run_screen(struct sg_run_doc *d, const struct sg_snapshot *snap, const char *role,
              enum sg_mode mode, const struct sg_dlp_token_key *key)
{
	/* A run's leftovers belong to no operation: no data domain binds them. */
	struct sg_dlp_subject subj = {.data_domain = "",
	                              .role = role,
	                              .mode = (int)mode,
	                              .direction = SG_DLP_RESPONSE,
	                              .real_upstream = false};
	if (screen(d, snap, &subj, key) == 0)
		return 0;
	withhold(d);
	return -1;
}
