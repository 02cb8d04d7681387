"""Exception types for user-facing errors.

A :class:`VidSegError` is a problem with the user's input (a config value, a dataset file, a results
file), not a bug. The CLIs catch it and print its message on one line instead of a traceback, so every
message must name the offending file or key and say what is wrong with it.
"""

from __future__ import annotations


class VidSegError(Exception):
    """Base class of all user-facing errors (bad config, bad data, bad results)."""


class ConfigError(VidSegError, ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


class DataError(VidSegError, ValueError):
    """A dataset file or folder is missing, unreadable or inconsistent. The message names the path."""


class NonFiniteLossError(VidSegError, FloatingPointError):
    """Training produced a NaN/Inf loss; raised before the bad step can reach a checkpoint."""
