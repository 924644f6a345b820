#include "sg_testcatalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SG_SOURCE_ROOT
#define SG_SOURCE_ROOT "."
#endif

char *
sg_test_slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = f ? calloc(1, 1 << 20) : NULL;
	size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	if (f)
		fclose(f);
	if (buf)
		buf[n] = '\0';
	return buf;
}

struct sg_catalog *
sg_test_example_catalog(void)
{
	static const char *const names[] = {"crm", "mail", "calendar"};
	struct sg_connector *v[3] = {NULL, NULL, NULL};
	struct sg_diags d = {0};
	for (size_t i = 0; i < 3; i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/examples/connectors/%s.yaml", SG_SOURCE_ROOT,
		         names[i]);
		char *text = sg_test_slurp(path);
		v[i] = text ? sg_connector_parse(path, text, strlen(text), 42, &d) : NULL;
		free(text);
	}
	sg_diags_print(&d, stderr);
	bool ok = d.n == 0 && v[0] && v[1] && v[2];
	sg_diags_free(&d);
	if (!ok) {
		for (size_t i = 0; i < 3; i++)
			sg_connector_free(v[i]);
		return NULL;
	}
	return sg_catalog_new(v, 3);
}
