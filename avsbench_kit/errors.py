"""The one exception type for user mistakes.

Anything a user can get wrong (a model name, an override, an input shape, a weight file) raises
:class:`UserError` with a one-line message that names the problem and what would be accepted.
The command line turns it into that line on stderr and exit status 2.
"""


class UserError(ValueError):
    """A mistake in what the user asked for; the message is shown as is, on one line."""
