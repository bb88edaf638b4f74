"""Client-supplied text in log lines: escaped and shortened.

A request line, path or header value goes into the log only through :func:`printable`,
so a client cannot write ANSI escape sequences to an operator's terminal, forge a log
line with an embedded newline, or flood the log with one huge value.
"""

from __future__ import annotations

#: Characters of client text kept in one log line.
LOG_TEXT_LIMIT = 200


def printable(text: object, limit: int = LOG_TEXT_LIMIT) -> str:
    r"""``text`` with every character outside printable ASCII escaped (``\x1b``, ``\n``,
    ``\xe9``; a backslash is doubled), cut to ``limit`` characters, ``...`` marking a cut.

    >>> print(printable("GET /a\x1b[31m\nFAKE 200"))
    GET /a\x1b[31m\nFAKE 200
    >>> printable("x" * 300, limit=5)
    'xxxxx...'
    """
    value = str(text)
    escaped = value[:limit].encode("unicode_escape").decode("ascii")
    return escaped[:limit] + ("..." if len(value) > limit or len(escaped) > limit else "")
