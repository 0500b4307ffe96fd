"""The exception types for mistakes a user can make and fix."""


class UserError(Exception):
    """A problem the user can fix (missing data, bad label, unknown key, wrong checkpoint).

    The CLI prints only its message, never a traceback; the message says what to do.
    """


class NoTestSplit(UserError):
    """The data has no test split; the message says how to add one.

    A caller that can report on the validation split instead (the default job, ``hierarchy eval`` without
    ``--split``) catches it; elsewhere it is a user error like any other.
    """
