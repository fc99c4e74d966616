"""The one exception type that scripts turn into a single-line message and exit status 2."""


class PerfexError(Exception):
    """Bad input or configuration; the message says what is wrong and what to do next."""
