/*
 * The one C++ file: simdjson's DOM parser and RapidJSON's Writer behind the
 * C interface in sg_json.h.  No exception crosses it: it is built without
 * exceptions, simdjson reports through error codes, RapidJSON throws none,
 * and memory is taken with malloc and checked.
 */
#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

#include <simdjson.h>

/* A misused writer is a bug in the gateway: stop rather than emit broken JSON. */
#define RAPIDJSON_ASSERT(x)                                                                        \
	do {                                                                                       \
		if (!(x))                                                                          \
			std::abort();                                                              \
	} while (0)
#include <rapidjson/encodedstream.h>
#include <rapidjson/error/error.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/writer.h>

#include "core/sg_slab.h"
#include "json/sg_json.h"

using namespace simdjson;

static_assert(sizeof(dom::element) == sizeof(sg_json_val), "sg_json_val holds a dom::element");
static_assert(std::is_trivially_copyable<dom::element>::value, "a dom::element is copied as bytes");

static dom::element
elem(sg_json_val v)
{
	dom::element e;
	std::memcpy(static_cast<void *>(&e), &v, sizeof e);
	return e;
}

static sg_json_val
val(dom::element e)
{
	sg_json_val v;
	std::memcpy(&v, static_cast<const void *>(&e), sizeof v);
	return v;
}

/* ---- the thread's parser ------------------------------------------------ */

namespace {

struct key_ref {
	const char *s;
	size_t len;
};

/* One step of the way from the root to the value the walk is at. */
struct path_step {
	const char *key; /* NULL: an array element */
	size_t len;
	size_t index;
};

/* Object members beyond this are checked for duplicates by sorting, not pairwise. */
constexpr size_t PAIRWISE_MAX = 8;

struct thread_parser {
	dom::parser parser;
	char *input = nullptr; /* the body, copied with SIMDJSON_PADDING readable after it */
	size_t input_cap = 0;
	key_ref *keys = nullptr; /* scratch for the duplicate check */
	size_t keys_cap = 0;
	path_step *path = nullptr; /* the walk's way down, max depth + 1 steps */
	size_t path_cap = 0;
	uint64_t generation = 0;
	size_t depth_cap = 0;

	thread_parser() = default;
	thread_parser(const thread_parser &) = delete;
	thread_parser &operator=(const thread_parser &) = delete;
	~thread_parser()
	{
		std::free(input);
		std::free(keys);
		std::free(path);
	}
};

thread_local thread_parser tp;

/* The walk that checks what simdjson lets through. */
struct walk {
	size_t max_depth;
	path_step *path; /* max_depth + 1 steps */
	size_t depth;
	sg_json_error *err;
	enum sg_json_rc rc;
};

} // namespace

static bool
grow(void **p, size_t *cap, size_t want, size_t unit)
{
	if (want <= *cap)
		return true;
	size_t n = *cap ? *cap : 16;
	while (n < want)
		n *= 2;
	void *q = std::realloc(*p, n * unit);
	if (q == nullptr)
		return false;
	*p = q;
	*cap = n;
	return true;
}

static void
put_pointer(const walk &w, char *out, size_t size)
{
	size_t at = 0;
	auto put = [&](char c) {
		if (at + 1 < size)
			out[at++] = c;
	};
	for (size_t i = 0; i < w.depth; i++) {
		const path_step &s = w.path[i];
		put('/');
		if (s.key == nullptr) {
			char num[24];
			int n = std::snprintf(num, sizeof num, "%zu", s.index);
			for (int j = 0; j < n; j++)
				put(num[j]);
			continue;
		}
		for (size_t j = 0; j < s.len; j++) { /* RFC 6901: ~ is ~0 and / is ~1 */
			if (s.key[j] == '~' || s.key[j] == '/') {
				put('~');
				put(s.key[j] == '~' ? '0' : '1');
			} else {
				put(s.key[j]);
			}
		}
	}
	out[at] = '\0';
}

/* Stops the walk with `rc`; the message is prefixed with where the walk stands. */
__attribute__((format(printf, 3, 4))) static bool
refuse(walk &w, enum sg_json_rc rc, const char *fmt, ...)
{
	w.rc = rc;
	if (w.err == nullptr)
		return false;
	put_pointer(w, w.err->pointer, sizeof w.err->pointer);
	int n = std::snprintf(w.err->message, sizeof w.err->message, "at %s: ",
	                      w.err->pointer[0] ? w.err->pointer : "the top level");
	va_list ap;
	va_start(ap, fmt);
	std::vsnprintf(w.err->message + n, sizeof w.err->message - (size_t)n, fmt, ap);
	va_end(ap);
	return false;
}

static bool
same_key(const key_ref &a, const key_ref &b)
{
	return a.len == b.len && std::memcmp(a.s, b.s, a.len) == 0;
}

static bool
key_less(const key_ref &a, const key_ref &b)
{
	if (a.len != b.len)
		return a.len < b.len;
	return std::memcmp(a.s, b.s, a.len) < 0;
}

/* The first key that appears twice in `obj`, or NULL. */
static const key_ref *
find_duplicate(dom::object obj, size_t n, key_ref *found)
{
	key_ref small[PAIRWISE_MAX];
	key_ref *k = small;
	if (n > PAIRWISE_MAX) {
		if (!grow(reinterpret_cast<void **>(&tp.keys), &tp.keys_cap, n, sizeof(key_ref)))
			return nullptr; /* the caller has checked memory first */
		k = tp.keys;
	}
	size_t i = 0;
	for (auto it = obj.begin(); it != obj.end(); ++it)
		k[i++] = key_ref{it.key_c_str(), it.key_length()};
	if (n <= PAIRWISE_MAX) {
		for (size_t a = 0; a < n; a++)
			for (size_t b = a + 1; b < n; b++)
				if (same_key(k[a], k[b]))
					return &(*found = k[a]);
		return nullptr;
	}
	std::sort(k, k + n, key_less);
	for (size_t a = 1; a < n; a++)
		if (same_key(k[a - 1], k[a]))
			return &(*found = k[a]);
	return nullptr;
}

static bool check(walk &w, dom::element e);

static bool
check_string(walk &w, const char *s, size_t len, const char *what)
{
	if (std::memchr(s, '\0', len) == nullptr)
		return true;
	return refuse(w, SG_JSON_MALFORMED,
	              "%s contains \\u0000, which the gateway does not accept; remove it", what);
}

static bool
check_object(walk &w, dom::object obj)
{
	size_t n = obj.size();
	if (n > PAIRWISE_MAX &&
	    !grow(reinterpret_cast<void **>(&tp.keys), &tp.keys_cap, n, sizeof(key_ref))) {
		w.rc = SG_JSON_NO_MEMORY;
		return false;
	}
	key_ref dup;
	if (find_duplicate(obj, n, &dup) != nullptr)
		return refuse(w, SG_JSON_MALFORMED, "the key \"%.*s\" appears twice; send each key once",
		              dup.len > 64 ? 64 : (int)dup.len, dup.s);
	for (auto it = obj.begin(); it != obj.end(); ++it) {
		w.path[w.depth] = path_step{it.key_c_str(), it.key_length(), 0};
		w.depth++;
		bool ok = check_string(w, it.key_c_str(), it.key_length(), "a key") &&
		          check(w, it.value());
		w.depth--;
		if (!ok)
			return false;
	}
	return true;
}

static bool
check_array(walk &w, dom::array arr)
{
	size_t i = 0;
	for (dom::element child : arr) {
		w.path[w.depth] = path_step{nullptr, 0, i++};
		w.depth++;
		bool ok = check(w, child);
		w.depth--;
		if (!ok)
			return false;
	}
	return true;
}

/* Depth here counts containers: the root object is at depth 1. */
static bool
check(walk &w, dom::element e)
{
	dom::object obj;
	dom::array arr;
	std::string_view s;
	switch (e.type()) {
	case dom::element_type::OBJECT:
	case dom::element_type::ARRAY:
		if (w.depth + 1 > w.max_depth)
			return refuse(w, SG_JSON_TOO_DEEP, "nested more deeply than allowed");
		if (e.get_object().get(obj) == SUCCESS)
			return check_object(w, obj);
		return e.get_array().get(arr) == SUCCESS && check_array(w, arr);
	case dom::element_type::STRING:
		return e.get_string().get(s) != SUCCESS ||
		       check_string(w, s.data(), s.size(), "the string");
	default:
		return true;
	}
}

/* RapidJSON's finding in words for someone who may not write JSON every day. */
static const char *
reader_words(rapidjson::ParseErrorCode code)
{
	switch (code) {
	case rapidjson::kParseErrorDocumentEmpty:
		return "the body is empty or only spaces; send a JSON value such as {}";
	case rapidjson::kParseErrorDocumentRootNotSingular:
		return "more follows the JSON value; send exactly one value";
	case rapidjson::kParseErrorObjectMissName:
		return "an object member needs a name in double quotes";
	case rapidjson::kParseErrorObjectMissColon:
		return "a colon ':' is missing after a member name";
	case rapidjson::kParseErrorObjectMissCommaOrCurlyBracket:
		return "a comma ',' or a closing '}' is missing after an object member";
	case rapidjson::kParseErrorArrayMissCommaOrSquareBracket:
		return "a comma ',' or a closing ']' is missing after an array element";
	case rapidjson::kParseErrorStringUnicodeEscapeInvalidHex:
		return "a \\u escape needs four hexadecimal digits";
	case rapidjson::kParseErrorStringUnicodeSurrogateInvalid:
		return "a \\u escape is half of a surrogate pair without its other half";
	case rapidjson::kParseErrorStringEscapeInvalid:
		return "a backslash escape is not one JSON has (\\\" \\\\ \\/ \\b \\f \\n \\r \\t "
		       "\\uXXXX)";
	case rapidjson::kParseErrorStringMissQuotationMark:
		return "a string is not closed with a double quote, or holds a raw control "
		       "character (write \\n, \\t or \\u00XX instead)";
	case rapidjson::kParseErrorStringInvalidEncoding:
		return "the body is not valid UTF-8";
	case rapidjson::kParseErrorNumberTooBig:
	case rapidjson::kParseErrorNumberMissFraction:
	case rapidjson::kParseErrorNumberMissExponent:
		return "a number is malformed or out of range";
	default:
		return "this is not a JSON value (strings need double quotes; true, false and null "
		       "are lower case)";
	}
}

/* simdjson's finding, when RapidJSON found nothing to point at. */
static const char *
parser_words(error_code code)
{
	switch (code) {
	case NUMBER_ERROR:
	case NUMBER_OUT_OF_RANGE:
		return "a number is out of range: integers must fit in 64 bits and other numbers "
		       "must be finite";
	case STRING_ERROR:
		return "a string has an invalid escape or a lone surrogate";
	case UTF8_ERROR:
		return "the body is not valid UTF-8";
	default:
		return error_message(code);
	}
}

/* The first error as a person needs it: RapidJSON finds where simdjson only says what. */
static void
explain(const char *text, size_t len, error_code code, sg_json_error *err)
{
	struct quiet : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, quiet> {
	};
	rapidjson::MemoryStream ms(text, len);
	rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(ms);
	rapidjson::Reader reader;
	quiet handler;
	rapidjson::ParseResult r =
	    reader.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(
		in, handler);
	err->pointer[0] = '\0';
	if (!r.IsError()) {
		std::snprintf(err->message, sizeof err->message, "%s", parser_words(code));
		return;
	}
	bool at_end = r.Offset() >= len && r.Code() != rapidjson::kParseErrorDocumentEmpty;
	size_t at = at_end && len > 0 ? len - 1 : r.Offset();
	size_t line = 1, column = 1;
	for (size_t i = 0; i < at && i < len; i++, column++)
		if (text[i] == '\n')
			line++, column = 0;
	std::snprintf(err->message, sizeof err->message, "line %zu, column %zu: %s", line, column,
	              at_end ? "the body ends before its JSON value is complete"
	                     : reader_words(r.Code()));
}

static bool
prepare(size_t len, size_t max_depth)
{
	if (!grow(reinterpret_cast<void **>(&tp.input), &tp.input_cap, len + SIMDJSON_PADDING, 1))
		return false;
	/*
	 * simdjson counts its own way; the walk enforces the cap exactly.  So a
	 * parser allocated for a deeper cap serves a shallower one as it is:
	 * callers with different caps on one thread (a body, then a schema
	 * check's jansson value) would otherwise reallocate on every parse.
	 */
	size_t depth = max_depth + 2;
	if (tp.depth_cap >= depth)
		return true;
	size_t cap = tp.parser.capacity() > len ? tp.parser.capacity() : len;
	if (tp.parser.allocate(cap ? cap : 64, depth) != SUCCESS)
		return false;
	tp.depth_cap = depth;
	return true;
}

extern "C" enum sg_json_rc
sg_json_parse(const char *text, size_t len, int max_depth, sg_json_doc *doc, sg_json_error *err)
{
	sg_json_error scratch;
	if (err == nullptr)
		err = &scratch;
	err->message[0] = err->pointer[0] = '\0';
	size_t depth = max_depth > 0 ? (size_t)max_depth : 1;
	/* A raw NUL ends the text for some readers: name it rather than read past it. */
	const char *nul = static_cast<const char *>(std::memchr(text, '\0', len));
	if (nul != nullptr) {
		std::snprintf(err->message, sizeof err->message,
		              "byte %zu is a NUL character; JSON text never contains one, so send "
		              "the body without it (write \\u0000 inside a string)",
		              (size_t)(nul - text));
		return SG_JSON_MALFORMED;
	}
	if (!prepare(len, depth))
		return SG_JSON_NO_MEMORY;
	std::memcpy(tp.input, text, len);
	std::memset(tp.input + len, 0, SIMDJSON_PADDING);
	tp.generation++;
	dom::element root;
	error_code code = tp.parser.parse(tp.input, len, false).get(root);
	if (code == MEMALLOC)
		return SG_JSON_NO_MEMORY;
	if (code == DEPTH_ERROR) {
		std::snprintf(err->message, sizeof err->message,
		              "the body nests objects and arrays more than %zu levels deep", depth);
		return SG_JSON_TOO_DEEP;
	}
	if (code != SUCCESS) {
		explain(text, len, code, err);
		return SG_JSON_MALFORMED;
	}
	if (!grow(reinterpret_cast<void **>(&tp.path), &tp.path_cap, depth + 1, sizeof(path_step)))
		return SG_JSON_NO_MEMORY;
	walk w{depth, tp.path, 0, err, SG_JSON_OK};
	if (!check(w, root)) {
		if (w.rc == SG_JSON_TOO_DEEP)
			std::snprintf(err->message, sizeof err->message,
			              "the body nests objects and arrays more than %zu levels deep",
			              depth);
		return w.rc;
	}
	doc->root = val(root);
	doc->parser = &tp;
	doc->generation = tp.generation;
	return SG_JSON_OK;
}

extern "C" void
sg_json_thread_release(void)
{
	std::free(tp.input);
	std::free(tp.keys);
	std::free(tp.path);
	tp.input = nullptr;
	tp.keys = nullptr;
	tp.path = nullptr;
	tp.input_cap = tp.keys_cap = tp.path_cap = 0;
	tp.parser = dom::parser();
	tp.depth_cap = 0;
	tp.generation++;
}

extern "C" bool
sg_json_utf8_valid(const char *s, size_t len)
{
	return simdjson::validate_utf8(s, len);
}

extern "C" bool
sg_json_doc_live(const sg_json_doc *doc)
{
	return doc->parser == &tp && doc->generation == tp.generation;
}

/* ---- reading values ----------------------------------------------------- */

extern "C" enum sg_json_type
sg_json_type(sg_json_val v)
{
	switch (elem(v).type()) {
	case dom::element_type::ARRAY:
		return SG_JSON_ARRAY;
	case dom::element_type::OBJECT:
		return SG_JSON_OBJECT;
	case dom::element_type::INT64:
		return SG_JSON_INT;
	case dom::element_type::UINT64:
		return SG_JSON_UINT;
	case dom::element_type::DOUBLE:
		return SG_JSON_DOUBLE;
	case dom::element_type::STRING:
		return SG_JSON_STRING;
	case dom::element_type::BOOL:
		return SG_JSON_BOOL;
	default:
		return SG_JSON_NULL;
	}
}

extern "C" bool
sg_json_is_number(sg_json_val v)
{
	enum sg_json_type t = sg_json_type(v);
	return t == SG_JSON_INT || t == SG_JSON_UINT || t == SG_JSON_DOUBLE;
}

extern "C" bool
sg_json_bool(sg_json_val v)
{
	bool b = false;
	return elem(v).get_bool().get(b) == SUCCESS && b;
}

extern "C" int64_t
sg_json_int(sg_json_val v)
{
	int64_t i = 0;
	return elem(v).get_int64().get(i) == SUCCESS ? i : 0;
}

extern "C" uint64_t
sg_json_uint(sg_json_val v)
{
	uint64_t u = 0;
	return elem(v).get_uint64().get(u) == SUCCESS ? u : 0;
}

extern "C" double
sg_json_double(sg_json_val v)
{
	dom::element e = elem(v);
	double d = 0;
	if (e.type() == dom::element_type::INT64)
		return (double)sg_json_int(v);
	if (e.type() == dom::element_type::UINT64)
		return (double)sg_json_uint(v);
	return e.get_double().get(d) == SUCCESS ? d : 0;
}

extern "C" const char *
sg_json_string(sg_json_val v, size_t *len)
{
	const char *s = nullptr;
	dom::element e = elem(v);
	*len = 0;
	if (e.get_c_str().get(s) != SUCCESS)
		return nullptr;
	*len = e.get_string_length().value_unsafe();
	return s;
}

extern "C" size_t
sg_json_size(sg_json_val v)
{
	dom::element e = elem(v);
	dom::object obj;
	dom::array arr;
	if (e.get_object().get(obj) == SUCCESS)
		return obj.size();
	if (e.get_array().get(arr) == SUCCESS)
		return arr.size();
	return 0;
}

extern "C" bool
sg_json_get(sg_json_val v, const char *key, size_t key_len, sg_json_val *out)
{
	dom::object obj;
	dom::element found;
	if (elem(v).get_object().get(obj) != SUCCESS ||
	    obj.at_key(std::string_view(key, key_len)).get(found) != SUCCESS)
		return false;
	*out = val(found);
	return true;
}

extern "C" bool
sg_json_pointer(sg_json_val v, const char *ptr, sg_json_val *out)
{
	dom::element found;
	if (elem(v).at_pointer(std::string_view(ptr)).get(found) != SUCCESS)
		return false;
	*out = val(found);
	return true;
}

namespace {

struct iter_state {
	bool is_object;
	bool done;
	dom::object::iterator obj, obj_end;
	dom::array::iterator arr, arr_end;
};

} // namespace

static_assert(sizeof(iter_state) <= sizeof(sg_json_iter::state), "sg_json_iter holds the state");
static_assert(std::is_trivially_destructible<iter_state>::value, "an iterator needs no cleanup");

extern "C" void
sg_json_iter_init(sg_json_iter *it, sg_json_val container)
{
	iter_state *s = new (it->state) iter_state();
	dom::element e = elem(container);
	dom::object obj;
	dom::array arr;
	s->done = true;
	if (e.get_object().get(obj) == SUCCESS) {
		s->is_object = true;
		s->obj = obj.begin();
		s->obj_end = obj.end();
		s->done = !(s->obj != s->obj_end);
	} else if (e.get_array().get(arr) == SUCCESS) {
		s->is_object = false;
		s->arr = arr.begin();
		s->arr_end = arr.end();
		s->done = !(s->arr != s->arr_end);
	}
}

extern "C" bool
sg_json_iter_next(sg_json_iter *it, const char **key, size_t *key_len, sg_json_val *v)
{
	iter_state *s = std::launder(reinterpret_cast<iter_state *>(it->state));
	if (s->done)
		return false;
	if (s->is_object) {
		if (key != nullptr)
			*key = s->obj.key_c_str();
		if (key_len != nullptr)
			*key_len = s->obj.key_length();
		*v = val(s->obj.value());
		++s->obj;
		s->done = !(s->obj != s->obj_end);
		return true;
	}
	if (key != nullptr)
		*key = nullptr;
	if (key_len != nullptr)
		*key_len = 0;
	*v = val(*s->arr);
	++s->arr;
	s->done = !(s->arr != s->arr_end);
	return true;
}

/* ---- writing ------------------------------------------------------------ */

namespace {

/* RapidJSON's output stream over an sg_jbuf; a failed growth is sticky. */
struct jbuf_stream {
	typedef char Ch;
	sg_jbuf *b;
	bool failed;

	bool reserve(size_t n)
	{
		if (failed)
			return false;
		if (b->len + n + 1 <= b->cap)
			return true;
		void *p = sg_slab_grow(b->data, &b->cap, b->len + n + 1);
		if (p == nullptr) {
			failed = true;
			return false;
		}
		b->data = static_cast<char *>(p);
		return true;
	}
	void Put(char c)
	{
		if (reserve(1))
			b->data[b->len++] = c;
	}
	void Flush() {}
};

} // namespace

namespace rapidjson {
/* The writer reserves before each token and then writes unchecked, as with StringBuffer. */
template <>
inline void
PutReserve(jbuf_stream &s, size_t count)
{
	s.reserve(count);
}
template <>
inline void
PutUnsafe(jbuf_stream &s, char c)
{
	if (!s.failed)
		s.b->data[s.b->len++] = c;
}
} // namespace rapidjson

namespace {

typedef rapidjson::MemoryPoolAllocator<rapidjson::CrtAllocator> level_pool;
typedef rapidjson::Writer<jbuf_stream, rapidjson::UTF8<>, rapidjson::UTF8<>, level_pool,
                          rapidjson::kWriteValidateEncodingFlag>
    json_writer;

} // namespace

/*
 * Most strings are plain ASCII with nothing to escape.  RapidJSON, told to
 * check encodings, takes them a byte at a time through its UTF-8 validator;
 * this copies each run of such bytes at once (its StringBuffer writer has a
 * SIMD version of the same) and leaves the rest, escapes and multi-byte
 * characters, to the checking loop.  WriteString has reserved room for
 * the whole string before it asks.
 */
namespace rapidjson {
template <>
inline bool
json_writer::ScanWriteUnescapedString(GenericStringStream<UTF8<>> &is, size_t length)
{
	const char *p = is.src_, *end = is.head_ + length, *q = p;
	while (q < end && static_cast<unsigned char>(*q) >= 0x20 &&
	       static_cast<unsigned char>(*q) < 0x80 && *q != '"' && *q != '\\')
		q++;
	if (q > p && !os_->failed) {
		std::memcpy(os_->b->data + os_->b->len, p, static_cast<size_t>(q - p));
		os_->b->len += static_cast<size_t>(q - p);
	}
	is.src_ = q;
	return is.Tell() < length;
}
} // namespace rapidjson

namespace {

/* 32 levels fit the pool's own buffer; deeper output takes heap chunks. */
constexpr size_t LEVELS = 32;

struct jw_impl {
	jbuf_stream out;
	alignas(16) char level_memory[LEVELS * 16 + 64];
	level_pool pool;
	json_writer writer;
	bool failed;

	explicit jw_impl(sg_jbuf *b)
	    : out{b, false}, pool(level_memory, sizeof level_memory), writer(out, &pool, LEVELS),
	      failed(false)
	{
	}
};

} // namespace

static_assert(sizeof(jw_impl) <= SG_JW_STATE, "SG_JW_STATE holds a writer");
static_assert(alignof(jw_impl) <= 16, "sg_jw is aligned for a writer");

static jw_impl *
impl(sg_jw *w)
{
	return std::launder(reinterpret_cast<jw_impl *>(w->state));
}

/* Every write goes through here: a refused token fails the whole value. */
static void
note(sg_jw *w, bool ok)
{
	if (!ok)
		impl(w)->failed = true;
}

#define LIVE(w)                                                                                    \
	do {                                                                                       \
		if (impl(w)->failed || impl(w)->out.failed)                                        \
			return;                                                                    \
	} while (0)

extern "C" void
sg_jw_begin(sg_jw *w, sg_jbuf *out)
{
	new (w->state) jw_impl(out);
}

extern "C" int
sg_jw_end(sg_jw *w)
{
	jw_impl *j = impl(w);
	bool ok = !j->failed && !j->out.failed && j->writer.IsComplete() && j->out.reserve(0);
	if (ok)
		j->out.b->data[j->out.b->len] = '\0';
	j->~jw_impl();
	return ok ? 0 : -1;
}

extern "C" void
sg_jw_object(sg_jw *w)
{
	LIVE(w);
	note(w, impl(w)->writer.StartObject());
}

extern "C" void
sg_jw_object_end(sg_jw *w)
{
	LIVE(w);
	note(w, impl(w)->writer.EndObject());
}

extern "C" void
sg_jw_array(sg_jw *w)
{
	LIVE(w);
	note(w, impl(w)->writer.StartArray());
}

extern "C" void
sg_jw_array_end(sg_jw *w)
{
	LIVE(w);
	note(w, impl(w)->writer.EndArray());
}

extern "C" void
sg_jw_key(sg_jw *w, const char *key, size_t len)
{
	LIVE(w);
	note(w, impl(w)->writer.Key(key, (rapidjson::SizeType)len));
}

extern "C" void
sg_jw_keyz(sg_jw *w, const char *key)
{
	sg_jw_key(w, key, std::strlen(key));
}

extern "C" void
sg_jw_string(sg_jw *w, const char *s, size_t len)
{
	LIVE(w);
	note(w, len <= UINT32_MAX && impl(w)->writer.String(s, (rapidjson::SizeType)len));
}

extern "C" void
sg_jw_stringz(sg_jw *w, const char *s)
{
	sg_jw_string(w, s, std::strlen(s));
}

extern "C" void
sg_jw_int(sg_jw *w, int64_t v)
{
	LIVE(w);
	note(w, impl(w)->writer.Int64(v));
}

extern "C" void
sg_jw_uint(sg_jw *w, uint64_t v)
{
	LIVE(w);
	note(w, impl(w)->writer.Uint64(v));
}

extern "C" void
sg_jw_double(sg_jw *w, double v)
{
	LIVE(w);
	note(w, impl(w)->writer.Double(v));
}

extern "C" void
sg_jw_bool(sg_jw *w, bool v)
{
	LIVE(w);
	note(w, impl(w)->writer.Bool(v));
}

extern "C" void
sg_jw_null(sg_jw *w)
{
	LIVE(w);
	note(w, impl(w)->writer.Null());
}

extern "C" void
sg_jw_raw(sg_jw *w, const char *json, size_t len)
{
	LIVE(w);
	note(w, impl(w)->writer.RawValue(json, len, rapidjson::kObjectType));
}

/* A raw value of no bytes: the writer's separator and count, and the text left to another. */
extern "C" void
sg_jw_slot(sg_jw *w)
{
	LIVE(w);
	note(w, impl(w)->writer.RawValue("", 0, rapidjson::kObjectType));
}

extern "C" bool
sg_jw_failed(const sg_jw *w)
{
	const jw_impl *j = std::launder(reinterpret_cast<const jw_impl *>(w->state));
	return j->failed || j->out.failed;
}

static void
copy_value(sg_jw *w, dom::element e)
{
	std::string_view s;
	dom::object obj;
	dom::array arr;
	switch (e.type()) {
	case dom::element_type::OBJECT:
		if (e.get_object().get(obj) != SUCCESS)
			return;
		sg_jw_object(w);
		for (dom::key_value_pair kv : obj) {
			sg_jw_key(w, kv.key.data(), kv.key.size());
			copy_value(w, kv.value);
		}
		sg_jw_object_end(w);
		return;
	case dom::element_type::ARRAY:
		if (e.get_array().get(arr) != SUCCESS)
			return;
		sg_jw_array(w);
		for (dom::element child : arr)
			copy_value(w, child);
		sg_jw_array_end(w);
		return;
	case dom::element_type::STRING:
		if (e.get_string().get(s) == SUCCESS)
			sg_jw_string(w, s.data(), s.size());
		return;
	case dom::element_type::INT64:
		sg_jw_int(w, e.get_int64().value_unsafe());
		return;
	case dom::element_type::UINT64:
		sg_jw_uint(w, e.get_uint64().value_unsafe());
		return;
	case dom::element_type::DOUBLE:
		sg_jw_double(w, e.get_double().value_unsafe());
		return;
	case dom::element_type::BOOL:
		sg_jw_bool(w, e.get_bool().value_unsafe());
		return;
	default:
		sg_jw_null(w);
	}
}

extern "C" void
sg_jw_value(sg_jw *w, sg_json_val v)
{
	copy_value(w, elem(v));
}

extern "C" void
sg_jbuf_release(sg_jbuf *b)
{
	sg_slab_give(b->data, b->cap);
	b->data = nullptr;
	b->len = b->cap = 0;
}
