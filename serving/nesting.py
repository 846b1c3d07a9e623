"""How deeply a JSON body nests arrays and objects, measured without parsing it.

Python's json parser (the front's and MLflow's) recurses once per level: a body of 100,000 `[` exhausts
the interpreter's stack, and the RecursionError becomes a 500. So the front measures the depth first, with
a linear scan of the bytes that only tells strings from structure.
"""

from __future__ import annotations

import json

import numpy as np

# The escapes that hold a quote or a backslash; `\\` first, so that `\\"` is a backslash and a closing quote.
ESCAPES = (b"\\\\", b'\\"')
NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'[]{}"')))
STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # an opening bracket +1, a closing one -1 (int8)


def nesting_depth(body: bytes) -> int:
    """The most arrays and objects open at once in the JSON text `body`. Brackets inside strings do not
    count; a string left open runs to the end."""
    steps = np.frombuffer(_brackets_outside_strings(_as_utf8(body)).translate(STEPS), dtype=np.int8)
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


def _as_utf8(body: bytes) -> bytes:
    """The body as UTF-8: json.loads reads UTF-16 and UTF-32 bytes too, and so does MLflow."""
    encoding = json.detect_encoding(body)
    if encoding.startswith("utf-8"):
        return body
    return body.decode(encoding, errors="replace").encode()


def _brackets_outside_strings(text: bytes) -> bytes:
    """The brackets of `text` that are not inside a string, in order."""
    for escape in ESCAPES:
        text = text.replace(escape, b"")
    quotes_and_brackets = text.translate(None, NOT_STRUCTURE)
    return b"".join(quotes_and_brackets.split(b'"')[::2])  # odd pieces lie between quotes: strings
