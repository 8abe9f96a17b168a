"""Errors a user can fix: the command line prints their message and exits with status 2.

Raise a :class:`UserError` (or a subclass) where the cause is the user's input or set-up, not a bug:
a missing folder or file, a data set in the wrong layout, weights that are not on disk, a setting
out of range, a split without both classes, a study step whose predecessor has not run. The message
says what happened, which file, and what to do. Subclasses also inherit the built-in error they
refine (``FileNotFoundError``, ``ValueError``, ``KeyError``), so callers that catch those still do.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; its message names the file or setting and the fix."""


class DataNotFound(UserError, FileNotFoundError):
    """A file or folder the user named (or a step needs) does not exist."""


class DataError(UserError, ValueError):
    """Data that exist but cannot be used as asked (wrong layout, a split without both classes...)."""


class SettingError(UserError, ValueError):
    """A setting (command-line flag, profile or config key) that is unknown or out of range."""


class ProfileNotFound(UserError, KeyError):
    """A study profile that is not defined."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""
