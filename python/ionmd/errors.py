"""Exception types shared by the whole package."""

from __future__ import annotations


class IonmdError(Exception):
    """An error caused by the user's input or environment, reported without a traceback.

    The message must name the problem: the file, the key, the element or the line.
    """


class InputError(IonmdError):
    """Malformed or inconsistent input (a file, a configuration key, a structure)."""
