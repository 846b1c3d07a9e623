"""The one exception type a user is meant to read: what is wrong and what to do, on one line; and how
any message shows a value (short, on one line, without passwords)."""

import re

SHOWN_CHARS = 80  # of any value a user supplied: a message repeats no more of it than this
PATH_CHARS = 240  # of a path or URI: longer, since the whole of one is usually needed to act on it
URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*:/+[^/\s:@]*):[^@\s/]*@")  # also a mangled scheme:/
QUERY_PASSWORD = re.compile(r"((?:password|passwd|pwd)=)[^&\s'\"]+", re.IGNORECASE)


class PipelineError(Exception):
    """Bad input or a bad parameter. The CLI prints its message as a single line and exits non-zero."""


def redacted(text: str) -> str:
    """Text as output may show it: the password of every URL in it (scheme://user:PASSWORD@host) and any
    `password=` value replaced by ***. Every message goes through `shown`, which applies it."""
    return QUERY_PASSWORD.sub(r"\1***", URL_PASSWORD.sub(r"\1:***@", text))


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """A user-supplied value as a message may show it: no password, a short prefix, on one line (control
    characters escaped), and how long the whole was when it was cut."""
    text = redacted(str(value))
    cut = repr(text[:limit])[1:-1]
    return cut if len(text) <= limit else f"{cut}… ({len(text):,} characters)"


def quoted(value: object, limit: int = SHOWN_CHARS) -> str:
    """`shown`, in quotes: for values inside a sentence."""
    return f"'{shown(value, limit)}'"


def first_line(error: BaseException) -> str:
    """The first line of an error's message, or its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def shown_path(path: object) -> str:
    """`shown`, with room for a whole path or URI."""
    return shown(path, PATH_CHARS)
