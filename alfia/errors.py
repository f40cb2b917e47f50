"""The one exception type that reaches users as a single clear line (see ``alfia.cli``)."""


class AlfiaError(Exception):
    """A problem with the user's input or environment: the message says what is wrong and what to do."""


class UsageError(AlfiaError):
    """The command line itself is wrong (flags that exclude each other, a malformed value): exit status 2, as
    argparse gives for its own usage errors; bad data gives 1."""


class SettingError(AlfiaError):
    """A setting out of its range, named by its field (``epochs``); the CLI names the flag (``--epochs``)."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field} {problem}")
        self.field, self.problem = field, problem
