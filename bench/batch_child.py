"""`opnc apply --batch FILE --parallel N --json`, run as a process of its own so that its peak memory
(``ru_maxrss``, read by the parent with ``wait4``) is the batch's alone.

    python bench/batch_child.py --batch pairs.yaml --parallel 16

Secrets reach it as environment variables named in the batch file, never as arguments.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str]) -> int:
    from opnc import batch_cli, cli

    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    apply_parser = subparsers.choices["apply"]
    if not any("--batch" in action.option_strings for action in apply_parser._actions):
        batch_cli.add_batch_arguments(apply_parser)  # cli.py without the batch hook yet
    args = parser.parse_args(["apply", *argv, "--json"])
    try:
        return batch_cli.run_batch(args)
    except cli.UsageError as e:
        print(f"opnc: error: {e}", file=sys.stderr)
        return cli.EXIT_INVALID_INPUT


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
