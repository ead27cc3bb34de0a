"""The one error type of the dataset layer."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset cannot be used; the message is one line saying what was wrong and what was expected."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


def one_line(text: object, limit: int = 400) -> str:
    """``text`` collapsed to one line (whitespace runs -> one space), cut at ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an exception's message, prefixed with its type (for wrapped errors)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    msg = lines[0] if lines else ""
    if msg.endswith(":") and len(lines) > 1:  # "Could not load X. Likely causes:" -> add the first cause
        msg = f"{msg} {lines[1]}"
    return one_line(f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__, limit)
