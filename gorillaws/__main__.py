"""``python -m gorillaws``: the command-line tool (see :mod:`gorillaws.cli`)."""

from __future__ import annotations

import sys

from .cli import main as _cli_main

__all__ = ["main"]


def main() -> None:
    """Console-script entry point: run the tool and exit with its status."""
    sys.exit(_cli_main())


if __name__ == "__main__":
    main()
