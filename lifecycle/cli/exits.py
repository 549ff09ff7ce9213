"""Exit codes of the ``pipecat-lifecycle`` commands, and the help text that lists them."""

from __future__ import annotations

from typing import Final

EXIT_OK: Final = 0
"""The session ended cleanly: the user disconnected or the bot ended it."""
EXIT_FAILURE: Final = 1
"""An unexpected error, or (``load``) a session that failed."""
EXIT_USAGE: Final = 2
"""Bad command-line usage (argparse's own code), or an optional extra that is missing."""
EXIT_STARTUP: Final = 3
"""The session never became ready: start endpoint, transport or bot-ready timeout."""
EXIT_FATAL: Final = 4
"""A fatal error ended a ready session (RTVI fatal error or the connection lost)."""
EXIT_INTERRUPTED: Final = 130
"""Interrupted by Ctrl-C before the work was done (``load``; a second Ctrl-C elsewhere)."""

EXIT_CODES_HELP: Final = """\
exit codes:
  0  clean end: you disconnected (/quit, end of input, Ctrl-C) or the bot ended the session
  1  unexpected error
  2  usage error, or an optional extra is missing (the pip install line is shown)
  3  startup error: the start endpoint failed (StartBotError), the transport could not
     connect (TransportError) or bot-ready did not arrive in time (ConnectionTimeoutError)
  4  fatal error during the session: an RTVI error with fatal=true, or the connection lost
"""
