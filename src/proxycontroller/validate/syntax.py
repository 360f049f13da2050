"""What a string must look like for the parsers Gloo and Envoy run on it: Envoy's header-safe strings, Gloo's
path rule, Go's url.Parse (which Gloo runs on a prefix rewrite), protobuf's JSON Duration, and RE2's syntax.

Each function says what is wrong with a value (a phrase that follows "with", e.g. "a NUL, CR or LF"), or None.
They are pure and cheap for the values the built-in strategies make ("/" first of all), because validation
runs them for every virtual host of a cold pass.
"""

from __future__ import annotations

import re
import urllib.parse

# Envoy's well_known_regex HTTP_HEADER_NAME and HTTP_HEADER_VALUE with `strict: false`, which is what every
# string field of its route configuration uses: `^[^\0\n\r]*$`.
_NUL_CR_LF = re.compile(r"[\x00\r\n]")


def envoy_header_safe(value: str) -> str | None:
    return "a NUL, CR or LF" if _NUL_CR_LF.search(value) else None


def utf8(value: str) -> str | None:
    """Protobuf strings are UTF-8: a lone surrogate (YAML's "\\ud800", a file name that is not UTF-8) is not."""
    if value.isascii():
        return None
    try:
        value.encode()
    except UnicodeEncodeError:
        return "a character that is not UTF-8 (a lone surrogate)"
    return None


# Gloo's ValidateRoutePath (projects/gloo/pkg/translator/route_config.go): RFC 3986 pchars or %XX escapes,
# none of a few sequences, not ending in a dot segment. Gloo's own pattern nests two stars; this one accepts
# the same strings without the backtracking.
_PCHARS = re.compile(r"(?:[A-Za-z0-9/:@._~!$&'()*+,=;-]|%[0-9A-Fa-f]{2})*")
_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F", "#")
_PATH_SUFFIXES = ("/..", "/.")


def gloo_path(value: str) -> str | None:
    if value == "/":
        return None
    if _PCHARS.fullmatch(value) is None:
        return "a character outside RFC 3986 pchar (letters, digits, / : @ . _ ~ ! $ & ' ( ) * + , = ; - and %XX)"
    for sequence in _PATH_SEQUENCES:
        if sequence in value:
            return f"{sequence!r} in it"
    for suffix in _PATH_SUFFIXES:
        if value.endswith(suffix):
            return f"{suffix!r} at its end"
    return None


# Go's net/url.Parse, as far as Gloo's ValidatePrefixRewrite depends on it: the errors it raises (a control
# byte, a bad %-escape, a colon in the first segment of a relative URL) and the decoded path it returns.
_URL_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def gloo_prefix_rewrite(value: str) -> str | None:
    if value == "/":
        return None
    if _URL_CONTROL.search(value):
        return "a control character (Go's url.Parse refuses it)"
    rest, _, fragment = value.partition("#")
    if rest.startswith(":"):
        return "no scheme before its colon (Go's url.Parse refuses it)"
    scheme = _SCHEME.match(rest)
    if scheme is not None:
        rest = rest[scheme.end() :]
    rest = rest.partition("?")[0]
    if not rest.startswith("/"):
        if scheme is not None:
            return None  # an opaque URL ("mailto:x"): its path is empty
        if ":" in rest.partition("/")[0]:
            return "a colon in its first path segment (Go's url.Parse refuses it)"
    if rest.startswith("//") and (scheme is not None or not rest.startswith("///")):
        authority_end = rest.find("/", 2)
        rest = "" if authority_end < 0 else rest[authority_end:]
    if _BAD_ESCAPE.search(rest) or _BAD_ESCAPE.search(fragment):
        return "a % that starts no %XX escape (Go's url.Parse refuses it)"
    return gloo_path(urllib.parse.unquote(rest, errors="surrogateescape"))


# protobuf's JSON form of google.protobuf.Duration, non-negative (Envoy refuses negative durations).
_DURATION = re.compile(r"(\d+)(?:\.\d{1,9})?s")
_MAX_DURATION_SECONDS = 315_576_000_000


def duration(value: str) -> str | None:
    match = _DURATION.fullmatch(value)
    if match is None:
        return "a form other than protobuf's JSON duration, seconds with an 's' ('15s', '0.250s'), not negative"
    if int(match.group(1)) > _MAX_DURATION_SECONDS:
        return "more than 10,000 years"
    return None


# RE2 (https://github.com/google/re2/wiki/Syntax), which Envoy compiles every safe_regex with. Python's re
# checks the grammar both share once the constructs only one of them knows are dealt with: those only Python
# has are refused, those only RE2 has are replaced by something Python parses alike.
_RE2_MAX_REPEAT = 1000
_RE2_ESCAPE_LETTERS = frozenset("dDsSwWbBAzCpPQxaftnrv")
_RE2_CLASS_ESCAPE_LETTERS = frozenset("dDsSwWpPxaftnrv")
_ASSERTIONS = frozenset("^$")  # and \A \b \B \z: RE2 lets them be repeated, Python says "nothing to repeat"
_FLAGS = re.compile(r"[imsU]+(?:-[imsU]+)?|-[imsU]+")
_POSIX_CLASSES = frozenset(
    [
        "alnum",
        "alpha",
        "ascii",
        "blank",
        "cntrl",
        "digit",
        "graph",
        "lower",
        "print",
        "punct",
        "space",
        "upper",
        "word",
        "xdigit",
    ]
)
_GROUP_REFUSED = {
    "(?=": "a lookahead",
    "(?!": "a lookahead",
    "(?<=": "a lookbehind",
    "(?<!": "a lookbehind",
    "(?>": "an atomic group",
    "(?(": "a conditional",
    "(?#": "a comment group",
    "(?P=": "a backreference",
    "(?P>": "a recursion",
    "(?|": "a branch reset",
}
_REPEAT = re.compile(r"\{(\d+)(?:,(\d*))?\}")
_FLAG_GROUP = re.compile(r"\(\?([^:)]*)([:)])")
_OCTAL = re.compile(r"[0-7]{1,3}")
_HEX = re.compile(r"[0-9A-Fa-f]+")


def re2(pattern: str) -> str | None:
    """What RE2 refuses in `pattern`, besides its program size: only RE2 itself can count that."""
    python: list[str] = []
    i, end, in_class = 0, len(pattern), False
    while i < end:
        char = pattern[i]
        if char == "\\":
            if i + 1 == end:
                return "a trailing backslash (RE2)"
            skip, replacement, problem = _re2_escape(pattern, i, in_class)
            if problem is not None:
                return problem
            python.append(replacement)
            i += skip
            continue
        if in_class:
            if char == "]" and not _class_just_opened(pattern, i):
                in_class = False
            elif char == "[" and pattern.startswith("[:", i) and (close := pattern.find(":]", i + 2)) > 0:
                name = pattern[i + 2 : close].removeprefix("^")
                if name not in _POSIX_CLASSES:
                    return f"an unknown character class {pattern[i : close + 2]!r} (RE2)"
                python.append("a")
                i = close + 2
                continue
            elif char in "[&~|" or (char == "-" and pattern.startswith("-", i + 1)):
                python.append("\\" + char)  # a literal in RE2; Python warns of nested sets and set operations
                i += 1
                continue
            python.append(char)
            i += 1
            continue
        if char == "[":
            in_class = True
        elif char == "(" and pattern.startswith("(?", i):
            skip, replacement, problem = _re2_group(pattern, i)
            if problem is not None:
                return problem
            python.append(replacement)
            i += skip
            continue
        elif char in "*+?" and pattern.startswith("+", i + 1):
            return f"a possessive quantifier {char}+ (RE2)"
        elif char == "{" and (repeat := _REPEAT.match(pattern, i)) is not None:
            if any(int(n) > _RE2_MAX_REPEAT for n in repeat.groups() if n):
                return f"a repetition over {_RE2_MAX_REPEAT}: {repeat.group()} (RE2)"
            if pattern.startswith("+", repeat.end()):
                return f"a possessive quantifier {repeat.group()}+ (RE2)"
            python.append(repeat.group())
            i = repeat.end()
            continue
        python.append(f"(?:{char})" if char in _ASSERTIONS else char)
        i += 1
    try:
        re.compile("".join(python))
    except re.error as error:
        return f"a syntax error: {error.msg} (RE2)"
    except (OverflowError, RecursionError):
        return "a syntax RE2 does not take"
    return None


def _class_just_opened(pattern: str, i: int) -> bool:
    """A `]` right after `[` or `[^` is a literal, in RE2 as in Python."""
    return pattern[i - 1] == "[" or (pattern[i - 1] == "^" and i >= 2 and pattern[i - 2] == "[")


def _re2_escape(pattern: str, i: int, in_class: bool) -> tuple[int, str, str | None]:
    """How many characters the escape at `i` spans, what Python should read instead, and what RE2 refuses."""
    letter = pattern[i + 1]
    if in_class and letter.isascii() and letter.isalpha() and letter not in _RE2_CLASS_ESCAPE_LETTERS:
        return 0, "", f"an escape RE2 does not take in a character class: \\{letter}"
    if letter == "Q":  # a literal up to \E
        close = pattern.find("\\E", i + 2)
        stop = len(pattern) if close < 0 else close
        literal = "".join("\\" + c if not c.isalnum() else c for c in pattern[i + 2 : stop])
        return (stop - i + (0 if close < 0 else 2)), literal, None
    if letter in "pP":  # a Unicode class: \pL, \p{Greek}, \P{^Greek}
        if pattern.startswith("{", i + 2):
            close = pattern.find("}", i + 3)
            if close < 0:
                return 0, "", "an unclosed \\p{ (RE2)"
            return close + 1 - i, "a", None
        return (3, "a", None) if i + 2 < len(pattern) else (0, "", "a \\p without a class (RE2)")
    if letter == "x" and pattern.startswith("{", i + 2):
        close = pattern.find("}", i + 3)
        if close < 0 or _HEX.fullmatch(pattern, i + 3, close) is None:
            return 0, "", "a bad \\x{...} escape (RE2)"
        return close + 1 - i, "a", None
    if letter == "z":
        return 2, "(?:\\Z)", None
    if letter in "AbB" and not in_class:
        return 2, f"(?:\\{letter})", None
    if letter == "C":
        return 2, ".", None
    if "0" <= letter <= "7":  # octal; a lone \1-\7 would be a backreference, which RE2 has not
        digits = _OCTAL.match(pattern, i + 1)
        assert digits is not None  # the first digit is one
        if letter != "0" and len(digits.group()) == 1:
            return 0, "", f"a backreference \\{letter} (RE2 has none)"
        return len(digits.group()) + 1, re.escape(chr(int(digits.group(), 8))), None
    if letter.isascii() and letter.isalnum():
        if letter not in _RE2_ESCAPE_LETTERS:
            return 0, "", f"an escape RE2 does not know: \\{letter}"
        return 2, pattern[i : i + 2], None
    return 2, pattern[i : i + 2], None  # an escaped punctuation mark: a literal in both


def _re2_group(pattern: str, i: int) -> tuple[int, str, str | None]:
    """The `(?...` at `i`: what RE2 refuses, or what Python should read instead."""
    for opener, what in _GROUP_REFUSED.items():
        if pattern.startswith(opener, i):
            return 0, "", f"{what} {opener} (RE2 has none)"
    if pattern.startswith("(?P<", i):
        return 4, "(?P<", None
    if pattern.startswith("(?<", i):
        return 3, "(?P<", None
    flags = _FLAG_GROUP.match(pattern, i)
    if flags is None:
        return 0, "", "an unfinished (? group (RE2)"
    letters, closer = flags.groups()
    if letters and _FLAGS.fullmatch(letters) is None:
        return 0, "", f"flags RE2 does not take: (?{letters}{closer}"
    # Python takes no U, and no flags in mid-pattern: the syntax check needs neither.
    return flags.end() - i, ("(?:" if closer == ":" else ""), None
