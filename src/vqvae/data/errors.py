"""Errors and warnings of the data layer."""

from __future__ import annotations


class DataError(ValueError):
    """A data file or folder is missing, empty, unreadable or not in the expected format.

    The message names the path, what was expected and what was found.
    """


class DataWarning(UserWarning):
    """Data was usable but changed on loading (e.g. a grayscale image converted to RGB)."""
