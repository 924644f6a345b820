#include "sg_testdir.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int
sg_testdir_make(char *out, size_t n, const char *tag)
{
	if ((size_t)snprintf(out, n, "/tmp/sg-%s-XXXXXX", tag) >= n)
		return -1;
	return mkdtemp(out) ? 0 : -1;
}

static int
remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int
sg_testdir_remove(const char *dir)
{
	return nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}
