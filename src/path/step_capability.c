/*
 * capability: a template's ctx.call may reach only what the template
 * declared, whatever its runner's role allows; the role is checked by
 * authorize as for any call.  Runs right after identify, so a refusal is
 * audited under the runner and names nothing the catalog holds.  Calls
 * that do not come from a template pass.
 */
#include "catalog/sg_template.h"
#include "path/sg_path.h"

enum sg_step_rc
sg_step_capability(struct sg_req *r)
{
	if (r->tpl == NULL || sg_template_capability(r->tpl, r->capability) != NULL)
		return SG_STEP_NEXT;
	return sg_req_fail(r, SG_P_CAPABILITY_NOT_DECLARED,
	                   "the template did not declare \"%.128s\": add it to capabilities in "
	                   "template.yaml",
	                   r->capability);
}
