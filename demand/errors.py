"""The one exception type a user is meant to read: what is wrong and what to do, on one line."""


class PipelineError(Exception):
    """Bad input or a bad parameter. The CLI prints its message as a single line and exits non-zero."""
