/*
 * sg_dlp_rules: what the DLP screen looks for.  The built-in rules (one
 * table, below) and the structure checks that confirm a pattern's match
 * before anything acts on it: a 16-digit number is a card only when Luhn
 * agrees, an IBAN-shaped string only when mod-97 does.  A regex alone
 * would flag every order id; the check is what buys precision.
 *
 * Data classes are dotted names, "family.kind".  The families the
 * defaults act on are fixed: "secret.*" (blocked everywhere), and
 * "financial.card", "financial.iban", "pii.ssn" (masked in sandbox replies
 * from a real upstream).  Custom rules in policy may name any class.
 */
#ifndef SG_DLP_RULES_H
#define SG_DLP_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A structure check run on a pattern's match; NONE trusts the pattern. */
enum sg_dlp_check {
	SG_DLP_CHECK_NONE,
	SG_DLP_CHECK_LUHN,  /* digits (spaces and dashes ignored), 12-19, Luhn, known IIN */
	SG_DLP_CHECK_MOD97, /* IBAN: country length and mod-97 == 1 */
	SG_DLP_CHECK_SSN,   /* area not 000/666/9xx, group not 00, serial not 0000 */
	SG_DLP_CHECK_JWT, /* three base64url parts, the first decodes to a JSON object with "alg" */
	SG_DLP_CHECK_ENTROPY, /* Shannon entropy of the value part >= min_entropy bits/char */
	SG_DLP_CHECK_IPV4,    /* four octets 0-255, no leading zeros */
	SG_DLP_CHECK_IPV6,    /* inet_pton(AF_INET6) accepts it */
	SG_DLP_CHECK_PHONE,   /* 8-15 digits once punctuation is dropped, not all one digit */
	SG_DLP_CHECK_DATE,    /* a real calendar date between 1900 and this year */
	SG_DLP_CHECK_COUNT
};

struct sg_dlp_rule_def {
	const char *id;         /* stable, shown in audits and refusals: "card", "aws_access_key" */
	const char *data_class; /* "financial.card" */
	const char *pattern; /* Vectorscan syntax (PCRE subset: no backreferences, no lookaround) */
	enum sg_dlp_check check;
	double min_entropy; /* SG_DLP_CHECK_ENTROPY only */
	uint8_t confidence; /* 0-100: how sure a confirmed match is */
	/*
	 * NULL, or a case-insensitive substring list ("birth|dob") one of which
	 * the field's name must hold: a date is a date of birth only where the
	 * field says so.
	 */
	const char *field_hint;
};

extern const struct sg_dlp_rule_def sg_dlp_builtin_rules[];
extern const size_t sg_dlp_builtin_count;

/*
 * Whether the match [s, s+len) passes `check`.  `min_entropy` is read only
 * by SG_DLP_CHECK_ENTROPY.  Never reads outside the span.
 */
bool sg_dlp_check_span(enum sg_dlp_check check, double min_entropy, const char *s, size_t len);

/* "luhn", "mod97", "entropy", ...; 0 and sets *out, or -1 for an unknown name. */
int sg_dlp_check_parse(const char *name, enum sg_dlp_check *out);
const char *sg_dlp_check_name(enum sg_dlp_check check);

/* Whether `field` (a member name, not NUL-terminated) holds one of `hint`'s words. */
bool sg_dlp_field_hint_match(const char *hint, const char *field, size_t len);

/* The checks, exposed for tests and for the policy compiler. */
bool sg_dlp_luhn(const char *s, size_t len);
bool sg_dlp_iban_mod97(const char *s, size_t len);
bool sg_dlp_ssn_valid(const char *s, size_t len);
/* Shannon entropy in bits per character. */
double sg_dlp_entropy(const char *s, size_t len);

#endif
