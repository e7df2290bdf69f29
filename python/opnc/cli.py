"""The `opnc` command line."""

from __future__ import annotations

import argparse
import sys

from opnc._version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opnc",
        description="Set up, check, repair and tear down the Two-way OAuth 2.0 connection between "
        "OpenProject and Nextcloud.",
    )
    parser.add_argument("--version", action="version", version=f"opnc {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
