#!/usr/bin/env python3
"""Connect an OpenProject and a Nextcloud ("Two-way OAuth 2.0"), the way an admin script would.

Reads the servers and credentials from the environment, the same OPNC_* variables that the `opnc`
command line reads (so a secret never sits on the command line):

    OPNC_OPENPROJECT_URL, OPNC_OPENPROJECT_TOKEN      an OpenProject administrator's API token
    OPNC_NEXTCLOUD_URL, OPNC_NEXTCLOUD_USER, OPNC_NEXTCLOUD_PASSWORD   a Nextcloud admin (app password)
    OPNC_CA_BUNDLE (optional), OPNC_STATE_DIR (optional: where opnc keeps its journals)

    python3 examples/admin_script.py                  # plan, apply, verify
    python3 examples/admin_script.py --dry-run        # plan only (read only)
    python3 examples/admin_script.py --project-folders --debug
    python3 examples/admin_script.py --sandbox        # against the built-in emulators

Exit status: 0 when the integration is complete and verified, 1 when verification failed, 2 when
the input is wrong, 3 when a step failed (rerun it: opnc resumes where it stopped).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
from typing import Iterator

import opnc
from opnc.logging_bridge import enable_debug
from opnc.progress import progress_display

REQUIRED = ("OPNC_OPENPROJECT_URL", "OPNC_OPENPROJECT_TOKEN", "OPNC_NEXTCLOUD_URL", "OPNC_NEXTCLOUD_USER",
            "OPNC_NEXTCLOUD_PASSWORD")


@contextlib.contextmanager
def servers(use_sandbox: bool) -> Iterator[dict[str, str]]:
    """The OPNC_* settings to use: the environment's, or those of a freshly started sandbox."""
    if not use_sandbox:
        yield dict(os.environ)
        return
    from opnc.sandbox import Sandbox

    with Sandbox() as sandbox, tempfile.TemporaryDirectory(prefix="opnc-state-") as state_dir:
        yield {**sandbox.env(), "OPNC_STATE_DIR": state_dir}


def integration_from(settings: dict[str, str], project_folders: bool) -> opnc.Integration:
    missing = [name for name in REQUIRED if not settings.get(name)]
    if missing:
        raise opnc.InvalidInput(f"missing settings: {', '.join(missing)}",
                                hint="export them, or try --sandbox")
    ca_bundle = settings.get("OPNC_CA_BUNDLE") or None
    openproject = opnc.OpenProject(settings["OPNC_OPENPROJECT_URL"], settings["OPNC_OPENPROJECT_TOKEN"],
                                   ca_bundle=ca_bundle)
    nextcloud = opnc.Nextcloud(settings["OPNC_NEXTCLOUD_URL"], settings["OPNC_NEXTCLOUD_USER"],
                               settings["OPNC_NEXTCLOUD_PASSWORD"], ca_bundle=ca_bundle)
    return opnc.Integration(openproject, nextcloud, project_folders=project_folders,
                            state_dir=settings.get("OPNC_STATE_DIR") or None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="only show what would be done")
    parser.add_argument("--project-folders", action="store_true", help="set up automatically managed project folders")
    parser.add_argument("--sandbox", action="store_true", help="run against the built-in emulators")
    parser.add_argument("--debug", action="store_true", help="log every step and HTTP request to stderr")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.debug:
        enable_debug()

    with servers(args.sandbox) as settings:
        try:
            integration = integration_from(settings, args.project_folders)
            plan = integration.plan()
            print(plan)
            if args.dry_run:
                return 0
            result = integration.apply(on_event=progress_display())
        except opnc.InvalidInput as error:
            print(f"error: {error.message}" + (f" ({error.hint})" if error.hint else ""), file=sys.stderr)
            return 2
        except opnc.Error as error:
            # error.step names the step; the journal keeps what was done, so a rerun resumes.
            print(f"error in step {error.step or '-'}: {error.message}", file=sys.stderr)
            if error.hint:
                print(f"what to do: {error.hint}", file=sys.stderr)
            return 3
        print(result)
        verify = integration.verify()
        print(verify)
        return 0 if verify.ok else 1


if __name__ == "__main__":
    sys.exit(main())
