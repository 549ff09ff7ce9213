"""Where the command line sends log lines: stderr, filtered by ``-v``.

The CLI is an application entry point, so unlike the library it may configure structlog,
but only when the embedding application has not done so already.
"""

from __future__ import annotations

import logging
import sys


def configure_logging(verbosity: int) -> None:
    """Send log lines to stderr, filtered by level, unless the embedding app configured them."""
    import structlog

    from lifecycle.logs import structlog_configured

    if structlog_configured():  # the embedding application's configuration wins
        return
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
