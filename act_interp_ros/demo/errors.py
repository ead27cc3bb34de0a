"""The demo's user-facing error."""

from __future__ import annotations


class DemoError(RuntimeError):
    """A failure with a message meant for the user (printed as is, exit code 1)."""
