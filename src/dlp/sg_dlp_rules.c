/*
 * sg_dlp_rules: the built-in rule table and the structure checks.
 *
 * Vectorscan reports a match at every offset where a pattern can end, each
 * with its leftmost start (HS_FLAG_SOM_LEFTMOST).  Two consequences shape
 * the patterns below:
 *  - a pattern may not look behind, so where a prefix disqualifies a match
 *    ("ORD-123-45-6789" is an order id, not an SSN) the pattern optionally
 *    swallows that prefix: the leftmost start then lands on it and the
 *    check, which wants the span to start with the value itself, refuses;
 *  - a pattern with an open repeat ends at several offsets, so a check must
 *    hold for a prefix of a value on its own merits (a prefix of a UUID is
 *    refused as a UUID is).
 */
#include "dlp/sg_dlp_rules.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/*
 * "ORD-" before a number makes it part of an identifier, and a digit and a
 * space before a group of digits make it the tail of a longer number (a
 * spaced card or IBAN).  Swallowing that one character and its separator
 * moves the leftmost start onto them, and the check, which wants the value
 * to open with a full group of digits, refuses the span.  "#" before a
 * phone-shaped number marks an order or ticket number.
 */
#define NOT_IN_ID "(?:[A-Za-z0-9]-|\\d )?"
#define NOT_AN_ID "(?:[A-Za-z0-9]-|\\d |#)?"

/*
 * Cards: 12-19 digits in one run, or the usual groupings (4-4-4-4 with an
 * optional tail, Amex 4-6-5, Diners 4-6-4), spaces or dashes.
 */
#define CARD_RE                                                                                    \
	NOT_IN_ID "\\b(?:\\d{12,19}"                                                               \
	          "|\\d{4}(?: \\d{4}){2,3}(?: \\d{1,3})?"                                          \
	          "|\\d{4}(?:-\\d{4}){2,3}(?:-\\d{1,3})?"                                          \
	          "|\\d{4}[ -]\\d{6}[ -]\\d{4,5})\\b"

#define IBAN_RE "\\b[A-Z]{2}\\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\\b"

#define SSN_RE NOT_IN_ID "\\b\\d{3}(?:-\\d{2}-| \\d{2} )\\d{4}\\b"

#define EMAIL_RE                                                                                   \
	"\\b[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"                            \
	"(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\\.[A-Za-z]{2,}\\b"

/*
 * Phones: E.164 ("+49 30 1234567", "+1 (555) 123-4567"), North American
 * ("(555) 123-4567", "555-123-4567", "555.123.4567") and trunk-prefixed
 * national numbers ("030 1234567", "07700 900123", "020 7946 0958").  A
 * bare run of digits is not a phone: it is far more often an order number.
 */
#define PHONE_RE                                                                                   \
	"(?:\\+[1-9]\\d{0,2}(?:[ .-]?\\(\\d{1,4}\\))?(?:[ .-]?\\d{1,5}){1,5}\\b"                   \
	"|\\(\\d{3}\\) ?\\d{3}[ .-]\\d{4}\\b"                                                      \
	"|" NOT_AN_ID "\\b\\d{3}[.-]\\d{3}[.-]\\d{4}\\b"                                           \
	"|" NOT_AN_ID "\\b0[1-9]\\d{1,3}[ /-]\\d{3,8}(?:[ -]\\d{3,4})?\\b)"

#define IPV4_RE "(?:\\d+\\.)?\\b\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\b"

#define IPV6_RE                                                                                    \
	"(?i)(?:\\b[0-9a-f]{1,4}|::)(?::{1,2}[0-9a-f]{1,4}){1,7}"                                  \
	"(?:(?:\\.\\d{1,3}){3})?\\b(?:::)?"

/* ISO (with an optional time), DD/MM/YYYY or MM/DD/YYYY, dots or dashes. */
#define DATE_RE                                                                                    \
	"\\b(?:\\d{4}-\\d{2}-\\d{2}(?:T\\d{2}:\\d{2}(?::\\d{2}(?:\\.\\d{1,9})?)?"                  \
	"(?:Z|[+-]\\d{2}:?\\d{2})?)?"                                                              \
	"|\\d{1,2}/\\d{1,2}/\\d{4}|\\d{1,2}\\.\\d{1,2}\\.\\d{4}|\\d{1,2}-\\d{1,2}-\\d{4})\\b"

/*
 * An assignment to a name that says secret: "api_key=...", "DB_PASSWORD:
 * ...", "\"client_secret\": \"...\"".  The check measures the value.  The
 * match starts at the word, not at the whole name ("aws_secret_access_key"
 * matches from "key"): a name prefix before it makes the SOM automaton
 * far larger, and the value is what matters.  The letters' cases are
 * spelt out: (?i) under HS_FLAG_UTF8 folds "k" and "s" with the Kelvin
 * and long-s signs too, and the SOM database grew to 2 MB and 3 s.
 */
#define GENERIC_RE                                                                                 \
	"(?:[Kk][Ee][Yy]|[Ss][Ee][Cc][Rr][Ee][Tt]|[Tt][Oo][Kk][Ee][Nn]"                            \
	"|[Pp][Aa][Ss][Ss][Ww](?:[Oo][Rr])?[Dd]|[Pp][Ww][Dd]|[Cc][Rr][Ee][Dd][Ee][Nn][Tt][Ii][Aa]" \
	"[Ll][Ss]?)"                                                                               \
	"[\"']?\\s{0,2}[:=]\\s{0,2}[\"']?[A-Za-z0-9_+/=.~!@#%^-]{16,}\\b"

const struct sg_dlp_rule_def sg_dlp_builtin_rules[] = {
    {"card", "financial.card", CARD_RE, SG_DLP_CHECK_LUHN, 0, 95, NULL},
    {"iban", "financial.iban", IBAN_RE, SG_DLP_CHECK_MOD97, 0, 95, NULL},
    {"ssn", "pii.ssn", SSN_RE, SG_DLP_CHECK_SSN, 0, 80, NULL},
    {"email", "pii.email", EMAIL_RE, SG_DLP_CHECK_NONE, 0, 90, NULL},
    {"phone", "pii.phone", PHONE_RE, SG_DLP_CHECK_PHONE, 0, 70, NULL},
    {"ipv4", "pii.ip", IPV4_RE, SG_DLP_CHECK_IPV4, 0, 80, NULL},
    {"ipv6", "pii.ip", IPV6_RE, SG_DLP_CHECK_IPV6, 0, 80, NULL},
    {"dob", "pii.dob", DATE_RE, SG_DLP_CHECK_DATE, 0, 70, "birth|dob|born"},
    {"aws_access_key", "secret.aws", "\\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\\b", SG_DLP_CHECK_NONE,
     0, 95, NULL},
    {"github_token", "secret.github",
     "\\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})\\b", SG_DLP_CHECK_NONE, 0, 95,
     NULL},
    {"gitlab_token", "secret.gitlab", "\\bglpat-[A-Za-z0-9_-]{20,}\\b", SG_DLP_CHECK_NONE, 0, 95,
     NULL},
    {"slack_token", "secret.slack", "\\bxox[abprs]-[A-Za-z0-9-]{10,}\\b", SG_DLP_CHECK_NONE, 0, 95,
     NULL},
    {"stripe_key", "secret.stripe", "\\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{24,}\\b",
     SG_DLP_CHECK_NONE, 0, 95, NULL},
    {"jwt", "secret.jwt", "\\beyJ[A-Za-z0-9_-]+\\.eyJ[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\b",
     SG_DLP_CHECK_JWT, 0, 90, NULL},
    {"pem_private_key", "secret.pem",
     "-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
     "(?:[A-Za-z0-9+/=\\s:,.\\\\-]*-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----)?",
     SG_DLP_CHECK_NONE, 0, 99, NULL},
    {"generic_secret", "secret.generic", GENERIC_RE, SG_DLP_CHECK_ENTROPY, 3.5, 60, NULL},
};

const size_t sg_dlp_builtin_count = sizeof(sg_dlp_builtin_rules) / sizeof(sg_dlp_builtin_rules[0]);

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Copies the digits of [s, s+len) into out (at most cap); -1 on any other byte but ' ' and '-'. */
static int
digits_of(const char *s, size_t len, char *out, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (is_digit(s[i])) {
			if (n == cap)
				return -1;
			out[n++] = s[i];
		} else if (s[i] != ' ' && s[i] != '-') {
			return -1;
		}
	}
	return (int)n;
}

static bool
luhn_digits(const char *d, int n)
{
	int sum = 0;
	for (int i = 0; i < n; i++) {
		int v = d[n - 1 - i] - '0';
		if (i % 2 == 1) {
			v *= 2;
			if (v > 9)
				v -= 9;
		}
		sum += v;
	}
	return sum % 10 == 0;
}

static int
prefix_num(const char *d, int k)
{
	int v = 0;
	for (int i = 0; i < k; i++)
		v = v * 10 + (d[i] - '0');
	return v;
}

/*
 * Issuer ranges of the card networks in wide use, with their lengths: a
 * Luhn-valid number outside them (one in ten random numbers is
 * Luhn-valid) is an account or order number, not a card.
 */
static bool
known_iin(const char *d, int n)
{
	int p1 = d[0] - '0', p2 = prefix_num(d, 2), p3 = prefix_num(d, 3), p4 = prefix_num(d, 4);
	if (p1 == 4) /* Visa */
		return n == 13 || n == 16 || n == 19;
	if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) /* Mastercard */
		return n == 16;
	if (p2 == 34 || p2 == 37) /* American Express */
		return n == 15;
	if ((p3 >= 300 && p3 <= 305) || p2 == 36 || p2 == 38 || p2 == 39) /* Diners */
		return n >= 14 && n <= 19;
	if (p4 >= 3528 && p4 <= 3589) /* JCB */
		return n >= 16 && n <= 19;
	if (p4 == 6011 || p2 == 65 || (p3 >= 644 && p3 <= 649) || p2 == 62) /* Discover, UnionPay */
		return n >= 16 && n <= 19;
	if (p2 == 50 || (p2 >= 56 && p2 <= 69)) /* Maestro */
		return n >= 12 && n <= 19;
	return false;
}

bool
sg_dlp_luhn(const char *s, size_t len)
{
	char d[19];
	if (len == 0 || !is_digit(s[0]) || !is_digit(s[len - 1]))
		return false;
	int n = digits_of(s, len, d, sizeof(d));
	if (n < 12 || n > 19)
		return false;
	/* Grouped, a card opens with four digits; a shorter group is another number's tail. */
	size_t first = 0;
	while (first < len && is_digit(s[first]))
		first++;
	if (first < len && first != 4)
		return false;
	return luhn_digits(d, n) && known_iin(d, n);
}

struct iban_len {
	char cc[3];
	uint8_t len;
};

/* The IBAN registry's lengths (SWIFT), for the countries that issue IBANs. */
static const struct iban_len iban_lens[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22},
    {"BH", 22}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22},
    {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FO", 18}, {"FR", 27},
    {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28},
    {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20},
    {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"MC", 27}, {"MD", 24},
    {"ME", 22}, {"MK", 19}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NL", 18}, {"NO", 15}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24}, {"SC", 31},
    {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24},
    {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20},
};

static int
iban_country_len(const char *cc)
{
	for (size_t i = 0; i < sizeof(iban_lens) / sizeof(iban_lens[0]); i++)
		if (iban_lens[i].cc[0] == cc[0] && iban_lens[i].cc[1] == cc[1])
			return iban_lens[i].len;
	return -1;
}

static int
iban_value(char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 10;
	return -1;
}

/* Folds one character into the running remainder; -1 for a byte an IBAN cannot hold. */
static int
mod97_step(int rem, char c)
{
	int v = iban_value(c);
	if (v < 0)
		return -1;
	return v < 10 ? (rem * 10 + v) % 97 : (rem * 100 + v) % 97;
}

bool
sg_dlp_iban_mod97(const char *s, size_t len)
{
	char b[34];
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == ' ')
			continue;
		if (n == sizeof(b))
			return false;
		b[n++] = s[i];
	}
	if (n < 15 || iban_value(b[0]) < 10 || iban_value(b[1]) < 10 || !is_digit(b[2]) ||
	    !is_digit(b[3]))
		return false;
	char cc[2] = {(char)(b[0] & ~0x20), (char)(b[1] & ~0x20)};
	if (iban_country_len(cc) != (int)n)
		return false;
	int rem = 0;
	for (size_t i = 0; i < n; i++) {
		rem = mod97_step(rem, b[(i + 4) % n]);
		if (rem < 0)
			return false;
	}
	return rem == 1;
}

bool
sg_dlp_ssn_valid(const char *s, size_t len)
{
	if (len != 11 || (s[3] != '-' && s[3] != ' ') || s[6] != s[3])
		return false;
	char d[9];
	if (digits_of(s, len, d, sizeof(d)) != 9)
		return false;
	int area = prefix_num(d, 3), group = prefix_num(d + 3, 2), serial = prefix_num(d + 5, 4);
	return area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
}

double
sg_dlp_entropy(const char *s, size_t len)
{
	unsigned counts[256] = {0};
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		counts[(unsigned char)s[i]]++;
	double h = 0;
	for (size_t c = 0; c < 256; c++) {
		if (counts[c] == 0)
			continue;
		double p = (double)counts[c] / (double)len;
		h -= p * log2(p);
	}
	return h;
}

/*
 * The value of an assignment: what follows the first ':' or '=' (and any
 * spaces and quote), when that leaves a value of some length; otherwise the
 * whole span is the value (a custom rule matching a bare token, which may
 * itself end in base64 '=' padding).
 */
static void
assignment_value(const char **s, size_t *len)
{
	const char *p = memchr(*s, '=', *len), *q = memchr(*s, ':', *len);
	if (!p || (q && q < p))
		p = q;
	if (!p)
		return;
	const char *end = *s + *len;
	p++;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '"' || *p == '\''))
		p++;
	if (end - p >= 8) {
		*len = (size_t)(end - p);
		*s = p;
	}
}

/* A UUID, or the start of one: 8-4-4-4-12 hex digits. */
static bool
uuid_shaped(const char *s, size_t len)
{
	if (len > 36)
		return false;
	for (size_t i = 0; i < len; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !is_hex(s[i]))
			return false;
	}
	return true;
}

/*
 * Machine-made secrets mix character kinds; a value of one kind only
 * (a lowercase word list, a run of digits) is a name or a number.
 */
static bool
mixes_kinds(const char *s, size_t len)
{
	bool lower = false, upper = false, digit = false;
	for (size_t i = 0; i < len; i++) {
		lower |= s[i] >= 'a' && s[i] <= 'z';
		upper |= s[i] >= 'A' && s[i] <= 'Z';
		digit |= is_digit(s[i]);
	}
	return (int)lower + (int)upper + (int)digit >= 2;
}

static bool
all_hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!is_hex(s[i]))
			return false;
	return true;
}

/*
 * Hex digits carry at most 4 bits a character, and a random 32-digit hex
 * key measures only 3.4-3.9: hex values are held to half a bit less (as
 * gitleaks and truffleHog hold hex lower than base64).
 */
#define HEX_ENTROPY_ALLOWANCE 0.5

static bool
check_entropy(double min_entropy, const char *s, size_t len)
{
	assignment_value(&s, &len);
	if (uuid_shaped(s, len) || !mixes_kinds(s, len))
		return false;
	if (all_hex(s, len))
		min_entropy -= HEX_ENTROPY_ALLOWANCE;
	return sg_dlp_entropy(s, len) >= min_entropy;
}

/* Decodes one base64url part into out; its length, or -1. */
static int
b64url_decode(const char *s, size_t len, unsigned char *out, size_t cap)
{
	size_t n = 0;
	if (len == 0 || sodium_base642bin(out, cap, s, len, NULL, &n, NULL,
	                                  sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return -1;
	return (int)n;
}

static bool
jwt_header_ok(const char *s, size_t len)
{
	unsigned char buf[1024];
	if (len > 4 * sizeof(buf) / 3)
		return false;
	int n = b64url_decode(s, len, buf, sizeof(buf));
	if (n < 0)
		return false;
	json_t *h = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
	bool ok = json_is_object(h) && json_is_string(json_object_get(h, "alg"));
	json_decref(h);
	return ok;
}

/*
 * Whether a base64url part decodes, in slices of 4096 characters (each
 * decodes on its own), so a long payload needs no heap.
 */
static bool
b64url_decodes(const char *s, size_t len)
{
	unsigned char buf[3072];
	if (len == 0)
		return false;
	for (size_t off = 0; off < len; off += 4096) {
		size_t n = len - off < 4096 ? len - off : 4096;
		if (b64url_decode(s + off, n, buf, sizeof(buf)) < 0)
			return false;
	}
	return true;
}

/* header.payload.signature: the header a JSON object naming "alg", the payload base64url. */
static bool
check_jwt(const char *s, size_t len)
{
	const char *d1 = memchr(s, '.', len);
	if (!d1)
		return false;
	const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - s));
	if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - s)))
		return false;
	return jwt_header_ok(s, (size_t)(d1 - s)) && b64url_decodes(d1 + 1, (size_t)(d2 - d1 - 1));
}

/* One octet: 0-255, no leading zero; the number of bytes read, or 0. */
static size_t
octet(const char *s, size_t len)
{
	size_t i = 0;
	int v = 0;
	while (i < len && i < 4 && is_digit(s[i]))
		v = v * 10 + (s[i++] - '0');
	if (i == 0 || i > 3 || v > 255 || (i > 1 && s[0] == '0'))
		return 0;
	return i;
}

static bool
check_ipv4(const char *s, size_t len)
{
	size_t pos = 0;
	for (int k = 0; k < 4; k++) {
		if (k > 0) {
			if (pos >= len || s[pos] != '.')
				return false;
			pos++;
		}
		size_t n = octet(s + pos, len - pos);
		if (n == 0)
			return false;
		pos += n;
	}
	return pos == len;
}

static bool
check_ipv6(const char *s, size_t len)
{
	char buf[INET6_ADDRSTRLEN + 1];
	unsigned char addr[16];
	size_t colons = 0;
	bool digit = false;
	if (len >= sizeof(buf))
		return false;
	for (size_t i = 0; i < len; i++) {
		colons += s[i] == ':';
		digit |= is_digit(s[i]);
	}
	/* "Abc::Def" in code parses as an address; addresses in text carry a digit. */
	if (colons < 2 || !digit)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(AF_INET6, buf, addr) == 1;
}

static bool
check_phone(const char *s, size_t len)
{
	int n = 0;
	char first = 0;
	bool varied = false;
	if (len == 0 || !(is_digit(s[0]) || s[0] == '+' || s[0] == '('))
		return false;
	/* A national number opens with a group of 3 or more; "2-0519-7869" is inside an id. */
	size_t lead = 0;
	while (lead < len && is_digit(s[lead]))
		lead++;
	if (lead > 0 && lead < len && lead < 3)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			continue;
		if (n++ == 0)
			first = s[i];
		varied |= s[i] != first;
	}
	/* All one digit ("000-000-0000") is a placeholder. */
	return n >= 8 && n <= 15 && varied;
}

static int
read_num(const char *s, size_t len, size_t *pos, int min_digits, int max_digits)
{
	int v = 0, k = 0;
	while (*pos < len && is_digit(s[*pos]) && k < max_digits) {
		v = v * 10 + (s[*pos] - '0');
		(*pos)++;
		k++;
	}
	return k >= min_digits ? v : -1;
}

static int
current_year(void)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	return tm.tm_year + 1900;
}

static bool
real_date(int y, int m, int d)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (y < 1900 || y > current_year() || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return false;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return !(m == 2 && d == 29 && !leap);
}

/*
 * YYYY-MM-DD (what follows, a time, is not read), or A/B/YYYY (also with
 * '.' or '-') where either DD/MM or MM/DD makes a real date.
 */
static bool
check_date(const char *s, size_t len)
{
	size_t pos = 0;
	int a = read_num(s, len, &pos, 1, 4);
	bool iso = pos == 4;
	if (a < 0 || pos >= len)
		return false;
	char sep = s[pos++];
	if (sep != '-' && sep != '/' && sep != '.')
		return false;
	int b = read_num(s, len, &pos, 1, 2);
	if (b < 0 || pos >= len || s[pos] != sep)
		return false;
	pos++;
	if (iso) {
		size_t start = pos;
		int d = read_num(s, len, &pos, 2, 2);
		return sep == '-' && pos - start == 2 && real_date(a, b, d);
	}
	int y = read_num(s, len, &pos, 4, 4);
	if (y < 0 || pos != len)
		return false;
	return real_date(y, b, a) || real_date(y, a, b);
}

bool
sg_dlp_check_span(enum sg_dlp_check check, double min_entropy, const char *s, size_t len)
{
	switch (check) {
	case SG_DLP_CHECK_NONE:
		return true;
	case SG_DLP_CHECK_LUHN:
		return sg_dlp_luhn(s, len);
	case SG_DLP_CHECK_MOD97:
		return sg_dlp_iban_mod97(s, len);
	case SG_DLP_CHECK_SSN:
		return sg_dlp_ssn_valid(s, len);
	case SG_DLP_CHECK_JWT:
		return check_jwt(s, len);
	case SG_DLP_CHECK_ENTROPY:
		return check_entropy(min_entropy, s, len);
	case SG_DLP_CHECK_IPV4:
		return check_ipv4(s, len);
	case SG_DLP_CHECK_IPV6:
		return check_ipv6(s, len);
	case SG_DLP_CHECK_PHONE:
		return check_phone(s, len);
	case SG_DLP_CHECK_DATE:
		return check_date(s, len);
	case SG_DLP_CHECK_COUNT:
		break;
	}
	return false; /* an unknown check confirms nothing */
}

static const char *const check_names[SG_DLP_CHECK_COUNT] = {
    [SG_DLP_CHECK_NONE] = "none", [SG_DLP_CHECK_LUHN] = "luhn", [SG_DLP_CHECK_MOD97] = "mod97",
    [SG_DLP_CHECK_SSN] = "ssn",   [SG_DLP_CHECK_JWT] = "jwt",   [SG_DLP_CHECK_ENTROPY] = "entropy",
    [SG_DLP_CHECK_IPV4] = "ipv4", [SG_DLP_CHECK_IPV6] = "ipv6", [SG_DLP_CHECK_PHONE] = "phone",
    [SG_DLP_CHECK_DATE] = "date",
};

int
sg_dlp_check_parse(const char *name, enum sg_dlp_check *out)
{
	for (int i = 0; i < SG_DLP_CHECK_COUNT; i++) {
		if (strcmp(name, check_names[i]) == 0) {
			*out = (enum sg_dlp_check)i;
			return 0;
		}
	}
	return -1;
}

const char *
sg_dlp_check_name(enum sg_dlp_check check)
{
	return (unsigned)check < SG_DLP_CHECK_COUNT ? check_names[check] : "unknown";
}

bool
sg_dlp_field_hint_match(const char *hint, const char *field, size_t len)
{
	if (!hint)
		return true;
	while (*hint) {
		const char *bar = strchr(hint, '|');
		size_t wl = bar ? (size_t)(bar - hint) : strlen(hint);
		for (size_t i = 0; wl > 0 && i + wl <= len; i++)
			if (strncasecmp(field + i, hint, wl) == 0)
				return true;
		if (!bar)
			break;
		hint = bar + 1;
	}
	return false;
}
