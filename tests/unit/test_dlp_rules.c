/*
 * test_dlp_rules: the structure checks that confirm a pattern's match, and
 * the rule table itself.  Each check is shown a value it must accept and
 * the look-alikes it exists to refuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <hs/hs.h>
#include <sodium.h>

#include "dlp/sg_dlp_rules.h"

static bool
check(enum sg_dlp_check c, const char *s)
{
	return sg_dlp_check_span(c, 3.5, s, strlen(s));
}

#define ACCEPTS(c, s) assert_true(check((c), (s)))
#define REFUSES(c, s) assert_false(check((c), (s)))

static void
test_luhn(void **state)
{
	(void)state;
	ACCEPTS(SG_DLP_CHECK_LUHN, "4111111111111111");
	ACCEPTS(SG_DLP_CHECK_LUHN, "4111 1111 1111 1111");
	ACCEPTS(SG_DLP_CHECK_LUHN, "5500-0000-0000-0004");
	ACCEPTS(SG_DLP_CHECK_LUHN, "378282246310005");      /* Amex, 15 */
	ACCEPTS(SG_DLP_CHECK_LUHN, "6011111111111117");     /* Discover */
	ACCEPTS(SG_DLP_CHECK_LUHN, "2223003122003222");     /* Mastercard 2-series */
	REFUSES(SG_DLP_CHECK_LUHN, "4111111111111112");     /* Luhn fails */
	REFUSES(SG_DLP_CHECK_LUHN, "5500 0000 0000 0005");  /* Luhn fails */
	REFUSES(SG_DLP_CHECK_LUHN, "1234567812345670");     /* Luhn holds, no issuer starts 1 */
	REFUSES(SG_DLP_CHECK_LUHN, "9000000000000009");     /* nor 9 */
	REFUSES(SG_DLP_CHECK_LUHN, "411111111111");         /* Visa is 13, 16 or 19 long */
	REFUSES(SG_DLP_CHECK_LUHN, "D-4111111111111111");   /* a prefix the pattern swallowed */
	REFUSES(SG_DLP_CHECK_LUHN, "41111111111111111111"); /* 20 digits */
	REFUSES(SG_DLP_CHECK_LUHN, "");
	REFUSES(SG_DLP_CHECK_LUHN, "41 1111 1111 1111 11");   /* grouped, but not from 4 */
	assert_true(sg_dlp_luhn("79927398713", 11) == false); /* Luhn-valid but 11 digits */
}

static void
test_iban(void **state)
{
	(void)state;
	ACCEPTS(SG_DLP_CHECK_MOD97, "DE89370400440532013000");
	ACCEPTS(SG_DLP_CHECK_MOD97, "DE89 3704 0044 0532 0130 00");
	ACCEPTS(SG_DLP_CHECK_MOD97, "GB82WEST12345698765432");
	ACCEPTS(SG_DLP_CHECK_MOD97, "NL91ABNA0417164300");
	ACCEPTS(SG_DLP_CHECK_MOD97, "BE68539007547034");
	REFUSES(SG_DLP_CHECK_MOD97, "DE89370400440532013001"); /* mod-97 fails */
	REFUSES(SG_DLP_CHECK_MOD97, "GB82WEST12345698765433");
	REFUSES(SG_DLP_CHECK_MOD97, "DE8937040044053201300");  /* DE is 22 long */
	REFUSES(SG_DLP_CHECK_MOD97, "ZZ89370400440532013000"); /* no such country */
	REFUSES(SG_DLP_CHECK_MOD97, "DE89 3704 0044");
	REFUSES(SG_DLP_CHECK_MOD97, "");
}

static void
test_ssn(void **state)
{
	(void)state;
	ACCEPTS(SG_DLP_CHECK_SSN, "123-45-6789");
	ACCEPTS(SG_DLP_CHECK_SSN, "665-12-3456");
	ACCEPTS(SG_DLP_CHECK_SSN, "123 45 6789");
	REFUSES(SG_DLP_CHECK_SSN, "000-12-3456"); /* area 000 */
	REFUSES(SG_DLP_CHECK_SSN, "666-12-3456"); /* area 666 */
	REFUSES(SG_DLP_CHECK_SSN, "900-12-3456"); /* area 9xx */
	REFUSES(SG_DLP_CHECK_SSN, "987-65-4321");
	REFUSES(SG_DLP_CHECK_SSN, "123-00-4567");   /* group 00 */
	REFUSES(SG_DLP_CHECK_SSN, "123-45-0000");   /* serial 0000 */
	REFUSES(SG_DLP_CHECK_SSN, "D-123-45-6789"); /* "ORD-123-45-6789" */
	REFUSES(SG_DLP_CHECK_SSN, "123-45 6789");   /* mixed separators */
	REFUSES(SG_DLP_CHECK_SSN, "123-45-67890");
}

static void
test_entropy(void **state)
{
	(void)state;
	assert_true(sg_dlp_entropy("aaaa", 4) == 0.0);
	assert_true(sg_dlp_entropy("abcd", 4) > 1.99 && sg_dlp_entropy("abcd", 4) < 2.01);
	ACCEPTS(SG_DLP_CHECK_ENTROPY, "api_key=Zk3pQ9vL2mX7rT5wB8nC4yH6");
	ACCEPTS(SG_DLP_CHECK_ENTROPY, "\"client_secret\": \"q8Vt2LmZ9xKp4RwN7sYb3Hc\"");
	ACCEPTS(SG_DLP_CHECK_ENTROPY, "Zk3pQ9vL2mX7rT5wB8nC4yH6"); /* no assignment: all value */
	/* 3.37 bits: a hex key is held half a bit lower */
	ACCEPTS(SG_DLP_CHECK_ENTROPY, "api_key=0e1f6436b2fca62cf2c9faf65f45ffba");
	REFUSES(SG_DLP_CHECK_ENTROPY, "key=550e8400-e29b-41d4-a716-446655440000"); /* a UUID */
	REFUSES(SG_DLP_CHECK_ENTROPY, "api_key=550E8400-E29B-41D4-A716-4466");     /* part of one */
	REFUSES(SG_DLP_CHECK_ENTROPY, "token=aaaaaaaaaaaaaaaaaaaaaaaa");
	REFUSES(SG_DLP_CHECK_ENTROPY, "password=your_password_goes_here"); /* one kind */
	REFUSES(SG_DLP_CHECK_ENTROPY, "secret=1234567890123456");
	REFUSES(SG_DLP_CHECK_ENTROPY, "key=Ab12Ab12Ab12Ab12Ab12"); /* 2 bits a character */
}

/* A JWT made here: base64url header and payload, a dummy signature. */
static void
make_jwt(char *out, size_t cap, const char *header, const char *payload)
{
	char h[256], p[256];
	sodium_bin2base64(h, sizeof(h), (const unsigned char *)header, strlen(header),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_bin2base64(p, sizeof(p), (const unsigned char *)payload, strlen(payload),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(out, cap, "%s.%s.c2lnbmF0dXJlX2J5dGVz", h, p);
}

static void
test_jwt(void **state)
{
	(void)state;
	char t[1024];
	make_jwt(t, sizeof(t), "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"sub\":\"42\"}");
	ACCEPTS(SG_DLP_CHECK_JWT, t);
	make_jwt(t, sizeof(t), "{\"typ\":\"JWT\"}", "{\"sub\":\"42\"}"); /* no alg */
	REFUSES(SG_DLP_CHECK_JWT, t);
	make_jwt(t, sizeof(t), "{\"alg\":256}", "{\"sub\":\"42\"}"); /* alg not a name */
	REFUSES(SG_DLP_CHECK_JWT, t);
	make_jwt(t, sizeof(t), "{\"alg\":\"HS256\"", "{\"sub\":\"42\"}"); /* not JSON */
	REFUSES(SG_DLP_CHECK_JWT, t);
	make_jwt(t, sizeof(t), "[\"alg\"]", "{}"); /* not an object */
	REFUSES(SG_DLP_CHECK_JWT, t);
	/* base64 blobs shaped like one */
	REFUSES(SG_DLP_CHECK_JWT, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9"); /* two parts */
	REFUSES(SG_DLP_CHECK_JWT, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2ln.c2ln");
	REFUSES(SG_DLP_CHECK_JWT, "eyJxxxxxxxxxxxxxx.eyJyyyyyyyyyyyy.zzzz");
	REFUSES(SG_DLP_CHECK_JWT, "eyJhbGciOiJIUzI1NiJ9.e.c2ln"); /* payload does not decode */
}

static void
test_ip(void **state)
{
	(void)state;
	ACCEPTS(SG_DLP_CHECK_IPV4, "192.168.1.20");
	ACCEPTS(SG_DLP_CHECK_IPV4, "0.0.0.0");
	ACCEPTS(SG_DLP_CHECK_IPV4, "255.255.255.255");
	REFUSES(SG_DLP_CHECK_IPV4, "256.1.1.1");
	REFUSES(SG_DLP_CHECK_IPV4, "192.168.01.1"); /* leading zero */
	REFUSES(SG_DLP_CHECK_IPV4, "1.2.3.4.5"); /* a longer dotted number the pattern took whole */
	REFUSES(SG_DLP_CHECK_IPV4, "1.2.3");
	ACCEPTS(SG_DLP_CHECK_IPV6, "2001:db8::8a2e:370:7334");
	ACCEPTS(SG_DLP_CHECK_IPV6, "fe80::1");
	ACCEPTS(SG_DLP_CHECK_IPV6, "::ffff:192.0.2.1");
	REFUSES(SG_DLP_CHECK_IPV6, "12:30:45");          /* a time */
	REFUSES(SG_DLP_CHECK_IPV6, "00:1a:2b:3c:4d:5e"); /* a MAC address */
	REFUSES(SG_DLP_CHECK_IPV6, "dead::beef");        /* code, not an address */
	REFUSES(SG_DLP_CHECK_IPV6, "2001:db8:::1");
}

static void
test_phone(void **state)
{
	(void)state;
	ACCEPTS(SG_DLP_CHECK_PHONE, "+1 (555) 123-4567");
	ACCEPTS(SG_DLP_CHECK_PHONE, "+4930123456");
	ACCEPTS(SG_DLP_CHECK_PHONE, "(555) 123-4567");
	ACCEPTS(SG_DLP_CHECK_PHONE, "030 1234567");
	ACCEPTS(SG_DLP_CHECK_PHONE, "07700 900123");
	REFUSES(SG_DLP_CHECK_PHONE, "+1 555");            /* too few digits */
	REFUSES(SG_DLP_CHECK_PHONE, "+1234567890123456"); /* too many */
	REFUSES(SG_DLP_CHECK_PHONE, "000-000-0000");      /* one digit only */
	REFUSES(SG_DLP_CHECK_PHONE, "D-555-123-4567");    /* "ORD-555-123-4567" */
	REFUSES(SG_DLP_CHECK_PHONE, "2-0519-7869");       /* the tail of "6BB2-0519-7869" */
	REFUSES(SG_DLP_CHECK_PHONE, "6 0595 7452");       /* the tail of a spaced card */
}

static void
test_date(void **state)
{
	(void)state;
	ACCEPTS(SG_DLP_CHECK_DATE, "1990-05-14");
	ACCEPTS(SG_DLP_CHECK_DATE, "1990-05-14T08:30:00Z");
	ACCEPTS(SG_DLP_CHECK_DATE, "14/05/1990"); /* DD/MM */
	ACCEPTS(SG_DLP_CHECK_DATE, "05/14/1990"); /* MM/DD */
	ACCEPTS(SG_DLP_CHECK_DATE, "29.02.2000"); /* a leap year */
	REFUSES(SG_DLP_CHECK_DATE, "1990-02-30");
	REFUSES(SG_DLP_CHECK_DATE, "1990-13-01");
	REFUSES(SG_DLP_CHECK_DATE, "29/02/1900"); /* 1900 was not a leap year */
	REFUSES(SG_DLP_CHECK_DATE, "31/31/1990");
	REFUSES(SG_DLP_CHECK_DATE, "1850-01-01"); /* before 1900 */
	REFUSES(SG_DLP_CHECK_DATE, "2999-01-01"); /* after this year */
	REFUSES(SG_DLP_CHECK_DATE, "1990/05/14"); /* ISO uses dashes */
}

static void
test_field_hint(void **state)
{
	(void)state;
	const char *h = "birth|dob|born";
	assert_true(sg_dlp_field_hint_match(h, "date_of_birth", 13));
	assert_true(sg_dlp_field_hint_match(h, "DOB", 3));
	assert_true(sg_dlp_field_hint_match(h, "bornOn", 6));
	assert_false(sg_dlp_field_hint_match(h, "created_at", 10));
	assert_false(sg_dlp_field_hint_match(h, "do", 2));
	assert_false(
	    sg_dlp_field_hint_match(h, "dobbin", 2)); /* only the first 2 bytes are the name */
	assert_true(sg_dlp_field_hint_match(NULL, "x", 1));
}

static void
test_check_names(void **state)
{
	(void)state;
	for (int i = 0; i < SG_DLP_CHECK_COUNT; i++) {
		enum sg_dlp_check c;
		assert_int_equal(sg_dlp_check_parse(sg_dlp_check_name((enum sg_dlp_check)i), &c),
		                 0);
		assert_int_equal(c, i);
	}
	enum sg_dlp_check c;
	assert_int_equal(sg_dlp_check_parse("luhn", &c), 0);
	assert_int_equal(c, SG_DLP_CHECK_LUHN);
	assert_int_equal(sg_dlp_check_parse("Luhn", &c), -1);
	assert_int_equal(sg_dlp_check_parse("", &c), -1);
	assert_false(sg_dlp_check_span(SG_DLP_CHECK_COUNT, 0, "x", 1));
}

static const char *const classes[] = {
    "pii.email",      "pii.phone",      "pii.ip",     "pii.dob",       "pii.ssn",
    "financial.card", "financial.iban", "secret.aws", "secret.github", "secret.gitlab",
    "secret.slack",   "secret.stripe",  "secret.jwt", "secret.pem",    "secret.generic",
};

#define MAX_RULE_DB (256 * 1024)

/* Every class is covered, every id is unique, every pattern compiles with SOM. */
static void
test_table(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(classes) / sizeof(classes[0]); c++) {
		bool found = false;
		for (size_t i = 0; i < sg_dlp_builtin_count; i++)
			found |= strcmp(sg_dlp_builtin_rules[i].data_class, classes[c]) == 0;
		if (!found)
			fail_msg("no built-in rule for %s", classes[c]);
	}
	for (size_t i = 0; i < sg_dlp_builtin_count; i++) {
		const struct sg_dlp_rule_def *r = &sg_dlp_builtin_rules[i];
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(r->id, sg_dlp_builtin_rules[j].id);
		hs_database_t *db = NULL;
		hs_compile_error_t *err = NULL;
		if (hs_compile(r->pattern, HS_FLAG_SOM_LEFTMOST | HS_FLAG_UTF8, HS_MODE_BLOCK, NULL,
		               &db, &err) != HS_SUCCESS) {
			char msg[256];
			snprintf(msg, sizeof(msg), "%s", err->message);
			hs_free_compile_error(err);
			fail_msg("rule %s: %s", r->id, msg);
		}
		/*
		 * A snapshot compiles every rule at apply: a pattern whose SOM
		 * automaton balloons (generic_secret under (?i) was 2 MB and 3 s)
		 * slows every apply and reload.
		 */
		size_t size = 0;
		assert_int_equal(hs_database_size(db, &size), HS_SUCCESS);
		if (size > MAX_RULE_DB)
			fail_msg("rule %s: %zu bytes of database", r->id, size);
		hs_free_database(db);
		assert_true(r->confidence > 0 && r->confidence <= 100);
	}
}

struct span {
	const char *text;
	unsigned rule;
	bool confirmed;
};

static int
on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void *ctx)
{
	(void)flags;
	struct span *sp = ctx;
	const struct sg_dlp_rule_def *r = &sg_dlp_builtin_rules[sp->rule];
	if (id == 0 && sg_dlp_check_span(r->check, r->min_entropy, sp->text + from, to - from))
		sp->confirmed = true;
	return 0;
}

/* Whether rule `id`'s pattern, confirmed by its check, finds something in `text`. */
static bool
finds(const char *id, const char *text)
{
	size_t i = 0;
	while (i < sg_dlp_builtin_count && strcmp(sg_dlp_builtin_rules[i].id, id) != 0)
		i++;
	assert_true(i < sg_dlp_builtin_count);
	hs_database_t *db = NULL;
	hs_compile_error_t *err = NULL;
	hs_scratch_t *scratch = NULL;
	assert_int_equal(hs_compile(sg_dlp_builtin_rules[i].pattern,
	                            HS_FLAG_SOM_LEFTMOST | HS_FLAG_UTF8, HS_MODE_BLOCK, NULL, &db,
	                            &err),
	                 HS_SUCCESS);
	assert_int_equal(hs_alloc_scratch(db, &scratch), HS_SUCCESS);
	struct span sp = {text, (unsigned)i, false};
	assert_int_equal(hs_scan(db, text, (unsigned)strlen(text), 0, scratch, on_match, &sp),
	                 HS_SUCCESS);
	hs_free_scratch(scratch);
	hs_free_database(db);
	return sp.confirmed;
}

/* The patterns' edges: nothing fires inside a longer token. */
static void
test_patterns_bounded(void **state)
{
	(void)state;
	assert_true(finds("card", "card 4111 1111 1111 1111 on file"));
	assert_false(finds("card", "ref 041111111111111111111111111111")); /* inside 30 digits */
	assert_false(finds("card", "ORD-4111111111111111"));
	assert_true(finds("ssn", "ssn: 123-45-6789"));
	assert_false(finds("ssn", "ORD-123-45-6789"));
	assert_false(finds("ssn", "123-45-67890"));
	assert_true(finds("ipv4", "from 10.1.2.3"));
	assert_false(finds("ipv4", "build v1.2.3.4"));
	assert_true(finds("phone", "call (555) 123-4567"));
	assert_false(finds("phone", "order 5551234567"));
	assert_true(finds("generic_secret", "api_key=Zk3pQ9vL2mX7rT5wB8nC4yH6"));
	assert_false(finds("generic_secret", "api_key=550e8400-e29b-41d4-a716-446655440000"));
	assert_true(finds("aws_access_key", "AKIAIOSFODNN7EXAMPLE"));
	assert_false(finds("aws_access_key", "XAKIAIOSFODNN7EXAMPLE"));
	assert_true(finds("pem_private_key", "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n"));
	assert_false(finds("pem_private_key", "-----BEGIN PUBLIC KEY-----\nMIIB\n"));
	assert_true(finds("pem_private_key", "-----BEGIN PGP PRIVATE KEY BLOCK-----\n"));
	/* A group of a spaced card or IBAN is no phone, and no card hides inside an IBAN. */
	assert_false(finds("phone", "card 2720 7066 0595 7452"));
	assert_false(finds("phone", "GB25 WTEO 7579 0166 5633 93"));
	assert_false(finds("card", "PL33 1084 4067 2585 3702 1449 7956"));
	assert_false(finds("phone", "#0207-4092-6922"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_luhn),       cmocka_unit_test(test_iban),
	    cmocka_unit_test(test_ssn),        cmocka_unit_test(test_entropy),
	    cmocka_unit_test(test_jwt),        cmocka_unit_test(test_ip),
	    cmocka_unit_test(test_phone),      cmocka_unit_test(test_date),
	    cmocka_unit_test(test_field_hint), cmocka_unit_test(test_check_names),
	    cmocka_unit_test(test_table),      cmocka_unit_test(test_patterns_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
