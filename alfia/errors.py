"""The one exception type that reaches users as a single clear line (see ``alfia.cli``)."""


class AlfiaError(Exception):
    """A problem with the user's input or environment: the message says what is wrong and what to do."""


class UsageError(AlfiaError):
    """The command line itself is wrong (flags that exclude each other, a malformed value): exit status 2, as
    argparse gives for its own usage errors; bad data gives 1."""


class SettingError(AlfiaError):
    """A setting out of its range, named by its field (``epochs``); the CLI names the flag (``--epochs``). A problem
    that names other settings too writes them as ``{0}``, ``{1}`` ... and lists their fields in ``others``, so that
    the CLI can name their flags as well (:meth:`named`)."""

    def __init__(self, field: str, problem: str, others: tuple[str, ...] = ()):
        self.field, self.others, self.template = field, tuple(others), problem
        self.problem = problem.format(*self.others) if self.others else problem
        super().__init__(f"{field} {self.problem}")

    def named(self, name_of) -> str:
        """The message with every setting named by ``name_of(field)`` (the command line: its flag)."""
        problem = self.template.format(*map(name_of, self.others)) if self.others else self.problem
        return f"{name_of(self.field)} {problem}"
