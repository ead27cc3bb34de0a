"""Errors of the settings layer: one line naming the parameter, what was expected and what was given."""
from __future__ import annotations

from typing import Any

__all__ = ["Raw", "SettingsError", "SettingsFileError", "fmt"]


class Raw(str):
    """Already formatted `got` text for SettingsError (not quoted again)."""


def fmt(value: Any) -> str:
    """Short, unambiguous rendering of a user-supplied value for error messages."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, tuple)):
        text = "[" + ", ".join(fmt(v) for v in value) + "]"
        return text if len(text) <= 200 else text[:197] + "...]"
    if value is None:
        return "nothing (None)"
    return repr(value)


class SettingsError(ValueError):
    """A parameter has a bad value. `str()` is one line: "parameter 'x' must <expected>, got <got>"."""

    def __init__(self, parameter: str, expected: str, got: Any, *, source: str | None = None):
        self.parameter = parameter
        self.expected = expected
        self.got = str(got) if isinstance(got, Raw) else fmt(got)
        self.source = source
        super().__init__(self._message())

    def _message(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        return f"{prefix}parameter '{self.parameter}' must {self.expected}, got {self.got}"

    def with_source(self, source: str) -> SettingsError:
        """Same error, prefixed with where the value came from (e.g. the params file path)."""
        return SettingsError(self.parameter, self.expected, Raw(self.got), source=source)


class SettingsFileError(SettingsError):
    """The params file itself is unusable (missing, not YAML, no section for the node)."""

    def __init__(self, message: str, *, source: str | None = None):
        self.parameter = None  # type: ignore[assignment]
        self.expected = ""
        self.got = ""
        self.source = source
        self.message = message
        ValueError.__init__(self, f"{source}: {message}" if source else message)

    def _message(self) -> str:
        return f"{self.source}: {self.message}" if self.source else self.message

    def with_source(self, source: str) -> SettingsFileError:
        return SettingsFileError(self.message, source=source)
