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
                     "--openproject-client-secret", "--nextcloud-app-password")


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
    g.add_argument("--setup-timeout", type=float, default=float(os.environ.get("OPNC_SETUP_TIMEOUT", "120")),
                   help="seconds for Nextcloud's setup request, which may revoke many users' tokens "
                        "(OPNC_SETUP_TIMEOUT, default 120)")
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


# integration_setup.sh's variables (nextcloud/integration_openproject) and the options they stand for.
SETUP_SCRIPT_VARIABLES = {
    "NEXTCLOUD_HOST": "--nextcloud-url",
    "OPENPROJECT_HOST": "--openproject-url",
    "OP_ADMIN_USERNAME": "OpenProject user ('apikey' with an API token)",
    "OP_ADMIN_PASSWORD": "OpenProject API token or password",
    "NC_ADMIN_USERNAME": "--nextcloud-user",
    "NC_ADMIN_PASSWORD": "Nextcloud password",
    "OPENPROJECT_STORAGE_NAME": "--storage-name",
    "SETUP_PROJECT_FOLDER": "--project-folders",
}


def _from_setup_script_env(args: argparse.Namespace) -> tuple[str, str, str]:
    """Fills the options from integration_setup.sh's environment variables; returns the OpenProject
    user, its token or password, and the Nextcloud password."""
    env = os.environ
    missing = [v for v in ("NEXTCLOUD_HOST", "OPENPROJECT_HOST", "OP_ADMIN_USERNAME", "OP_ADMIN_PASSWORD",
                           "NC_ADMIN_USERNAME", "NC_ADMIN_PASSWORD", "OPENPROJECT_STORAGE_NAME") if not env.get(v)]
    if missing:
        raise UsageError("--from-integration-setup-env: missing " + ", ".join(missing))
    args.nextcloud_url = env["NEXTCLOUD_HOST"]
    args.openproject_url = env["OPENPROJECT_HOST"]
    args.nextcloud_user = env["NC_ADMIN_USERNAME"]
    args.storage_name = env["OPENPROJECT_STORAGE_NAME"]
    args.project_folders = env.get("SETUP_PROJECT_FOLDER", "").strip().lower() == "true" or args.project_folders
    return env["OP_ADMIN_USERNAME"], env["OP_ADMIN_PASSWORD"], env["NC_ADMIN_PASSWORD"]


def integration_from_args(args: argparse.Namespace) -> Any:
    import opnc

    _check_no_secret_arguments(args)
    op_user = "apikey"
    if getattr(args, "from_integration_setup_env", False):
        op_user, token, password = _from_setup_script_env(args)
    else:
        missing = [opt for opt, value in (("--openproject-url", args.openproject_url),
                                          ("--nextcloud-url", args.nextcloud_url),
                                          ("--nextcloud-user", args.nextcloud_user)) if not value]
        if missing:
            raise UsageError("missing " + ", ".join(missing) + " (or the matching OPNC_* environment variables)")
        stdin_used = [False]
        token = _read_secret("--openproject-token-file", args.openproject_token_file, "OPNC_OPENPROJECT_TOKEN",
                             "OpenProject API token: ", stdin_used)
        password = _read_secret("--nextcloud-password-file", args.nextcloud_password_file, "OPNC_NEXTCLOUD_PASSWORD",
                                "Nextcloud password: ", stdin_used)
    op = opnc.OpenProject(args.openproject_url, token, ca_bundle=args.ca_bundle, user=op_user)
    nc = opnc.Nextcloud(args.nextcloud_url, args.nextcloud_user, password, ca_bundle=args.ca_bundle)
    return opnc.Integration(op, nc, storage_name=args.storage_name, project_folders=args.project_folders,
                            state_dir=args.state_dir, replace_storage=getattr(args, "replace_storage", False),
                            timeout=args.timeout, wait=args.wait, setup_timeout=args.setup_timeout)


def exit_code_for(error: BaseException) -> int:
    from opnc import errors

    if isinstance(error, errors.InvalidInput):
        return EXIT_INVALID_INPUT
    if isinstance(error, errors.VerifyFailed):
        return EXIT_VERIFY
    if isinstance(error, (errors.EnterpriseRequired, errors.ConfirmationRequired)):
        # OpenProject refused the storage outright, or the run stopped to ask: nothing was changed.
        return EXIT_PREFLIGHT
    if isinstance(error, errors.Error):
        return EXIT_PREFLIGHT if error.step in ("", "preflight") else EXIT_APPLY
    return EXIT_UNEXPECTED


def print_json(data: dict[str, Any]) -> None:
    """One JSON document on stdout, in one write: json.dump would write token by token, a system
    call each when stdout is unbuffered (PYTHONUNBUFFERED, or a pipe under some runners)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def _print_result(args: argparse.Namespace, result: Any) -> None:
    """A result object as one JSON object (--json) or as its readable text."""
    if args.json:
        print_json(result.to_dict())
    else:
        print(result)


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
        print_json(out)
    else:
        where = f" (step {info['step']})" if info.get("step") else ""
        print(f"opnc: error{where}: {info['message']}", file=sys.stderr)
        if info.get("hint"):
            print(f"opnc: hint: {info['hint']}", file=sys.stderr)
    return code


def _event_printer(args: argparse.Namespace) -> Any:
    """The progress display of a run, on stderr (stdout keeps the result): live on a terminal,
    plain lines when stderr is not a terminal or with --json."""
    from opnc.progress import LineProgress, progress_display

    return LineProgress(sys.stderr) if args.json else progress_display(sys.stderr)


def cmd_plan(args: argparse.Namespace) -> int:
    plan = integration_from_args(args).plan()
    _print_result(args, plan)
    return EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    from opnc import errors

    if getattr(args, "batch", None):
        from opnc.batch_cli import run_batch

        return run_batch(args)
    integration = integration_from_args(args)
    try:
        result = integration.apply(on_event=_event_printer(args))
    except errors.Error as e:
        partial = e.result.to_dict() if getattr(e, "result", None) is not None else None
        return _report_error(args, e, partial)
    _print_result(args, result)
    if result.verify is not None and not result.verify.ok:
        return EXIT_VERIFY
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    result = integration_from_args(args).verify()
    if args.user_flow:
        from opnc import user_flow

        result.checks += user_flow.run_for_cli(args).checks
    _print_result(args, result)
    return EXIT_OK if result.ok else EXIT_VERIFY


def cmd_status(args: argparse.Namespace) -> int:
    status = integration_from_args(args).status()
    _print_result(args, status)
    return EXIT_OK if status.healthy else EXIT_VERIFY


def cmd_rotate(args: argparse.Namespace) -> int:
    from opnc import errors

    if args.openproject_client_id and not args.openproject_client_secret_file:
        raise UsageError("--openproject-client-id needs --openproject-client-secret-file")
    secret = None
    if args.openproject_client_secret_file:
        secret = _read_secret("--openproject-client-secret-file", args.openproject_client_secret_file,
                              "OPNC_OPENPROJECT_CLIENT_SECRET", "OpenProject client secret: ", [False])
    if not (args.nextcloud_client or args.app_password or args.replace_storage or args.openproject_client_id):
        raise UsageError("choose what to rotate: --nextcloud-client, --app-password, --openproject-client-id with "
                         "--openproject-client-secret-file, or --replace-storage. OpenProject's own OAuth application "
                         "cannot be regenerated through its API: use \"Replace OAuth values\" in its storage settings "
                         "and pass the new values in, or --replace-storage (deletes the storage's file links)")
    integration = integration_from_args(args)
    try:
        result = integration.rotate(nextcloud_client=args.nextcloud_client, app_password=args.app_password,
                                    replace_storage=args.replace_storage, confirm=args.yes,
                                    openproject_client_id=args.openproject_client_id or "",
                                    openproject_client_secret=secret, on_event=_event_printer(args))
    except errors.Error as e:
        partial = e.result.to_dict() if getattr(e, "result", None) is not None else None
        return _report_error(args, e, partial)
    _print_result(args, result)
    return EXIT_OK if result.verify is None or result.verify.ok else EXIT_VERIFY


def cmd_teardown(args: argparse.Namespace) -> int:
    from opnc import errors

    integration = integration_from_args(args)
    try:
        result = integration.teardown(confirm=args.yes)
    except errors.ConfirmationRequired as e:
        if args.json or not sys.stdin.isatty():
            return _report_error(args, e)
        print(f"opnc: {e.message}", file=sys.stderr)
        if input("Delete it? [y/N] ").strip().lower() not in ("y", "yes"):
            print("opnc: nothing was changed", file=sys.stderr)
            return EXIT_PREFLIGHT
        result = integration.teardown(confirm=True)
    _print_result(args, result)
    return EXIT_OK


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
    parser.add_argument("--debug", action="store_true", default=_env_bool("OPNC_DEBUG"),
                        help="log every step and HTTP request (method, URL without query, status, time; never "
                             "credentials or bodies) to stderr (OPNC_DEBUG=true)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("plan", help="show what apply would do (read only)")
    add_connection_options(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("apply", help="set up or repair the integration (converges; safe to rerun)")
    add_connection_options(p)
    p.add_argument("--replace-storage", action="store_true",
                   help="allow deleting an existing storage for this Nextcloud whose secrets opnc does not hold "
                        "(destroys its file links)")
    from opnc import batch_cli

    batch_cli.add_batch_arguments(p)
    p.set_defaults(func=cmd_apply)

    p.add_argument("--from-integration-setup-env", action="store_true",
                   help="read the variables of integration_setup.sh (NEXTCLOUD_HOST, OPENPROJECT_HOST, "
                        "OP_ADMIN_USERNAME, OP_ADMIN_PASSWORD, NC_ADMIN_USERNAME, NC_ADMIN_PASSWORD, "
                        "OPENPROJECT_STORAGE_NAME, SETUP_PROJECT_FOLDER)")

    p = sub.add_parser("verify", help="check that both sides agree and the credentials work (read only)")
    add_connection_options(p)
    p.add_argument("--user-flow", action="store_true",
                   help="also connect a test user both ways through the OAuth flows (sandbox only: real servers "
                        "need a browser)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("status", help="report both sides, the journal and any drift (read only; exit 5 on drift)")
    add_connection_options(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("rotate", help="replace credentials: the Nextcloud client, the app password, or "
                                      "OpenProject's OAuth values")
    add_connection_options(p)
    p.add_argument("--nextcloud-client", action="store_true",
                   help="a new Nextcloud OAuth client, stored in OpenProject (OpenProject users reconnect once)")
    p.add_argument("--app-password", action="store_true", help="a new app password for the project folders")
    p.add_argument("--openproject-client-id", metavar="ID",
                   help="new OpenProject OAuth values made with \"Replace OAuth values\" in OpenProject's UI "
                        "(an id may start with '-': then write --openproject-client-id=ID)")
    p.add_argument("--openproject-client-secret-file", metavar="FILE",
                   help="file holding that client secret, '-' for standard input")
    p.add_argument("--replace-storage", action="store_true",
                   help="delete and recreate the storage (new OAuth values; destroys its file links; needs --yes)")
    p.add_argument("--yes", action="store_true", help="confirm --replace-storage")
    p.set_defaults(func=cmd_rotate)

    p = sub.add_parser("teardown", help="remove the integration from both servers and archive the journal")
    add_connection_options(p)
    p.add_argument("--yes", action="store_true",
                   help="confirm deleting the OpenProject storage (and its file links) without asking")
    p.set_defaults(func=cmd_teardown)

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
    from opnc.logging_bridge import debug_logging

    try:
        with debug_logging(args.debug, sys.stderr):
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
