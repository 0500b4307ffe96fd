"""The one exception type for mistakes a user can make and fix."""


class UserError(Exception):
    """A problem the user can fix (missing data, bad label, unknown key, wrong checkpoint).

    The CLI prints only its message, never a traceback; the message says what to do.
    """
