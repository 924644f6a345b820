#include "core/sg_json_alloc.h"

#include <jansson.h>
#include <stdlib.h>

enum watch { W_OFF, W_ON, W_FAILED };

static _Thread_local enum watch watch;

static void *
json_alloc(size_t n)
{
	if (watch == W_FAILED)
		return NULL;
	void *p = malloc(n);
	if (p == NULL && watch == W_ON)
		watch = W_FAILED;
	return p;
}

void
sg_json_alloc_install(void)
{
	json_set_alloc_funcs(json_alloc, free);
}

void
sg_json_alloc_watch(void)
{
	watch = W_ON;
}

bool
sg_json_alloc_unwatch(void)
{
	bool failed = watch == W_FAILED;
	watch = W_OFF;
	return failed;
}
