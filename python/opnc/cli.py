"""The `opnc` command line (also `python -m opnc`).

Exit codes: 0 done (changed or not), 2 invalid input, 3 preflight failed (nothing changed),
4 apply failed (journal kept; a rerun resumes), 5 verify failed, 1 unexpected error.
Secrets are read from files, the environment or standard input, never from arguments.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any, NoReturn

from opnc._version import __version__

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_INVALID_INPUT = 2
EXIT_PREFLIGHT = 3
EXIT_APPLY = 4
EXIT_VERIFY = 5

# Options that would carry a secret on the command line, where `ps` shows it to every user.
_SECRET_ARGUMENTS = ("--openproject-token", "--api-token", "--token", "--nextcloud-password", "--password",
                     "--openproject-client-secret", "--app-password")


class UsageError(Exception):
    """Invalid command line input; the message never contains a secret."""


class _Parser(argparse.ArgumentParser):
    """argparse that never echoes argument values in its errors (one of them might be a secret)."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            options = [a.split("=", 1)[0] for a in message.split(":", 1)[1].split() if a.startswith("-")]
            message = "unrecognized arguments" + (f": {' '.join(options)}" if options else "")
        elif "invalid choice" in message or "expected one argument" in message or "required" in message:
            pass  # these name options and choices only
        else:
            message = message.split(":", 1)[0]
        self.print_usage(sys.stderr)
        self.exit(EXIT_INVALID_INPUT, f"{self.prog}: error: {message}\n")


def _env_bool(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def add_connection_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("servers (each option falls back to the environment variable shown)")
    g.add_argument("--openproject-url", default=os.environ.get("OPNC_OPENPROJECT_URL"),
                   help="OpenProject base URL (OPNC_OPENPROJECT_URL)")
    g.add_argument("--openproject-token-file", metavar="FILE",
                   help="file holding an OpenProject admin API token, '-' for standard input (else OPNC_OPENPROJECT_TOKEN)")
    g.add_argument("--nextcloud-url", default=os.environ.get("OPNC_NEXTCLOUD_URL"),
                   help="Nextcloud base URL (OPNC_NEXTCLOUD_URL)")
    g.add_argument("--nextcloud-user", default=os.environ.get("OPNC_NEXTCLOUD_USER"),
                   help="Nextcloud admin user (OPNC_NEXTCLOUD_USER)")
    g.add_argument("--nextcloud-password-file", metavar="FILE",
                   help="file holding the Nextcloud admin password or app password, '-' for standard input "
                        "(else OPNC_NEXTCLOUD_PASSWORD)")
    g.add_argument("--ca-bundle", default=os.environ.get("OPNC_CA_BUNDLE"), metavar="FILE",
                   help="PEM file of extra CAs to trust (OPNC_CA_BUNDLE); TLS verification is always on")
    g.add_argument("--timeout", type=float, default=float(os.environ.get("OPNC_TIMEOUT", "30")),
                   help="seconds per request (default 30)")
    i = p.add_argument_group("integration")
    i.add_argument("--storage-name", default=os.environ.get("OPNC_STORAGE_NAME", "Nextcloud"),
                   help="name of the file storage in OpenProject (OPNC_STORAGE_NAME, default 'Nextcloud')")
    i.add_argument("--project-folders", action="store_true", default=_env_bool("OPNC_PROJECT_FOLDERS"),
                   help="set up automatically managed project folders (OPNC_PROJECT_FOLDERS=true)")
    i.add_argument("--state-dir", default=os.environ.get("OPNC_STATE_DIR"), metavar="DIR",
                   help="folder of the journals (OPNC_STATE_DIR; default $XDG_STATE_HOME/opnc or ~/.local/state/opnc)")
    i.add_argument("--wait", action="store_true", help="wait for another run on the same integration to finish")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    for name in _SECRET_ARGUMENTS:
        p.add_argument(name, dest=f"_secret_arg_{name}", nargs="?", const="", default=None, help=argparse.SUPPRESS)


def _read_secret(file_option: str, path: str | None, env: str, prompt: str, stdin_used: list[bool]) -> str:
    if path is not None:
        if path == "-":
            if stdin_used[0]:
                raise UsageError("only one secret can be read from standard input")
            stdin_used[0] = True
            value = sys.stdin.readline()
        else:
            try:
                with open(path, encoding="utf-8") as f:
                    value = f.read()
            except OSError as e:
                # The path is not echoed: a secret typed there by mistake must not reach the terminal log.
                raise UsageError(f"cannot read the file given with {file_option} ({e.strerror})") from None
        value = value.rstrip("\r\n")
    elif os.environ.get(env):
        value = os.environ[env]
    elif sys.stdin.isatty():
        value = getpass.getpass(prompt)
    else:
        raise UsageError(f"no secret given: use {file_option} FILE or set {env}")
    if not value.strip():
        raise UsageError(f"the secret given through {file_option} or {env} is empty")
    return value


def _check_no_secret_arguments(args: argparse.Namespace) -> None:
    for name in _SECRET_ARGUMENTS:
        if getattr(args, f"_secret_arg_{name}", None) is not None:
            raise UsageError(f"{name} is not accepted: a secret on the command line is visible to every user "
                             f"of this machine (ps). Use a --...-file option, standard input or an OPNC_* "
                             f"environment variable instead.")


def integration_from_args(args: argparse.Namespace) -> Any:
    import opnc

    _check_no_secret_arguments(args)
    missing = [opt for opt, value in (("--openproject-url", args.openproject_url), ("--nextcloud-url", args.nextcloud_url),
                                      ("--nextcloud-user", args.nextcloud_user)) if not value]
    if missing:
        raise UsageError("missing " + ", ".join(missing) + " (or the matching OPNC_* environment variables)")
    stdin_used = [False]
    token = _read_secret("--openproject-token-file", args.openproject_token_file, "OPNC_OPENPROJECT_TOKEN",
                         "OpenProject API token: ", stdin_used)
    password = _read_secret("--nextcloud-password-file", args.nextcloud_password_file, "OPNC_NEXTCLOUD_PASSWORD",
                            "Nextcloud password: ", stdin_used)
    op = opnc.OpenProject(args.openproject_url, token, ca_bundle=args.ca_bundle)
    nc = opnc.Nextcloud(args.nextcloud_url, args.nextcloud_user, password, ca_bundle=args.ca_bundle)
    return opnc.Integration(op, nc, storage_name=args.storage_name, project_folders=args.project_folders,
                            state_dir=args.state_dir, replace_storage=getattr(args, "replace_storage", False),
                            timeout=args.timeout, wait=args.wait)


def exit_code_for(error: BaseException) -> int:
    from opnc import errors

    if isinstance(error, errors.InvalidInput):
        return EXIT_INVALID_INPUT
    if isinstance(error, errors.VerifyFailed):
        return EXIT_VERIFY
    if isinstance(error, errors.EnterpriseRequired):
        # OpenProject refused the storage outright: nothing was created (a precondition, like preflight).
        return EXIT_PREFLIGHT
    if isinstance(error, errors.Error):
        return EXIT_PREFLIGHT if error.step in ("", "preflight") else EXIT_APPLY
    return EXIT_UNEXPECTED


def _print_json(data: dict[str, Any]) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def _report_error(args: argparse.Namespace, error: BaseException, partial: dict[str, Any] | None = None) -> int:
    from opnc import errors

    code = exit_code_for(error)
    if isinstance(error, errors.Error):
        info = error.to_dict()
    else:
        info = {"kind": "internal", "step": "", "message": f"unexpected {type(error).__name__}: {error}",
                "hint": "this is a bug in opnc; please report it with the output of --debug", "http_status": 0,
                "server_id": ""}
    if getattr(args, "json", False):
        out = dict(partial or {"changed": False, "steps": []})
        out["error"] = info
        _print_json(out)
    else:
        where = f" (step {info['step']})" if info.get("step") else ""
        print(f"opnc: error{where}: {info['message']}", file=sys.stderr)
        if info.get("hint"):
            print(f"opnc: hint: {info['hint']}", file=sys.stderr)
    return code


def _event_printer(args: argparse.Namespace):
    if args.json:
        return None

    def on_event(event: dict[str, Any]) -> None:
        kind, step = event["type"], event["step"]
        if kind == "step_started":
            print(f"  … {step}", file=sys.stderr, flush=True)
        elif kind == "step_finished":
            print(f"  ✓ {step} ({event['elapsed_ms']:.0f} ms){': ' + event['detail'] if event['detail'] else ''}",
                  file=sys.stderr, flush=True)
        elif kind == "step_failed":
            print(f"  ✗ {step}: {event['detail']}", file=sys.stderr, flush=True)
        elif kind == "note":
            print(f"  note: {event['detail']}", file=sys.stderr, flush=True)

    return on_event


def cmd_plan(args: argparse.Namespace) -> int:
    plan = integration_from_args(args).plan()
    if args.json:
        _print_json(plan.to_dict())
    else:
        print(plan)
    return EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    from opnc import errors

    integration = integration_from_args(args)
    try:
        result = integration.apply(on_event=_event_printer(args))
    except errors.Error as e:
        partial = e.result.to_dict() if getattr(e, "result", None) is not None else None
        return _report_error(args, e, partial)
    if args.json:
        _print_json(result.to_dict())
    else:
        print(result)
    if result.verify is not None and not result.verify.ok:
        return EXIT_VERIFY
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    result = integration_from_args(args).verify()
    if args.json:
        _print_json(result.to_dict())
    else:
        print(result)
    return EXIT_OK if result.ok else EXIT_VERIFY


def cmd_demo(args: argparse.Namespace) -> int:
    from opnc.demo import run_demo

    return run_demo(project_folders=not args.no_project_folders)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="opnc",
        description="Set up, check, repair and tear down the Two-way OAuth 2.0 connection between "
        "OpenProject and Nextcloud.",
        epilog="Exit codes: 0 done, 2 invalid input, 3 preflight failed (nothing changed), 4 apply failed "
        "(rerun resumes), 5 verify failed, 1 unexpected error.",
    )
    parser.add_argument("--version", action="version", version=f"opnc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("plan", help="show what apply would do (read only)")
    add_connection_options(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("apply", help="set up or repair the integration (converges; safe to rerun)")
    add_connection_options(p)
    p.add_argument("--replace-storage", action="store_true",
                   help="allow deleting an existing storage for this Nextcloud whose secrets opnc does not hold "
                        "(destroys its file links)")
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("verify", help="check that both sides agree and the credentials work (read only)")
    add_connection_options(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("demo", help="run the whole exchange against the built-in sandbox")
    p.add_argument("--no-project-folders", action="store_true", help="leave out automatically managed project folders")
    p.set_defaults(func=cmd_demo)

    try:
        from opnc.sandbox import cli as sandbox_cli
    except ImportError:  # pragma: no cover - the sandbox ships with the package
        sandbox_cli = None
    if sandbox_cli is not None and hasattr(sandbox_cli, "add_parser"):
        sandbox_cli.add_parser(sub)
        if "sandbox" in sub.choices and sub.choices["sandbox"].get_default("func") is None:
            sub.choices["sandbox"].set_defaults(func=sandbox_cli.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_INVALID_INPUT
    try:
        return int(args.func(args))
    except UsageError as e:
        print(f"opnc: error: {e}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    except KeyboardInterrupt:
        print("opnc: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - every error ends with an exit code and a message
        return _report_error(args, e)


if __name__ == "__main__":
    sys.exit(main())
