#!/usr/bin/python3
"""Instructions (Ir) of a callgrind dump, by module, for bench/profile.sh.

Reads the per-thread files of one callgrind dump (--separate-threads=yes)
and prints, per module (a src/ directory, a library, glibc's malloc, ...):
  - self: the instructions executed in the module's own code;
  - incl: the cost of every call into the module from another module,
    including what it called in turn (a module entered twice on one
    stack, e.g. a callback, is counted twice);
per call, as % of all threads, and as % of the I/O thread(s) and of the
audit writer.  The raw file is read rather than callgrind_annotate's
listing because only the raw file has the calls between modules.

A release build has no debug information, so sandgate's own functions are
placed by name: `nm` over the build's object files (src_<dir>_<file>.o)
says which directory defines each.  A static name defined in several
directories is shown as "src/a|b".  With a build that has debug
information the source file decides.

usage: cg_modules.py --build DIR --calls N FILE...
"""
import argparse
import collections
import glob
import os
import re
import subprocess
import sys

# glibc, by the job a function does (names first; the source file when the
# library has debug information).
LIBC_MALLOC = re.compile(r"^(__libc_)?(malloc|free|calloc|realloc|cfree|memalign|posix_memalign|"
                         r"_int_\w+|malloc_consolidate|tcache\w*|unlink_chunk|arena_\w+|"
                         r"sysmalloc|systrim|__default_morecore|mremap_chunk|munmap_chunk)$")
LIBC_PRINTF = re.compile(r"printf|_IO_|_itoa|__printf_fp|scanf|__strtol|strtol|strtoul|strtod|"
                         r"____strto|strftime|__tz|tzset|gmtime|localtime|__offtime")
LIBC_STRING = re.compile(r"^(__)?(mem|str|stp|wmem|wcs)\w*")
LIBC_THREAD = re.compile(r"pthread|__lll_|futex|sem_")


def libc_module(fn, fl):
    if LIBC_MALLOC.match(fn) or "/malloc/" in fl:
        return "libc malloc/free"
    if LIBC_PRINTF.search(fn) or "/stdio-common/" in fl or "/libio/" in fl or "/time/" in fl:
        return "libc printf/strto/time"
    if LIBC_STRING.match(fn) or "/string/" in fl:
        return "libc string/memory"
    if LIBC_THREAD.search(fn) or "/nptl/" in fl:
        return "libc pthread"
    return "libc other (syscalls, ...)"


LIBS = [("libevent", "libevent"), ("libjansson", "jansson"), ("libsqlite3", "sqlite"),
        ("libsimdjson", "simdjson"), ("libsodium", "libsodium"), ("libfyaml", "libfyaml"),
        ("liblua", "lua"), ("libhiredis", "hiredis"), ("libhs", "vectorscan"),
        ("libstdc++", "libstdc++"), ("libgcc", "libgcc"), ("ld-linux", "ld.so"),
        ("libcurl", "libcurl"), ("libm.", "libm")]


def src_dir(path):
    m = re.search(r"(?:^|/)src/([A-Za-z0-9]+)/", path)
    if m:
        return "src/" + m.group(1)
    if re.search(r"(?:^|/)src/main\.c", path):
        return "src/main.c"
    return None


def object_defs(build):
    """name -> set of src directories, from the build's object files."""
    defs = collections.defaultdict(set)
    objs = glob.glob(os.path.join(build, "**", "*.o"), recursive=True)
    for o in objs:
        base = os.path.basename(o)
        m = re.match(r"^src_([A-Za-z0-9]+)_.*\.o$", base)
        if not m:
            if base.startswith("src_main."):
                where = "src/main.c"
            else:
                continue
        else:
            where = "src/" + m.group(1)
        try:
            out = subprocess.run(["nm", "--defined-only", "-C", o], capture_output=True,
                                 text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            continue
        for line in out.splitlines():
            parts = line.split(None, 2)
            if len(parts) == 3 and parts[1] in "tTwW":
                defs[parts[2]].add(where)
    return defs


class Classifier:
    def __init__(self, build):
        self.defs = object_defs(build)
        self.cache = {}

    def __call__(self, ob, fl, fn):
        key = (ob, fl, fn)
        got = self.cache.get(key)
        if got is None:
            got = self.cache[key] = self.classify(ob, fl, fn)
        return got

    def classify(self, ob, fl, fn):
        obb = os.path.basename(ob)
        d = src_dir(fl)
        if d:
            return d
        if "rapidjson" in fl or "rapidjson::" in fn:
            return "rapidjson"
        if "simdjson" in fl or "simdjson::" in fn:
            return "simdjson"
        if obb.startswith("libc.so") or obb.startswith("libc-"):
            return libc_module(fn, fl)
        for prefix, name in LIBS:
            if obb.startswith(prefix):
                return name
        if obb == "sandgate" or obb.startswith("bench_"):
            name = fn.split("(")[0].split("'")[0]
            where = self.defs.get(fn) or self.defs.get(name)
            if where:
                return "|".join(sorted(where)) if len(where) > 1 else next(iter(where))
            if fn.startswith("0x"):
                return "sandgate (unnamed code)"
            return "sandgate (other: %s)" % name
        return obb or "???"


NAMED = re.compile(r"^\((\d+)\)(?: (.*))?$")


class Names:
    """callgrind's name compression, shared by all files of one dump."""

    def __init__(self):
        self.tables = {"ob": {}, "fl": {}, "fn": {}}

    def define(self, kind, value):
        m = NAMED.match(value)
        if m and m.group(2) is not None:
            self.tables[kind][m.group(1)] = m.group(2)

    def get(self, kind, value):
        m = NAMED.match(value)
        if not m:
            return value
        if m.group(2) is not None:
            return m.group(2)
        return self.tables[kind].get(m.group(1), "(%s)" % m.group(1))


KIND = {"ob": "ob", "cob": "ob", "fl": "fl", "fi": "fl", "fe": "fl", "cfi": "fl", "cfl": "fl",
        "fn": "fn", "cfn": "fn"}
SPEC = re.compile(r"^(ob|cob|fl|fi|fe|cfi|cfl|fn|cfn)=(.*)$")


def collect_names(files):
    names = Names()
    for path in files:
        with open(path, errors="replace") as f:
            for line in f:
                m = SPEC.match(line)
                if m:
                    names.define(KIND[m.group(1)], m.group(2).rstrip("\n"))
    return names


def read_thread(path, names, classify):
    """-> (self Ir by module, incl Ir by module, total Ir, set of function names)"""
    self_ir = collections.Counter()
    incl_ir = collections.Counter()
    fn_ir = collections.Counter()
    fns = set()
    npos = 1
    ob = fl = fi = fn = ""
    cob = cfl = cfn = None
    in_call = False
    total = 0
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line[0] == "#":
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                fields = line.split()
                ir = int(fields[npos]) if len(fields) > npos else 0
                if in_call:
                    caller = classify(ob, fi, fn)
                    callee = classify(cob if cob is not None else ob,
                                      cfl if cfl is not None else fi, cfn)
                    if callee != caller:
                        incl_ir[callee] += ir
                    in_call = False
                    cob = cfl = cfn = None
                else:
                    mod = classify(ob, fi, fn)
                    self_ir[mod] += ir
                    fn_ir[(mod, fn)] += ir
                    total += ir
                continue
            m = SPEC.match(line)
            if m:
                key, value = m.group(1), names.get(KIND[m.group(1)], m.group(2))
                if key == "ob":
                    ob = value
                elif key == "fl":
                    fl = fi = value
                elif key in ("fi", "fe"):
                    fi = value
                elif key == "fn":
                    fn = value
                    fi = fl
                    fns.add(value)
                elif key == "cob":
                    cob = value
                elif key in ("cfi", "cfl"):
                    cfl = value
                elif key == "cfn":
                    cfn = value
                continue
            if line.startswith("calls="):
                in_call = True
            elif line.startswith("positions:"):
                npos = len(line.split()[1:])
    return self_ir, incl_ir, total, fns, fn_ir


def thread_kind(fns):
    if "writer_main" in fns:
        return "writer"
    if "thread_main" in fns and any(f.startswith("sg_conn_") or f.startswith("sg_http") for f in fns):
        return "io"
    return "other"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--calls", type=int, required=True, help="governed calls in the dump")
    ap.add_argument("--top", type=int, default=20, help="functions listed by self Ir")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    if a.calls <= 0:
        sys.exit("cg_modules.py: no calls were made during the profile")
    classify = Classifier(a.build)
    names = collect_names(a.files)
    selfs = {"all": collections.Counter(), "io": collections.Counter(),
             "writer": collections.Counter(), "other": collections.Counter()}
    incl = collections.Counter()
    totals = collections.Counter()
    fn_all = collections.Counter()
    nthreads = collections.Counter()
    for path in sorted(a.files):
        s, i, t, fns, fn_ir = read_thread(path, names, classify)
        if t == 0:
            continue
        kind = thread_kind(fns)
        nthreads[kind] += 1
        selfs[kind].update(s)
        selfs["all"].update(s)
        incl.update(i)
        totals[kind] += t
        totals["all"] += t
        fn_all.update(fn_ir)

    n = a.calls
    pct = lambda v, t: 100.0 * v / t if t else 0.0
    print("Ir per governed call, %d calls: all threads %.0f; I/O thread(s) %.0f; audit writer %.0f; "
          "other threads %.0f" % (n, totals["all"] / n, totals["io"] / n, totals["writer"] / n,
                                  totals["other"] / n))
    print()
    print("%-30s %10s %7s %7s %7s %8s" % ("module", "self/call", "self%", "incl%", "I/O%", "writer%"))
    for mod, v in selfs["all"].most_common():
        if pct(v, totals["all"]) < 0.05 and pct(incl[mod], totals["all"]) < 0.05:
            continue
        inc = pct(incl[mod], totals["all"])
        print("%-30s %10.0f %6.1f%% %7s %6.1f%% %7.1f%%" % (
            mod, v / n, pct(v, totals["all"]), "%.1f%%" % inc if inc <= 100 else "n/a",
            pct(selfs["io"][mod], totals["io"]), pct(selfs["writer"][mod], totals["writer"])))
    print("%-30s %10.0f %6.1f%%" % ("total", totals["all"] / n, 100.0))
    print()
    print("self: the module's own instructions; self%, I/O% and writer%: of all threads, of the I/O\n"
          "thread(s), of the audit writer.  incl%: calls into the module from other modules, with all\n"
          "they called in turn, of all threads; a module re-entered through callbacks (libevent,\n"
          "src/http) counts once per entry, and n/a stands for over 100%.")
    print()
    print("top %d functions by self Ir (all threads)" % a.top)
    for (mod, fn), v in fn_all.most_common(a.top):
        print("%10.0f/call %5.1f%%  %-24s %s" % (v / n, pct(v, totals["all"]), mod, fn[:90]))


if __name__ == "__main__":
    main()
