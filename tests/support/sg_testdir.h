/*
 * sg_testdir: scratch directories for tests, created under /tmp and removed
 * with everything in them.  Shared so that every test cleans up the same way.
 */
#ifndef SG_TESTDIR_H
#define SG_TESTDIR_H

#include <stddef.h>

/* Creates /tmp/sg-<tag>-XXXXXX into `out` (at least 64 bytes); -1 on failure. */
int sg_testdir_make(char *out, size_t n, const char *tag);
/* Removes the directory tree without following links; -1 if anything stayed. */
int sg_testdir_remove(const char *dir);

#endif
