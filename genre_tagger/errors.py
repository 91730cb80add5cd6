"""Exceptions that the CLI turns into exit codes."""


class UserInputError(Exception):
    """Bad usage or unusable input: the CLI prints the message on one line and exits 2."""
