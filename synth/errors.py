"""The one error type of synth: a message a user can act on."""


class SynthError(Exception):
    """Bad input or a failed operation, explained in words a musician can act on.

    The command line prints the message (one line per problem) and exits with status 2.
    """
