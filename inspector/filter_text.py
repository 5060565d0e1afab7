"""The raw text of a filter, before any parsing: literals masked, top-level ``;``, positions.

Bounds must be checked before ``ast.parse`` sees the text, and ``;`` must split a split-list only
outside string literals (``'a;b'`` is one tag), so both work on a copy of the text in which the
insides of string literals and comments are blanked out, character for character.

>>> mask_literals("Param; 'a;b' # c;d")
"Param; '   '      "
>>> top_level_semicolons(mask_literals("Param; 'a;b'; ..."))
[5, 12]
"""

from __future__ import annotations

import re

from inspector.errors import FilterSyntaxError

MAX_CHARS = 2000
MAX_DEPTH = 50
MAX_DIGITS = 18
LINE_BREAK = re.compile(r"\r\n|\r|\n")
_NUMBER = re.compile(r"(?<![\w.])[0-9][\w]*")


def mask_literals(text: str) -> str:
    """``text`` with the insides of string literals and comments replaced by spaces.

    Quotes stay, so brackets, digits and ``;`` inside strings no longer count. An unterminated
    single-quoted string ends at the line break, as Python's tokenizer decides.
    """
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "#":
            end = LINE_BREAK.search(text, i)
            stop = end.start() if end else n
            out[i:stop] = " " * (stop - i)
            i = stop
        elif char in "'\"":
            quote = text[i:i + 3] if text[i:i + 3] in ("'''", '"""') else char
            j = i + len(quote)
            while j < n and not text.startswith(quote, j):
                if len(quote) == 1 and text[j] in "\r\n":
                    break
                j += 2 if text[j] == "\\" else 1
            j = min(j, n)
            out[i + len(quote):j] = " " * (j - i - len(quote))
            i = j + (len(quote) if text.startswith(quote, j) else 0)
        else:
            i += 1
    return "".join(out)


def top_level_semicolons(masked: str) -> list[int]:
    """Offsets of ``;`` outside brackets in a masked text.

    >>> top_level_semicolons("nnx.Any(a; b); c")
    [13]
    """
    depth, found = 0, []
    for i, char in enumerate(masked):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(depth - 1, 0)
        elif char == ";" and depth == 0:
            found.append(i)
    return found


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based ``(line, column)`` of a character offset, lines ending as Python's do.

    >>> position("Param |\\n  Parm", 10)
    (2, 3)
    """
    line, line_start = 1, 0
    for match in LINE_BREAK.finditer(text, 0, max(offset, 0)):
        if match.end() > offset:
            break
        line, line_start = line + 1, match.end()
    return line, offset - line_start + 1


def check_bounds(text: str) -> str:
    """Refuse what ``ast.parse`` handles badly, before it sees it; return the masked text."""
    if not isinstance(text, str):
        raise FilterSyntaxError(f"a filter must be text, not {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise FilterSyntaxError(f"filter text too long: {len(text):,} characters (at most {MAX_CHARS:,})")
    masked = mask_literals(text)
    depth = 0
    for i, char in enumerate(masked):
        depth += (char in "([{") - (char in ")]}")
        if depth > MAX_DEPTH:
            refuse(text, i, f"brackets nested too deeply (more than {MAX_DEPTH} levels)")
    for match in _NUMBER.finditer(masked):
        digits = match[0].replace("_", "")
        if digits[:2].lower() in ("0x", "0o", "0b"):
            digits = digits[2:]
        if len(digits) > MAX_DIGITS:
            refuse(text, match.start(), f"number {clip(match[0])} too long (at most {MAX_DIGITS} digits)")
    if not text.strip():
        raise FilterSyntaxError("empty filter: give a filter such as nnx.Param or ...")
    return masked


def refuse(text: str, offset: int, message: str) -> None:
    """Raise FilterSyntaxError with the position appended; ``offset`` counts characters."""
    line, column = position(text, offset)
    where = f"line {line}, column {column}" if LINE_BREAK.search(text) else f"column {column}"
    err = FilterSyntaxError(f"{message} ({where})")
    err.offset = offset
    raise err


def clip(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit - 1] + "…")
