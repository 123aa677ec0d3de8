"""Errors that carry a message meant for the person running mmlaws.

The entry point prints a :class:`UserError` as one line and exits with status 2;
anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input from the user: a file, row, field or flag at fault, named in the message."""


class ConfigError(UserError, ValueError):
    """A configuration value (gin binding or function argument) is invalid."""


class DataError(UserError, ValueError):
    """An input file or table is malformed (names the file and row where it can)."""
