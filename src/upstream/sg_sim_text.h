/*
 * sg_sim_text: the simulator's strings.  Realistic text chosen by the
 * property's format, else by its name ("created_at" is a time, "email" an
 * address, "contact_id" an id), fitted to the schema's lengths.  Every
 * draw comes from the caller's generator, so the text is as repeatable as
 * the rest of the output.  All text is ASCII: bytes are characters.
 */
#ifndef SG_SIM_TEXT_H
#define SG_SIM_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sg_rng.h"

enum sg_sim_kind {
	SG_SIM_WORDS,
	SG_SIM_SENTENCE,
	SG_SIM_TITLE,
	SG_SIM_ID,
	SG_SIM_EMAIL,
	SG_SIM_FULLNAME,
	SG_SIM_FIRST,
	SG_SIM_LAST,
	SG_SIM_USER,
	SG_SIM_COMPANY,
	SG_SIM_PHONE,
	SG_SIM_DATETIME,
	SG_SIM_DATE,
	SG_SIM_TIME,
	SG_SIM_UUID,
	SG_SIM_URI,
	SG_SIM_HOST,
	SG_SIM_IPV4,
	SG_SIM_STATUS,
	SG_SIM_COUNTRY,
	SG_SIM_CITY,
	SG_SIM_CURRENCY,
};

/* Longest text sg_sim_text writes, before fitting. */
#define SG_SIM_TEXT_MAX 255

/* A number in [0, n); n <= 1 takes no draw.  Modulo bias is harmless in synthetic data. */
static inline uint64_t
sg_sim_below(struct sg_rng *r, uint64_t n)
{
	return n > 1 ? sg_rng_next(r) % n : 0;
}

/* "id", "contact_id" and "contactId" name ids; "paid" and "valid" do not.  NULL is no name. */
bool sg_sim_is_id_name(const char *name);

/*
 * The kind of text for a string with `format` and property `name` (either
 * may be NULL); the format wins, so an "id" with format uuid is a uuid.
 * *checked says whether the format is one the validator enforces (email,
 * date-time, date, uri, uuid), whose shape fitting must keep.
 */
enum sg_sim_kind sg_sim_kind_of(const char *format, const char *name, bool *checked);

/*
 * Writes text of `kind` for a property called `name` into `out` (room for
 * SG_SIM_TEXT_MAX + 1 bytes) and returns its length.  `salt` names the
 * operation ("crm.create_contact"), which tags bare ids ("cnt_...").
 */
size_t sg_sim_text(struct sg_rng *r, enum sg_sim_kind kind, const char *name, const char *salt,
                   char *out);

/*
 * Fits the `len` bytes of text at `buf` (room for `room` bytes, room >=
 * lo + 32) to between lo and hi characters: padded with words and cut, or,
 * when `checked`, changed only where the kind's format allows (an
 * address's local part, a URI's path).  The new length, or -1 when it
 * cannot fit.
 */
long sg_sim_fit(struct sg_rng *r, enum sg_sim_kind kind, bool checked, char *buf, size_t len,
                size_t room, uint64_t lo, uint64_t hi);

/*
 * Same shape, new characters: letters stay letters, digits stay digits,
 * and a tag such as "ct_" stays as it is, so an example's id still reads
 * like the example's (and usually still matches its pattern).  Writes `n`
 * bytes of `s` (NUL-terminated; a NUL inside ends the tag) to `out`.
 */
size_t sg_sim_reroll(struct sg_rng *r, const char *s, size_t n, char *out);

#endif
