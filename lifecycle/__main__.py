"""``python -m lifecycle``: the ``pipecat-lifecycle`` command line."""

from __future__ import annotations

import sys

from lifecycle.cli import main

if __name__ == "__main__":
    sys.exit(main())
