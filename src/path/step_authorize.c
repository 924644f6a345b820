/*
 * authorize: deny unless the policy allows this role to call this
 * operation in the key's mode.  The compiled policy answers with one
 * bitmap lookup.
 */
#include "path/sg_path.h"

enum sg_step_rc
sg_step_authorize(struct sg_req *r)
{
	const struct sg_role *role = r->principal.role;
	enum sg_mode mode = r->principal.mode;

	if (!role->mode_allowed[mode])
		return sg_req_fail(r, SG_P_MODE_NOT_ALLOWED,
		    "role \"%s\" may not make %s calls", role->name, sg_mode_name(mode));
	if (!sg_role_allows(role, mode, r->op))
		return sg_req_fail(r, SG_P_OPERATION_NOT_ALLOWED,
		    "role \"%s\" may not call %s.%s in %s mode", role->name, r->connector->name,
		    r->op->name, sg_mode_name(mode));
	return SG_STEP_NEXT;
}
