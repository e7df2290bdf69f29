"""`opnc apply --batch FILE --parallel N --json`, run as a process of its own so that its peak memory
(``ru_maxrss``, read by the parent with ``wait4``) is the batch's alone.

    python bench/batch_child.py --batch pairs.yaml --parallel 16

Secrets reach it as environment variables named in the batch file, never as arguments.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from opnc import cli

    return cli.main(["apply", *argv, "--json"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
