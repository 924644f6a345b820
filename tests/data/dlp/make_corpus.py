#!/usr/bin/env python3
"""Writes the labelled DLP corpus: tests/data/dlp/<class>.jsonl.

Every case is written for sandgate by this script (fixed seed, so the
checked-in files are reproducible): no case is copied from another corpus.
One case a line:

    {"text": "...", "field": "member name or empty", "expect": true|false, "note": "..."}

`expect` says whether the built-in rules must find the file's class in
`text`, scanned as the document {"<field or 'text'>": "<text>"}.  Each class
has at least 40 true positives and 40 look-alikes: values shaped like the
class that are not of it (a Luhn-invalid 16-digit number, an order id shaped
like an SSN, an IBAN failing mod-97, a UUID after key=, a base64 blob that
is not a JWT, an order number shaped like a phone number).

Decisions the corpus encodes (for docs/data-protection.md to state):
  - pii.ip: a bare dotted quad whose parts are 0-255 without leading zeros
    is an address, even when it is a four-part version number ("1.2.3.4"):
    the text cannot tell them apart.  A prefixed version ("v1.2.3.4"), a
    part over 255 or with a leading zero, and three-part numbers are not.
  - pii.phone: a bare run of digits is not a phone number (it is far more
    often an order or account number); a phone has a "+" country code or
    the punctuation of a national form.
  - pii.dob: a date is a date of birth only in a field whose name says so
    (birth, dob, born).
  - secret.generic: a UUID, a placeholder, or a value of one character kind
    after key= is not a secret.

Known misses the corpus keeps (each costs its class a little precision):
a malformed IPv6 address ("2001:db8:::1") still yields its valid start, a
date followed by a serial ("1990-05-14-0001") is still a date, and a JWT
with a fourth dotted part still yields its first three: Vectorscan reports
each end of a match, and a pattern cannot look past its own end.

Run: python3 tests/data/dlp/make_corpus.py  (rewrites the .jsonl files here)
"""
import base64
import json
import os
import random
import string

R = random.Random(14)
HERE = os.path.dirname(os.path.abspath(__file__))
ALNUM = string.ascii_letters + string.digits
B64URL = ALNUM + "-_"


def rs(alphabet, n):
    return "".join(R.choice(alphabet) for _ in range(n))


def digits(n):
    return rs(string.digits, n)


def case(text, expect, note, field=""):
    return {"text": text, "field": field, "expect": expect, "note": note}


def pick(seq):
    return R.choice(seq)


NAMES = ["Ana", "Bo", "Chen", "Dara", "Eli", "Farah", "Goran", "Hana", "Ivo", "Jun"]
SENTENCES = [
    "{}",
    "Please use {} for this one.",
    "value: {}",
    "Customer said {} on the call",
    "[{}]",
    "see ({}) below",
    "\"{}\"",
    "{}, thanks",
    "Note from {n}: {} - confirmed",
    "{} was given at checkout",
]


def wrap(v):
    t = pick(SENTENCES)
    return t.replace("{n}", pick(NAMES)).format(v)


# ---------------------------------------------------------------- cards

def luhn_digit(body):
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(num):
    return luhn_digit(num[:-1]) == num[-1]


def card(prefix, length):
    body = prefix + digits(length - len(prefix) - 1)
    return body + luhn_digit(body)


def bad_luhn(num):
    last = str((int(num[-1]) + R.randint(1, 9)) % 10)
    return num[:-1] + last


def group(num, sizes, sep):
    out, i = [], 0
    for s in sizes:
        out.append(num[i:i + s])
        i += s
    if i < len(num):
        out.append(num[i:])
    return sep.join(out)


CARD_KINDS = [
    ("Visa", "4", 16), ("Visa 13", "4", 13), ("Visa 19", "4", 19),
    ("Mastercard", "51", 16), ("Mastercard", "55", 16), ("Mastercard 2-series", "2221", 16),
    ("Mastercard 2-series", "2720", 16), ("Amex", "34", 15), ("Amex", "37", 15),
    ("Discover", "6011", 16), ("Discover", "65", 16), ("JCB", "3530", 16),
    ("Diners", "36", 14), ("UnionPay", "62", 16), ("UnionPay 19", "62", 19),
    ("Maestro", "50", 16),
]


def card_format(num):
    n = len(num)
    f = R.randint(0, 2)
    if n == 15 and f:
        return group(num, [4, 6, 5], " " if f == 1 else "-")
    if n == 14 and f:
        return group(num, [4, 6, 4], " " if f == 1 else "-")
    if n in (16, 19) and f:
        return group(num, [4, 4, 4, 4], " " if f == 1 else "-")
    return num


def cards():
    out = []
    for i in range(48):
        name, prefix, length = CARD_KINDS[i % len(CARD_KINDS)]
        num = card(prefix, length)
        out.append(case(wrap(card_format(num)), True, name))
    out.append(case("4111 1111 1111 1111", True, "the classic test Visa"))
    out.append(case("5555555555554444", True, "Mastercard test number"))
    out.append(case("card_number=378282246310005", True, "Amex after a name"))
    # look-alikes
    for i in range(20):
        name, prefix, length = CARD_KINDS[i % len(CARD_KINDS)]
        num = bad_luhn(card(prefix, 16 if length in (13, 19) else length))
        out.append(case(wrap(card_format(num)), False, "Luhn-invalid " + name))
    for i in range(8):
        p = pick(["1", "7", "8", "9", "0"])
        num = card(p, 16)
        out.append(case(wrap(num), False, "Luhn-valid, no issuer starts " + p))
    for i in range(4):
        num = card("4", 16)
        long = digits(7) + num + digits(7)
        out.append(case("reference " + long, False, "a card's digits inside a 30-digit number"))
    for i in range(4):
        out.append(case("ORD-" + card("4", 16), False, "order id: ORD- and a Luhn-valid number"))
    out.append(case("timestamp 1701993600123", False, "epoch milliseconds"))
    out.append(case("tracking 9400111899223100012847", False, "postal tracking number, 22 digits"))
    out.append(case("4111 1111 1111", False, "12 digits with a Visa prefix: not a Visa length"))
    out.append(case("ISBN 978-3-16-148410-0", False, "ISBN"))
    out.append(case("account 000123456789", False, "zero-led account number"))
    out.append(case("4111-1111-1111-111", False, "15 digits with a Visa prefix"))
    return out


# ---------------------------------------------------------------- IBAN

IBAN_FORMATS = {
    "DE": "n18", "GB": "a4n14", "FR": "n10c11n2", "IT": "a1n10c12", "ES": "n20",
    "NL": "a4n10", "BE": "n12", "CH": "n5c12", "AT": "n16", "PL": "n24", "NO": "n11",
    "SE": "n20", "DK": "n14", "FI": "n14", "IE": "a4n14", "PT": "n21", "LU": "n3c13",
    "MT": "a4n5c18", "LC": "a4c24", "SA": "n2c18",
}


def bban(fmt):
    out, i = [], 0
    while i < len(fmt):
        kind = fmt[i]
        j = i + 1
        while j < len(fmt) and fmt[j].isdigit():
            j += 1
        n = int(fmt[i + 1:j])
        alpha = {"n": string.digits, "a": string.ascii_uppercase,
                 "c": string.ascii_uppercase + string.digits}[kind]
        out.append(rs(alpha, n))
        i = j
    return "".join(out)


def iban_check(cc, b):
    s = b + cc + "00"
    num = int("".join(str(int(ch, 36)) for ch in s))
    return "%02d" % (98 - num % 97)


def iban(cc):
    b = bban(IBAN_FORMATS[cc])
    return cc + iban_check(cc, b) + b


def mod97(s):
    s = s[4:] + s[:4]
    return int("".join(str(int(ch, 36)) for ch in s)) % 97


def spaced(s):
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4))


def ibans():
    out = []
    ccs = list(IBAN_FORMATS)
    for i in range(46):
        cc = ccs[i % len(ccs)]
        v = iban(cc)
        out.append(case(wrap(spaced(v) if i % 2 else v), True, cc + " IBAN"))
    out.append(case("IBAN: DE89 3704 0044 0532 0130 00", True, "the well-known German example"))
    out.append(case("GB82WEST12345698765432", True, "the well-known British example"))
    for i in range(28):
        cc = ccs[i % len(ccs)]
        v = iban(cc)
        bad = v[:2] + "%02d" % ((int(v[2:4]) + R.randint(1, 40)) % 97 + 2) + v[4:]
        if mod97(bad) == 1:
            continue
        out.append(case(wrap(spaced(bad) if i % 2 else bad), False, cc + " IBAN failing mod-97"))
    for i in range(8):
        cc = ccs[i % len(ccs)]
        v = iban(cc)
        out.append(case(wrap(v[:-1]), False, cc + " IBAN one character short"))
    for cc in ["ZZ", "QQ", "XY", "AB"]:
        b = digits(18)
        out.append(case(wrap(cc + iban_check(cc, b) + b), False, "mod-97 holds, no such country"))
    out.append(case("SKU DE12ABCD5678EFGH90", False, "product code shaped like an IBAN"))
    out.append(case("part no. GB00 0000 0000 0000 0000 00", False, "zeros"))
    out.append(case("container MSCU1234565", False, "shipping container number"))
    out.append(case("VAT DE123456789", False, "VAT id"))
    return out


# ---------------------------------------------------------------- SSN

def ssn_parts():
    while True:
        a = R.randint(1, 899)
        if a != 666:
            return "%03d" % a, "%02d" % R.randint(1, 99), "%04d" % R.randint(1, 9999)


def ssns():
    out = []
    for i in range(44):
        a, g, s = ssn_parts()
        sep = " " if i % 5 == 0 else "-"
        v = sep.join([a, g, s])
        t = pick(["SSN {}", "ssn: {}", "social security number {}", "{}", "SSN#{}"]) \
            if i % 2 else wrap(v)
        out.append(case(t.format(v) if "{}" in t else t, True, "valid area/group/serial"))
    for i in range(6):
        a, g, s = ssn_parts()
        out.append(case("%s-%s-%s" % (a, g, s), True, "bare SSN", field="ssn"))
    for bad, note in [("000", "area 000"), ("666", "area 666")]:
        for _ in range(4):
            _, g, s = ssn_parts()
            out.append(case(wrap("%s-%s-%s" % (bad, g, s)), False, note))
    for _ in range(6):
        _, g, s = ssn_parts()
        out.append(case(wrap("%d-%s-%s" % (R.randint(900, 999), g, s)), False, "area 9xx"))
    for _ in range(4):
        a, _, s = ssn_parts()
        out.append(case(wrap("%s-00-%s" % (a, s)), False, "group 00"))
    for _ in range(4):
        a, g, _ = ssn_parts()
        out.append(case(wrap("%s-%s-0000" % (a, g)), False, "serial 0000"))
    for _ in range(8):
        a, g, s = ssn_parts()
        pre = pick(["ORD", "INV", "PO", "REF", "TKT"])
        out.append(case("order %s-%s-%s-%s" % (pre, a, g, s), False, "order id shaped like an SSN"))
    for _ in range(5):
        a, g, s = ssn_parts()
        out.append(case(wrap("%s-%s-%s%d" % (a, g, s, R.randint(0, 9))), False,
                        "123-45-67890: serial too long"))
    for _ in range(3):
        a, g, s = ssn_parts()
        out.append(case(wrap("%s%s-%s-%s" % (R.randint(1, 9), a, g, s)), False, "area too long"))
    out.append(case("call 555-123-4567", False, "phone number"))
    out.append(case("released 2023-10-05", False, "ISO date"))
    out.append(case("zip 12345-6789", False, "ZIP+4"))
    out.append(case("part 12-345-6789", False, "2-3-4 grouping"))
    return out


# ---------------------------------------------------------------- email

DOMAINS = ["example.com", "mail.example.org", "corp.example.co.uk", "example.net",
           "sub.dept.example.io", "example-shop.de", "example.travel", "x.example"]


def emails():
    out = []
    for i in range(44):
        local = pick([
            rs(string.ascii_lowercase, R.randint(3, 10)),
            "%s.%s" % (rs(string.ascii_lowercase, 4), rs(string.ascii_lowercase, 6)),
            "%s+%s" % (rs(string.ascii_lowercase, 5), rs(string.ascii_lowercase, 3)),
            "%s_%d" % (rs(string.ascii_lowercase, 5), R.randint(1, 999)),
            rs(string.ascii_letters, 6),
        ])
        v = local + "@" + pick(DOMAINS)
        t = pick(["{}", "Contact: {}", "mailto:{}", "<{}>", "reply to {} asap", wrap("{}")])
        out.append(case(t.replace("{}", v, 1) if "{}" in t else t, True, "address"))
    out.append(case("First.Last@Example.COM", True, "mixed case"))
    out.append(case("o'brien@example.com is wrong, use obrien@example.com", True, "second one"))
    bad = [
        ("user@localhost", "no dot in the domain"),
        ("name@domain", "no top-level domain"),
        ("name@domain.c", "one-letter top-level domain"),
        ("name@example.123", "numeric top-level domain"),
        ("@example.com", "no local part"),
        ("user@", "no domain"),
        ("user@.example.com", "domain starts with a dot"),
        ("user@-example.com", "domain starts with a dash"),
        ("user at example dot com", "spelled out"),
        ("user(at)example.com", "obfuscated"),
        ("user.example.com", "no @"),
        ("@handle", "social handle"),
        ("follow @example_com", "social handle"),
        ("user@@example.com", "double @"),
        ("price 3@1.99", "quantity at price"),
        ("user@_example.com", "underscore domain"),
        ("ssh git@host", "ssh user@host"),
        ("root@server01", "shell prompt"),
        ("pkg@1.2.3", "package@version"),
        ("@types/node@20.1.0", "scoped package@version"),
    ]
    for t, note in bad:
        out.append(case(t, False, note))
    for i in range(22):
        u = rs(string.ascii_lowercase, R.randint(3, 8))
        t = pick([u + "@" + rs(string.ascii_lowercase, 5),
                  u + " @ " + pick(DOMAINS),
                  u + "@" + pick(DOMAINS).split(".")[0],
                  "@" + u,
                  u + "#" + pick(DOMAINS),
                  u + "@" + str(R.randint(1, 99)) + "." + str(R.randint(1, 99))])
        out.append(case(wrap(t), False, "not an address"))
    return out


# ---------------------------------------------------------------- phone

def phones():
    out = []
    gens = [
        lambda: "+1 (%s) %s-%s" % (R.randint(201, 989), digits(3), digits(4)),
        lambda: "+1%d%s%s" % (R.randint(201, 989), digits(3), digits(4)),
        lambda: "+1-%d-%s-%s" % (R.randint(201, 989), digits(3), digits(4)),
        lambda: "+44 20 %s %s" % (digits(4), digits(4)),
        lambda: "+44 7700 %s" % digits(6),
        lambda: "+49 30 %s" % digits(7),
        lambda: "+49 151 %s" % digits(8),
        lambda: "+33 1 %s %s %s %s" % (digits(2), digits(2), digits(2), digits(2)),
        lambda: "+81 3-%s-%s" % (digits(4), digits(4)),
        lambda: "+61 2 %s %s" % (digits(4), digits(4)),
        lambda: "(%d) %s-%s" % (R.randint(201, 989), digits(3), digits(4)),
        lambda: "%d-%s-%s" % (R.randint(201, 989), digits(3), digits(4)),
        lambda: "%d.%s.%s" % (R.randint(201, 989), digits(3), digits(4)),
        lambda: "030 %s" % digits(7),
        lambda: "089/%s" % digits(8),
        lambda: "0151 %s" % digits(8),
        lambda: "07700 %s" % digits(6),
        lambda: "020 %s %s" % (digits(4), digits(4)),
        lambda: "0161-%s-%s" % (digits(3), digits(4)),
    ]
    for i in range(46):
        v = gens[i % len(gens)]()
        t = pick(["call {}", "Tel: {}", "{}", "phone {} (mobile)", wrap("{}")])
        out.append(case(t.replace("{}", v, 1), True, "phone"))
    bad = []
    for _ in range(8):
        bad.append(("order %s" % digits(10), "bare 10 digits: order number"))
    for _ in range(6):
        pre = pick(["ORD", "INV", "PO", "RMA"])
        bad.append(("%s-%d-%s-%s" % (pre, R.randint(201, 989), digits(3), digits(4)),
                    "order id in phone groups"))
    for _ in range(4):
        bad.append(("#%s-%s-%s" % (digits(4), digits(4), digits(4)), "order number 4-4-4"))
    for _ in range(4):
        bad.append(("invoice %d-%s" % (R.randint(2019, 2025), digits(6)), "invoice number"))
    bad += [
        ("000-000-0000", "placeholder: one digit"),
        ("(000) 000-0000", "placeholder: one digit"),
        ("+1 555", "too short"),
        ("+12345678901234567", "too long for E.164"),
        ("released 2023-10-05", "date"),
        ("at 10:30:45", "time"),
        ("total 1,234,567.89", "amount"),
        ("ISBN 978-3-16-148410-0", "ISBN"),
        ("zip 10115", "postal code"),
        ("build 2024.10.05.1234", "build number"),
        ("SKU 100-2000-3000", "SKU"),
        ("version 10.0.19041", "version"),
        ("serial 0000000000", "zeros"),
        ("ticket 1234567", "ticket number"),
        ("id 12345678901234", "numeric id"),
        ("5-10-2023", "date with dashes"),
        ("12 345 678", "spaced number"),
        ("lot 4471-2290-118", "lot number 4-4-3"),
    ]
    for t, note in bad:
        out.append(case(t, False, note))
    return out


# ---------------------------------------------------------------- IP

def ips():
    out = []
    for i in range(26):
        v = "%d.%d.%d.%d" % (R.randint(1, 223), R.randint(0, 255), R.randint(0, 255),
                             R.randint(1, 254))
        t = pick(["from {}", "client={}", "{}", "X-Forwarded-For: {}", "host {}:8080",
                  wrap("{}")])
        out.append(case(t.replace("{}", v, 1), True, "IPv4"))
    for v in ["10.0.0.1", "192.168.1.20", "172.16.254.3", "127.0.0.1", "8.8.8.8",
              "255.255.255.255"]:
        out.append(case("addr " + v, True, "IPv4"))
    v6 = ["2001:db8::8a2e:370:7334", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "fe80::1",
          "fe80::1ff:fe23:4567:890a", "2001:db8:0:0:1:0:0:1", "::ffff:192.0.2.128",
          "2606:4700:4700::1111", "2a00:1450:4001:82a::200e", "fd12:3456:789a:1::1",
          "2001:db8:1234:5678:9abc:def0:1234:5678"]
    for v in v6:
        out.append(case(pick(["client {}", "[{}]:443", "{}"]).replace("{}", v, 1), True, "IPv6"))
    for _ in range(4):
        v = "2001:db8:%x:%x::%x" % (R.randint(1, 65535), R.randint(1, 65535), R.randint(1, 65535))
        out.append(case("src=" + v, True, "IPv6"))
    bad = [
        ("v1.2.3.4", "prefixed version"),
        ("release v10.4.2.1", "prefixed version"),
        ("256.1.1.1", "octet over 255"),
        ("10.0.300.1", "octet over 255"),
        ("999.999.999.999", "octets over 255"),
        ("192.168.01.1", "leading zero"),
        ("010.0.0.1", "leading zero"),
        ("1.2.3", "three parts"),
        ("version 10.0.19041", "three parts"),
        ("pi is 3.14159", "decimal"),
        ("192.168.1", "three parts"),
        ("MAC 00:1a:2b:3c:4d:5e", "MAC address"),
        ("at 12:30:45", "time"),
        ("std::vector", "C++ scope"),
        ("dead::beef", "no digit"),
        ("2001:db8:::1", "triple colon"),
        ("1.2.3.4a", "trailing letter"),
        ("build1.2.3.4", "inside a token"),
        ("price 1.299.99", "amount"),
        ("12:34", "time"),
    ]
    for t, note in bad:
        out.append(case(t, False, note))
    for _ in range(10):
        t = "%d.%d.%d.%d" % (R.randint(256, 999), R.randint(0, 255), R.randint(0, 255),
                             R.randint(0, 255))
        out.append(case(wrap(t), False, "first octet over 255"))
    for _ in range(10):
        t = "v%d.%d.%d.%d" % (R.randint(0, 9), R.randint(0, 20), R.randint(0, 99),
                              R.randint(0, 999))
        out.append(case("app " + t, False, "prefixed version"))
    return out


# ---------------------------------------------------------------- DOB

DOB_FIELDS = ["date_of_birth", "dob", "birthDate", "born_on", "birthday", "DOB", "birth_date",
              "patient_dob"]
OTHER_FIELDS = ["created_at", "updated", "start_date", "due", "expires", "shipped_on",
                "note", "comment"]


def rand_date():
    return R.randint(1930, 2010), R.randint(1, 12), R.randint(1, 28)


def dobs():
    out = []
    for i in range(44):
        y, m, d = rand_date()
        f = pick([
            "%04d-%02d-%02d" % (y, m, d),
            "%02d/%02d/%04d" % (d, m, y),
            "%02d/%02d/%04d" % (m, d, y),
            "%02d.%02d.%04d" % (d, m, y),
            "%d-%d-%d" % (d, m, y),
            "%04d-%02d-%02dT00:00:00Z" % (y, m, d),
        ])
        out.append(case(pick(["{}", "born {}", "DOB: {}"]).replace("{}", f), True,
                        "date in a birth field", field=DOB_FIELDS[i % len(DOB_FIELDS)]))
    out.append(case("2000-02-29", True, "leap day", field="dob"))
    for i in range(16):
        y, m, d = rand_date()
        out.append(case("%04d-%02d-%02d" % (y, m, d), False, "a date in another field",
                        field=OTHER_FIELDS[i % len(OTHER_FIELDS)]))
    bad = [
        ("1990-02-30", "no 30 February"),
        ("1990-13-01", "month 13"),
        ("31/31/1990", "no month 31"),
        ("00/12/1990", "day 0"),
        ("1850-01-01", "before 1900"),
        ("2090-01-01", "in the future"),
        ("1900-02-29", "1900 was not a leap year"),
        ("1990/05/14", "ISO with slashes"),
        ("unknown", "no date"),
        ("N/A", "no date"),
        ("1990-05", "month only"),
        ("May 1990", "month name"),
        ("19900514", "no separators"),
        ("90-05-14", "two-digit year"),
        ("1990-5-14", "ISO without padding"),
        ("32.01.1990", "day 32"),
        ("2023-02-29", "2023 was not a leap year"),
        ("1990-00-10", "month 0"),
        ("12:30", "a time"),
        ("v1990.05.14", "a version"),
        ("1990-05-14-0001", "a serial"),
        ("born in Berlin", "a place"),
        ("1,990", "a number"),
        ("31/04/1990", "no 31 April"),
    ]
    for i, (t, note) in enumerate(bad):
        out.append(case(t, False, note, field=DOB_FIELDS[i % len(DOB_FIELDS)]))
    return out


# ---------------------------------------------------------------- secrets

def b32(n):
    return rs(string.ascii_uppercase + "234567", n)


def aws():
    out = []
    for i in range(44):
        v = pick(["AKIA", "ASIA", "ABIA", "ACCA"]) + b32(16)
        t = pick(["aws_access_key_id = {}", "AWS_ACCESS_KEY_ID={}", "{}", "key {} leaked",
                  wrap("{}")])
        out.append(case(t.replace("{}", v, 1), True, "AWS access key id"))
    out.append(case("AKIAIOSFODNN7EXAMPLE", True, "the documented example key id"))
    for _ in range(8):
        out.append(case("AKIA" + b32(15), False, "15 characters after the prefix"))
    for _ in range(6):
        out.append(case("AKIA" + b32(17), False, "17 characters after the prefix"))
    for _ in range(6):
        v = "AKIA" + b32(8) + pick("0189") + b32(7)
        out.append(case(v, False, "a character outside base32"))
    for _ in range(6):
        out.append(case("AKIA" + b32(16).lower(), False, "lowercase"))
    for _ in range(6):
        out.append(case("X" + "AKIA" + b32(16), False, "inside a longer token"))
    for _ in range(6):
        out.append(case(pick(["AKID", "AIDA", "AROA"]) + b32(16), False, "another IAM prefix"))
    out.append(case("AKIA_EXAMPLE_KEY", False, "placeholder"))
    out.append(case("aws_secret_access_key = <redacted>", False, "placeholder"))
    out.append(case("AKIA", False, "prefix alone"))
    return out


def github():
    out = []
    for i in range(40):
        v = "gh" + pick("pousr") + "_" + rs(ALNUM, 36)
        out.append(case(pick(["{}", "GITHUB_TOKEN={}", "token {}", wrap("{}")]).replace("{}", v, 1),
                        True, "GitHub token"))
    for _ in range(5):
        v = "github_pat_" + rs(ALNUM + "_", 82)
        out.append(case("pat: " + v, True, "fine-grained PAT"))
    for _ in range(8):
        out.append(case("gh" + pick("pousr") + "_" + rs(ALNUM, 35), False, "35 characters"))
    for _ in range(6):
        out.append(case("gh" + pick("abcxyz") + "_" + rs(ALNUM, 36), False, "unknown prefix"))
    for _ in range(6):
        out.append(case("ghp_" + rs(ALNUM, 40), False, "40 characters"))
    for _ in range(6):
        out.append(case("commit " + rs("0123456789abcdef", 40), False, "commit hash"))
    for _ in range(6):
        out.append(case("xghp_" + rs(ALNUM, 36), False, "inside a longer token"))
    for _ in range(4):
        out.append(case("github_pat_" + rs(ALNUM, 30), False, "short fine-grained PAT"))
    out.append(case("ghp_<your-token>", False, "placeholder"))
    out.append(case("https://github.com/example/repo", False, "URL"))
    out.append(case("ghp_", False, "prefix alone"))
    out.append(case("gh_pages_branch", False, "name"))
    return out


def gitlab():
    out = []
    for i in range(42):
        v = "glpat-" + rs(B64URL, 19) + pick(ALNUM)
        out.append(case(pick(["{}", "GITLAB_TOKEN={}", "PRIVATE-TOKEN: {}", wrap("{}")])
                        .replace("{}", v, 1), True, "GitLab PAT"))
    for _ in range(10):
        out.append(case("glpat-" + rs(ALNUM, R.randint(5, 19)), False, "too short"))
    for _ in range(8):
        out.append(case("glpat_" + rs(ALNUM, 20), False, "underscore"))
    for _ in range(8):
        out.append(case("xglpat-" + rs(ALNUM, 20), False, "inside a longer token"))
    for _ in range(8):
        out.append(case("gplat-" + rs(ALNUM, 20), False, "misspelt prefix"))
    out.append(case("glpat-", False, "prefix alone"))
    out.append(case("create a glpat- token in settings", False, "prose"))
    out.append(case("https://gitlab.com/group/project", False, "URL"))
    out.append(case("GLPAT-" + rs(ALNUM, 20), False, "uppercase prefix"))
    out.append(case("glpat-<token>", False, "placeholder"))
    out.append(case("gldt " + rs(ALNUM, 20), False, "no dash"))
    out.append(case("glpat " + rs(ALNUM, 20), False, "space for a dash"))
    out.append(case("glpat--" + rs(ALNUM, 5), False, "too short after two dashes"))
    return out


def slack():
    out = []
    for i in range(42):
        k = pick("abprs")
        v = "xox%s-%s-%s-%s" % (k, digits(11), digits(12), rs(ALNUM, 24))
        if i % 4 == 0:
            v = "xox%s-%s" % (k, rs(ALNUM, 30))
        out.append(case(pick(["{}", "SLACK_TOKEN={}", "Bearer {}", wrap("{}")]).replace("{}", v, 1),
                        True, "Slack token"))
    for _ in range(9):
        out.append(case("xox%s-%s" % (pick("abprs"), rs(ALNUM, R.randint(3, 9))), False,
                        "too short"))
    for _ in range(9):
        out.append(case("xox%s-%s" % (pick("dfgz"), rs(ALNUM, 30)), False, "unknown kind"))
    for _ in range(9):
        out.append(case("xoxb_" + rs(ALNUM, 30), False, "underscore"))
    for _ in range(9):
        out.append(case("fxoxb-" + rs(ALNUM, 30), False, "inside a longer token"))
    out += [
        case("https://hooks.slack.com/services", False, "URL without a token"),
        case("xoxo, Ana", False, "hugs and kisses"),
        case("xoxb-", False, "prefix alone"),
        case("slack channel #xox-builds", False, "channel name"),
        case("XOXB-" + rs(ALNUM, 30), False, "uppercase prefix"),
    ]
    return out


def stripe():
    out = []
    for i in range(42):
        v = pick(["sk_live_", "rk_live_", "sk_test_", "rk_test_"]) + rs(ALNUM, R.randint(24, 99))
        out.append(case(pick(["{}", "STRIPE_SECRET_KEY={}", "stripe.api_key = '{}'", wrap("{}")])
                        .replace("{}", v, 1), True, "Stripe secret key"))
    for _ in range(10):
        out.append(case(pick(["pk_live_", "pk_test_"]) + rs(ALNUM, 24), False,
                        "publishable key: public by design"))
    for _ in range(8):
        out.append(case("sk_live_" + rs(ALNUM, R.randint(4, 23)), False, "too short"))
    for _ in range(6):
        out.append(case(pick(["cus_", "price_", "acct_", "pi_", "ch_"]) + rs(ALNUM, 24), False,
                        "object id"))
    for _ in range(6):
        out.append(case("xsk_live_" + rs(ALNUM, 24), False, "inside a longer token"))
    for _ in range(6):
        out.append(case("sk_demo_" + rs(ALNUM, 24), False, "not live or test"))
    out += [
        case("sk_live_...", False, "elided"),
        case("sk_live_<your key>", False, "placeholder"),
        case("task_live_" + rs(ALNUM, 24), False, "another prefix"),
        case("SK_LIVE_" + rs(ALNUM, 24), False, "uppercase prefix"),
    ]
    return out


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(header, payload, siglen=43):
    return "%s.%s.%s" % (b64u(json.dumps(header).encode()), b64u(json.dumps(payload).encode()),
                         rs(B64URL, siglen - 1) + pick(ALNUM))


def jwts():
    out = []
    algs = ["HS256", "HS384", "RS256", "ES256", "PS256", "EdDSA", "none"]
    for i in range(44):
        h = {"alg": algs[i % len(algs)], "typ": "JWT"}
        if i % 3 == 0:
            h["kid"] = rs(ALNUM, 8)
        p = {"sub": str(R.randint(1, 10 ** 6)), "iat": 1700000000 + R.randint(0, 10 ** 7)}
        if i % 2:
            p["email"] = "user%d@example.com" % i
        v = jwt(h, p, pick([43, 86, 64]))
        out.append(case(pick(["{}", "Authorization: Bearer {}", "token={}", wrap("{}")])
                        .replace("{}", v, 1), True, "JWT"))
    for i in range(8):
        v = jwt({"typ": "JWT", "kid": rs(ALNUM, 6)}, {"sub": "1"})
        out.append(case(v, False, "header without alg"))
    for i in range(6):
        out.append(case(jwt({"alg": "HS256"}, {"sub": "1"}).rsplit(".", 1)[0], False,
                        "two parts: no signature"))
    for i in range(6):
        blob = base64.b64encode(json.dumps({"id": i, "name": rs(ALNUM, 12)}).encode()).decode()
        out.append(case("data " + blob, False, "base64 JSON, one part"))
    for i in range(6):
        h = b64u(b'{"alg":"HS256"') + rs(B64URL, 3)
        out.append(case(h + "." + b64u(b'{"sub":"1"}') + "." + rs(ALNUM, 43), False,
                        "header not JSON"))
    for i in range(6):
        out.append(case("eyJ" + rs(ALNUM, 20) + ".eyJ" + rs(ALNUM, 30) + "." + rs(ALNUM, 43),
                        False, "random base64url after eyJ"))
    for i in range(4):
        out.append(case(base64.b64encode(rs(ALNUM, 40).encode()).decode(), False,
                        "base64 blob"))
    out += [
        case("eyJhbGciOiJIUzI1NiJ9", False, "header alone"),
        case(jwt({"alg": "HS256"}, {"a": 1}) + "." + rs(ALNUM, 10), False, "four parts"),
        case("eyJ.eyJ.", False, "empty parts"),
        case("a.b.c", False, "dotted name"),
    ]
    return out


PEM_BODY = string.ascii_letters + string.digits + "+/"


def pem_body(lines):
    return "\n".join(rs(PEM_BODY, 64) for _ in range(lines)) + "\n" + rs(PEM_BODY, 20) + "=="


def pems():
    out = []
    kinds = ["RSA ", "", "EC ", "OPENSSH ", "ENCRYPTED ", "DSA "]
    for i in range(40):
        k = kinds[i % len(kinds)]
        v = "-----BEGIN %sPRIVATE KEY-----\n%s\n-----END %sPRIVATE KEY-----" % (
            k, pem_body(R.randint(2, 6)), k)
        if i % 5 == 0:
            v = "key:\n" + v + "\n"
        out.append(case(v, True, k.strip() or "PKCS#8"))
    for i in range(4):
        out.append(case("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n" +
                        pem_body(3) + "\n-----END RSA PRIVATE KEY-----", True, "legacy encrypted"))
    out.append(case("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n" + pem_body(3) +
                    "\n-----END PGP PRIVATE KEY BLOCK-----", True, "PGP secret key"))
    out.append(case("-----BEGIN PRIVATE KEY-----", True, "header only, body cut"))
    for k in ["PUBLIC KEY", "CERTIFICATE", "RSA PUBLIC KEY", "CERTIFICATE REQUEST",
              "PGP PUBLIC KEY BLOCK", "X509 CRL", "EC PARAMETERS", "DH PARAMETERS"]:
        for _ in range(4):
            out.append(case("-----BEGIN %s-----\n%s\n-----END %s-----" % (k, pem_body(2), k),
                            False, k))
    out += [
        case("rotate the private key every 90 days", False, "prose"),
        case("BEGIN PRIVATE KEY", False, "no armour"),
        case("private_key_path=/etc/ssl/private/server.key", False, "a path"),
        case("-----END PRIVATE KEY-----", False, "trailer alone"),
        case("----BEGIN PRIVATE KEY----", False, "four dashes"),
        case("-----BEGIN private key-----", False, "lowercase"),
        case("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + rs(ALNUM, 30) + " user@host", False,
             "public ssh key"),
        case("-----BEGIN SSH2 PUBLIC KEY-----", False, "SSH2 public key"),
    ]
    return out


KEY_NAMES = ["api_key", "apiKey", "API_KEY", "secret", "client_secret", "SECRET_KEY", "token",
             "auth_token", "access_token", "password", "DB_PASSWORD", "x-api-key",
             "private_key", "app_secret", "passwd", "credentials"]


def secret_value():
    kind = R.randint(0, 3)
    if kind == 0:
        return rs(ALNUM, R.randint(20, 40))
    if kind == 1:
        return rs("0123456789abcdef", 32)
    if kind == 2:
        return base64.b64encode(bytes(R.randrange(256) for _ in range(24))).decode()
    return rs(ALNUM, 8) + "-" + rs(ALNUM, 12) + "_" + rs(ALNUM, 6)


def assign(name, value):
    return pick(["{k}={v}", "{k}: {v}", "{k} = \"{v}\"", "\"{k}\": \"{v}\"", "export {k}='{v}'",
                 "config {{\"{k}\": \"{v}\"}}"]).format(k=name, v=value)


def generics():
    out = []
    for i in range(46):
        out.append(case(assign(KEY_NAMES[i % len(KEY_NAMES)], secret_value()), True,
                        "secret assignment"))
    for i in range(16):
        u = "%s-%s-%s-%s-%s" % (rs("0123456789abcdef", 8), rs("0123456789abcdef", 4),
                                rs("0123456789abcdef", 4), rs("0123456789abcdef", 4),
                                rs("0123456789abcdef", 12))
        if i % 3 == 0:
            u = u.upper()
        name = pick(["key", "api_key", "idempotency_key", "token", "request_key", "secret_id"])
        out.append(case(assign(name, u), False, "UUID after a key name"))
    placeholders = ["your_api_key_here", "xxxxxxxxxxxxxxxxxxxxxxxx", "changeme_changeme",
                    "${API_KEY}", "<your-secret-here>", "{{ secrets.TOKEN }}",
                    "****************", "REPLACE_WITH_YOUR_TOKEN", "aaaaaaaaaaaaaaaaaaaa",
                    "1234567890123456", "null", "true", "passwordpassword1",
                    "0000000000000000"]
    for i, p in enumerate(placeholders):
        out.append(case(assign(KEY_NAMES[i % len(KEY_NAMES)], p), False, "placeholder"))
    out += [
        case("token_type=bearer", False, "short"),
        case("sort_key=created_at_descending", False, "a name"),
        case("keyboard layout us-international", False, "no assignment"),
        case("primary_key: customer_order_line_id", False, "a column name"),
        case("password_policy=minimum_length_twelve", False, "a setting"),
        case("token_url=https://auth.example.com/oauth/token", False, "a URL"),
        case("secret_name: prod-db-credentials", False, "a name"),
        case("api_key=", False, "empty"),
        case("key_file=/etc/ssl/private/server.key", False, "a path"),
        case("monkey=bananas_and_more_bananas", False, "a word"),
        case("cache_key: user_profile_settings", False, "a name"),
        case("access_token_ttl=3600000000000000", False, "digits only"),
    ]
    return out


CLASSES = {
    "financial.card": cards, "financial.iban": ibans, "pii.ssn": ssns, "pii.email": emails,
    "pii.phone": phones, "pii.ip": ips, "pii.dob": dobs, "secret.aws": aws,
    "secret.github": github, "secret.gitlab": gitlab, "secret.slack": slack,
    "secret.stripe": stripe, "secret.jwt": jwts, "secret.pem": pems,
    "secret.generic": generics,
}


def main():
    for cls, gen in CLASSES.items():
        cases = gen()
        pos = sum(1 for c in cases if c["expect"])
        neg = len(cases) - pos
        assert pos >= 40 and neg >= 40, (cls, pos, neg)
        with open(os.path.join(HERE, cls + ".jsonl"), "w") as f:
            for c in cases:
                f.write(json.dumps(c, ensure_ascii=False) + "\n")
        print("%-16s %3d true  %3d look-alike" % (cls, pos, neg))


if __name__ == "__main__":
    main()
