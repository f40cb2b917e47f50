"""The one exception type that reaches users as a single clear line (see ``alfia.cli``)."""


class AlfiaError(Exception):
    """A problem with the user's input or environment: the message says what is wrong and what to do."""
