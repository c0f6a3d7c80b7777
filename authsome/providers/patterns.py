"""Regular expressions from definitions, matched in linear time.

A definition's patterns (`regex:` routes, `key_pattern`, extra-field
patterns) are data anyone can write. Python's `re` backtracks: `^(a+)+$`
against 31 characters froze the whole proxy for half a minute. RE2 never
backtracks, so matching costs time linear in the input whatever the
pattern; it has no lookarounds or backreferences, and refuses them when the
pattern is compiled. Inputs are bounded too (a host name is at most 253
characters, a pasted key at most `MAX_INPUT`).
"""

from __future__ import annotations

import functools

MAX_PATTERN = 512  # characters of a pattern
MAX_INPUT = 4096  # characters a pattern is ever matched against


class PatternError(ValueError):
    """A pattern that cannot be used; the message says why in one phrase."""


@functools.lru_cache(maxsize=256)
def compile_pattern(source: str, *, ignore_case: bool = False):
    """An RE2 pattern object with `fullmatch`; PatternError when it cannot be one."""
    import re2

    if len(source) > MAX_PATTERN:
        raise PatternError(f"longer than {MAX_PATTERN} characters")
    options = re2.Options()
    options.log_errors = False  # RE2 would print its own message on stderr
    options.case_sensitive = not ignore_case
    try:
        return re2.compile(source, options)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        if "perl operator" in reason or "backreference" in reason.lower():
            reason += " (lookarounds and backreferences are not supported: patterns run on a linear-time engine)"
        raise PatternError(reason) from None


def fullmatch(source: str, text: str, *, ignore_case: bool = False) -> bool:
    """True when the whole of `text` matches; over-long input never does."""
    if len(text) > MAX_INPUT:
        return False
    return compile_pattern(source, ignore_case=ignore_case).fullmatch(text) is not None
