"""The one exception type for user mistakes: the CLI prints its message, no traceback."""


class UserError(Exception):
    """A mistake the user can fix (bad config, path, model file, value).

    The message is one line that names the problem and the fix; `cli.main` prints it and
    exits with status 2. Anything else that escapes is a bug and keeps its traceback.
    """


def first_line(error: object) -> str:
    """The first line of an exception's message (its type's name when it has none), for
    one-line reports of errors that libraries word over several lines."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
