/*
 * The Lua script every sandgate node runs in Redis: GCRA over a set of
 * windows, all or nothing, in one atomic call (see sg_redis.h).
 *
 * Precision.  Redis runs Lua 5.1, whose only number is a double: integers
 * past 2^53 are rounded, and a TAT in nanoseconds since 1970 (about 1.8e18)
 * is well past that.  So every time in the script is an exact pair (s, ns)
 * with 0 <= ns < 1e9, and each part stays below 2^53 for any T and
 * reserve a uint64_t holds and any burst up to SG_REDIS_BURST_MAX: the
 * largest product is cost * T's seconds, 1e5 * 1.8e10.  A TAT is stored as the
 * decimal count of nanoseconds, exact, readable with redis-cli, and split
 * back into its pair on load (the last nine digits are the ns part).  The
 * one division (whole units left) is estimated in floating point and then
 * corrected with exact pair arithmetic.  Redis TIME has microsecond
 * resolution, so `now` always ends in 000 ns.
 *
 * The decision is sg_gcra_decide_reserved's, step by step, including its
 * saturation of (burst - cost) * T at 2^64 - 1 ns, so the two agree on the
 * same inputs.  One guard is not copied: sg_gcra refuses for good a take
 * whose TAT would pass 2^64 ns on its own clock; pairs have no such edge.
 *
 * Replies: integers stay below 2^53 (Redis truncates Lua numbers to
 * integers), so every time goes back as its pair too.
 *
 * Numbers are passed to redis.call as strings made with %d: Redis would
 * format a Lua number like 1.795740448941311e+18.
 */
#include "throttle/sg_redis.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

/* clang-format off */
const char sg_redis_script[] =
"-- sandgate GCRA, all or nothing.  KEYS: one bucket per window.\n"
"-- ARGV[1] mode: d decide, r refund, c charge; ARGV[2] cost; then six per\n"
"-- window: T s, T ns, burst, reserve s, reserve ns, shadow (1 or 0).\n"
"local B = 1000000000\n"
"local UH, UL = 18446744073, 709551615 -- 2^64 - 1 ns, where sg_gcra saturates\n"
"local MARGIN_MS, MAX_MS = 1000, 1000000000000000\n"
"local floor = math.floor\n"
"local function norm(h, l)\n"
"  local c = floor(l / B)\n"
"  l = l - c * B\n"
"  if l < 0 then c, l = c - 1, l + B elseif l >= B then c, l = c + 1, l - B end\n"
"  return h + c, l\n"
"end\n"
"local function less(ah, al, bh, bl) return ah < bh or (ah == bh and al < bl) end\n"
"local function add(ah, al, bh, bl) return norm(ah + bh, al + bl) end\n"
"local function sub(ah, al, bh, bl) return norm(ah - bh, al - bl) end\n"
"local function mul(h, l, k) return norm(h * k, l * k) end\n"
"local function str(h, l)\n"
"  if h > 0 then return string.format('%d%09d', h, l) end\n"
"  return string.format('%d', l)\n"
"end\n"
"local t = redis.call('TIME')\n"
"local nh, nl = tonumber(t[1]), tonumber(t[2]) * 1000\n"
"local mode, cost, n = ARGV[1], tonumber(ARGV[2]), #KEYS\n"
"local function arg(i, k) return tonumber(ARGV[2 + 6 * (i - 1) + k]) end\n"
"-- A missing key (or one that is not a number) is a full bucket.\n"
"local function stored(i)\n"
"  local v = redis.call('GET', KEYS[i])\n"
"  if not v then return 0, 0 end\n"
"  return tonumber(string.sub(v, 1, -10)) or 0, tonumber(string.sub(v, -9)) or 0\n"
"end\n"
"-- Keeps a TAT `ah, al` ahead of now; the key expires once the bucket is full.\n"
"local function store(i, th, tl, ah, al)\n"
"  local ms = ah * 1000 + math.ceil(al / 1000000) + MARGIN_MS\n"
"  if ms > MAX_MS then ms = MAX_MS end\n"
"  redis.call('SET', KEYS[i], str(th, tl), 'PX', string.format('%d', ms))\n"
"end\n"
"-- k - ceil(used / T), at least 0: units_left in sg_gcra.c.\n"
"local function units_left(k, uh, ul, th, tl)\n"
"  if uh == 0 and ul == 0 then return k end -- a full bucket, the common case\n"
"  local kh, kl = mul(th, tl, k)\n"
"  if not less(uh, ul, kh, kl) then return 0 end\n"
"  local q = floor((uh * B + ul) / (th * B + tl))\n"
"  if q > k then q = k elseif q < 0 then q = 0 end\n"
"  local ph, pl = mul(th, tl, q)\n"
"  while less(uh, ul, ph, pl) do q = q - 1; ph, pl = sub(ph, pl, th, tl) end\n"
"  local xh, xl = add(ph, pl, th, tl)\n"
"  while not less(uh, ul, xh, xl) do\n"
"    q = q + 1; ph, pl = xh, xl; xh, xl = add(xh, xl, th, tl)\n"
"  end\n"
"  if less(ph, pl, uh, ul) then q = q + 1 end\n"
"  return k - q\n"
"end\n"
"-- One window at `c` units: sg_gcra_decide_reserved, step by step.\n"
"-- {allowed, remaining, retry s, retry ns, reset s, reset ns, new TAT s, ns};\n"
"-- retry s = -1 means never.  new TAT is nil when nothing is to be written.\n"
"local function decide(i, c)\n"
"  local th, tl, burst = arg(i, 1), arg(i, 2), arg(i, 3)\n"
"  local sh, sl = stored(i)\n"
"  if less(sh, sl, nh, nl) then sh, sl = nh, nl end\n"
"  local uh, ul = sub(sh, sl, nh, nl)\n"
"  if c == 0 then return {1, units_left(burst, uh, ul, th, tl), 0, 0, uh, ul} end\n"
"  if c > burst then return {0, units_left(burst, uh, ul, th, tl), -1, 0, uh, ul} end\n"
"  local rh, rl = mul(th, tl, burst - c)\n"
"  if less(UH, UL, rh, rl) then rh, rl = UH, UL end\n"
"  if less(arg(i, 4), arg(i, 5), rh, rl) then\n"
"    rh, rl = sub(rh, rl, arg(i, 4), arg(i, 5))\n"
"  else\n"
"    rh, rl = 0, 0\n"
"  end\n"
"  if less(rh, rl, uh, ul) then\n"
"    local wh, wl = sub(uh, ul, rh, rl)\n"
"    return {0, units_left(burst, uh, ul, th, tl), wh, wl, uh, ul}\n"
"  end\n"
"  local ch, cl = mul(th, tl, c)\n"
"  if less(UH, UL, ch, cl) then return {0, units_left(burst, uh, ul, th, tl), -1, 0, uh, ul} end\n"
"  local eh, el = add(uh, ul, ch, cl)\n"
"  local res = {1, units_left(burst - c, uh, ul, th, tl), 0, 0, eh, el}\n"
"  res[7], res[8] = add(sh, sl, ch, cl)\n"
"  return res\n"
"end\n"
"if mode == 'r' or mode == 'c' then\n"
"  for i = 1, n do\n"
"    local sh, sl = stored(i)\n"
"    local ch, cl = mul(arg(i, 1), arg(i, 2), cost)\n"
"    if mode == 'r' then\n"
"      sh, sl = sub(sh, sl, ch, cl)\n"
"    else\n"
"      if less(sh, sl, nh, nl) then sh, sl = nh, nl end\n"
"      sh, sl = add(sh, sl, ch, cl)\n"
"    end\n"
"    if less(nh, nl, sh, sl) then\n"
"      local ah, al = sub(sh, sl, nh, nl)\n"
"      store(i, sh, sl, ah, al)\n"
"    else\n"
"      redis.call('DEL', KEYS[i]) -- at or before now: a full bucket\n"
"    end\n"
"  end\n"
"  return n\n"
"end\n"
"local res, ok = {}, 1\n"
"for i = 1, n do\n"
"  if arg(i, 6) == 0 then\n"
"    res[i] = decide(i, cost)\n"
"    if res[i][1] == 0 then ok = 0 end\n"
"  end\n"
"end\n"
"for i = 1, n do\n"
"  if arg(i, 6) == 0 and ok == 1 and res[i][7] then\n"
"    store(i, res[i][7], res[i][8], res[i][5], res[i][6])\n"
"  end\n"
"end\n"
"-- Shadow windows see only admitted calls; on a refused one they report their standing.\n"
"for i = 1, n do\n"
"  if arg(i, 6) ~= 0 then\n"
"    res[i] = decide(i, ok == 1 and cost or 0)\n"
"    if res[i][7] then store(i, res[i][7], res[i][8], res[i][5], res[i][6]) end\n"
"  end\n"
"end\n"
"local out = {ok, nh, nl}\n"
"for i = 1, n do\n"
"  for k = 1, 6 do out[#out + 1] = res[i][k] end\n"
"end\n"
"return out\n";
/* clang-format on */

/*
 * The calling convention, next to the Lua that defines it.  Arguments:
 * EVALSHA sha n key... mode cost, then per window T s, T ns, burst,
 * reserve s, reserve ns, shadow.  Reply: {ok, now s, now ns}, then per
 * window {allowed, remaining, retry s, retry ns, reset s, reset ns}.
 */
#define NS_PER_S 1000000000ull

static void
add_str(struct sg_redis_args *a, const char *s, size_t len)
{
	a->argv[a->argc] = s;
	a->len[a->argc++] = len;
}

static void
add_u64(struct sg_redis_args *a, uint64_t v)
{
	char digits[20];
	size_t n = 0;
	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	char *out = a->text + a->used;
	for (size_t i = 0; i < n; i++)
		out[i] = digits[n - 1 - i];
	add_str(a, out, n);
	a->used += n;
}

static void
add_key(struct sg_redis_args *a, const char *prefix, uint64_t key)
{
	static const char hex[] = "0123456789abcdef";
	size_t plen = strlen(prefix);
	char *out = a->text + a->used;
	memcpy(out, prefix, plen);
	for (int i = 0; i < 16; i++)
		out[plen + (size_t)i] = hex[(key >> (60 - 4 * i)) & 0xf];
	add_str(a, out, plen + 16);
	a->used += plen + 16;
}

/* The defaults sg_gcra_decide_reserved applies, so both engines read a window alike. */
static uint64_t
emission(const struct sg_redis_window *w)
{
	return w->emission_ns ? w->emission_ns : 1;
}

static uint32_t
burst(const struct sg_redis_window *w)
{
	return w->burst ? w->burst : 1;
}

void
sg_redis_script_load(struct sg_redis_args *a)
{
	a->argc = 0;
	add_str(a, "SCRIPT", 6);
	add_str(a, "LOAD", 4);
	add_str(a, sg_redis_script, strlen(sg_redis_script));
}

void
sg_redis_script_args(struct sg_redis_args *a, const char *sha, const char *prefix, char mode,
                     const struct sg_redis_window *w, size_t n, uint32_t cost)
{
	a->argc = 0;
	a->used = 0;
	add_str(a, "EVALSHA", 7);
	add_str(a, sha, strlen(sha));
	add_u64(a, n);
	for (size_t i = 0; i < n; i++)
		add_key(a, prefix, w[i].key);
	add_str(a, mode == 'r' ? "r" : mode == 'c' ? "c" : "d", 1);
	add_u64(a, cost);
	for (size_t i = 0; i < n; i++) {
		add_u64(a, emission(&w[i]) / NS_PER_S);
		add_u64(a, emission(&w[i]) % NS_PER_S);
		add_u64(a, burst(&w[i]));
		add_u64(a, w[i].reserve_ns / NS_PER_S);
		add_u64(a, w[i].reserve_ns % NS_PER_S);
		add_str(a, w[i].shadow ? "1" : "0", 1);
	}
}

/* hi * 1e9 + lo from the script's pairs, saturating; a negative hi means never. */
static int
join_pair(const redisReply *hi, const redisReply *lo, uint64_t *out)
{
	if (lo->integer < 0 || (uint64_t)lo->integer >= NS_PER_S)
		return -1;
	if (hi->integer < 0 ||
	    (uint64_t)hi->integer > (UINT64_MAX - (uint64_t)lo->integer) / NS_PER_S)
		*out = UINT64_MAX;
	else
		*out = (uint64_t)hi->integer * NS_PER_S + (uint64_t)lo->integer;
	return 0;
}

bool
sg_redis_script_usable(const struct sg_redis_window *w, size_t n)
{
	if (n == 0 || n > SG_REDIS_WINDOWS_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (w[i].burst > SG_REDIS_BURST_MAX)
			return false; /* past this, the script's pairs are no longer exact */
	return true;
}

static int
misshapen(struct sg_redis_reply *out)
{
	snprintf(out->error, sizeof(out->error), "redis: unexpected reply to the throttle script");
	return -1;
}

int
sg_redis_script_reply(const redisReply *r, const struct sg_redis_window *w, size_t n,
                      struct sg_redis_reply *out)
{
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(out->error, sizeof(out->error), "redis: %s", r->str);
		return -1;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 + 6 * n)
		return misshapen(out);
	for (size_t i = 0; i < r->elements; i++)
		if (r->element[i]->type != REDIS_REPLY_INTEGER)
			return misshapen(out);
	redisReply *const *e = r->element;
	out->allowed = e[0]->integer == 1;
	if (join_pair(e[1], e[2], &out->now_ns) != 0)
		return misshapen(out);
	for (size_t i = 0; i < n; i++) {
		redisReply *const *v = e + 3 + 6 * i;
		struct sg_gcra_result *res = &out->res[i];
		res->allowed = v[0]->integer == 1;
		res->limit = burst(&w[i]);
		if (v[1]->integer < 0 || v[1]->integer > res->limit)
			return misshapen(out);
		res->remaining = (uint32_t)v[1]->integer;
		if (join_pair(v[2], v[3], &res->retry_after_ns) != 0 ||
		    join_pair(v[4], v[5], &res->reset_ns) != 0)
			return misshapen(out);
	}
	out->n = (uint8_t)n;
	return 0;
}
