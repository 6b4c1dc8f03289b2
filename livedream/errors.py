"""The one exception type for user mistakes: the CLI prints its message, no traceback."""


class UserError(Exception):
    """A mistake the user can fix (bad config, path, model file, value).

    The message is one line that names the problem and the fix; `cli.main` prints it and
    exits with status 2. Anything else that escapes is a bug and keeps its traceback.
    """
