"""`opnc sandbox`: run OpenProject and Nextcloud emulators on 127.0.0.1 until Ctrl-C or SIGTERM.

The credentials go to an env file (mode 0600, written atomically), never to the terminal: its path
is in the banner, with the line that loads it into a shell. Without ``--env-file`` the file is
written to a private temporary folder. The file is removed when the sandbox stops, since the
credentials in it die with the emulators.

Env file variables: ``OPNC_OPENPROJECT_URL``, ``OPNC_OPENPROJECT_TOKEN``, ``OPNC_NEXTCLOUD_URL``,
``OPNC_NEXTCLOUD_USER``, ``OPNC_NEXTCLOUD_PASSWORD`` (and ``OPNC_CA_BUNDLE`` with ``--tls``). With
``--pairs N`` (N > 1) the same names follow for every pair with a suffix ``_1`` .. ``_N``, plus
``OPNC_PAIRS=N``; the unsuffixed names are pair 1's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
from typing import Any, TextIO

from opnc.sandbox import Sandbox

# Config fields that hold credentials: they must not be given on the command line, where every
# local user can read them (`ps`). The sandbox generates them.
_CREDENTIAL_WORDS = ("token", "password", "secret")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "sandbox",
        help="run local OpenProject and Nextcloud emulators (for trying opnc, playbooks and runbooks)",
        description="Runs emulators of OpenProject and Nextcloud on 127.0.0.1 until Ctrl-C or SIGTERM. "
        "Their URLs and credentials go to an env file (mode 0600), never to the terminal.",
    )
    parser.add_argument("--openproject-port", type=_port, default=0, metavar="PORT",
                        help="port of the (first) OpenProject emulator; 0 (default) lets the system pick; "
                        "with --pairs, pair N uses PORT+N-1")
    parser.add_argument("--nextcloud-port", type=_port, default=0, metavar="PORT",
                        help="port of the (first) Nextcloud emulator; 0 (default) lets the system pick")
    parser.add_argument("--pairs", type=_positive, default=1, metavar="N",
                        help="number of independent OpenProject and Nextcloud pairs (default 1)")
    parser.add_argument("--latency-ms", type=_non_negative, default=0, metavar="MS",
                        help="delay every answer by MS milliseconds (answers still overlap)")
    parser.add_argument("--tls", action="store_true",
                        help="serve HTTPS with a throwaway CA made at start; its bundle is OPNC_CA_BUNDLE")
    parser.add_argument("--env-file", metavar="FILE",
                        help="write the OPNC_* variables to FILE (mode 0600); default: a file in a private "
                        "temporary folder, shown in the banner")
    parser.add_argument("--openproject-set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override an OpenProject emulator setting, e.g. version=15.0.0 or enterprise=true "
                        "(VALUE is read as JSON when it is JSON, else as text); repeatable")
    parser.add_argument("--nextcloud-set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a Nextcloud emulator setting, e.g. app_version=2.8.1 or groupfolders=false; "
                        "repeatable")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace, out: TextIO | None = None, stop: threading.Event | None = None) -> int:
    """Runs until SIGINT or SIGTERM (in the main thread) or until `stop` is set; returns the exit code."""
    out = out or sys.stdout
    try:
        from opnc.sandbox.nextcloud import NextcloudConfig
        from opnc.sandbox.openproject import OpenProjectConfig

        openproject = _overrides(OpenProjectConfig, args.openproject_set, "--openproject-set")
        nextcloud = _overrides(NextcloudConfig, args.nextcloud_set, "--nextcloud-set")
    except ValueError as exc:
        print(f"opnc sandbox: error: {exc}", file=sys.stderr)
        return 2
    if args.openproject_port and args.nextcloud_port and \
            abs(args.openproject_port - args.nextcloud_port) < args.pairs:
        print("opnc sandbox: error: with --pairs N, pair N uses PORT+N-1: the OpenProject and Nextcloud "
              "port ranges overlap", file=sys.stderr)
        return 2
    sandbox = Sandbox(pairs=args.pairs, tls=args.tls, latency_ms=args.latency_ms,
                      openproject=openproject or None, nextcloud=nextcloud or None,
                      openproject_port=args.openproject_port, nextcloud_port=args.nextcloud_port)
    try:
        sandbox.start()
    except (TypeError, ValueError) as exc:  # an unknown or invalid setting
        print(f"opnc sandbox: error: invalid setting: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"opnc sandbox: error: cannot start the emulators: {exc.strerror or exc}", file=sys.stderr)
        return 1

    stop_requested = stop or threading.Event()
    received: list[str] = []
    previous = _install_signal_handlers(stop_requested, received)
    private_dir: str | None = None
    env_file = args.env_file
    written: os.stat_result | None = None
    try:
        if env_file is None:
            private_dir = tempfile.mkdtemp(prefix="opnc-sandbox-")
            env_file = os.path.join(private_dir, "sandbox.env")
        env_file = os.path.abspath(env_file)
        try:
            written = write_env_file(env_file, env_variables(sandbox))
        except (OSError, ValueError) as exc:
            print(f"opnc sandbox: error: cannot write the env file {env_file}: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, ValueError) else 1
        print(banner(sandbox, env_file), file=out, flush=True)
        while not stop_requested.wait(0.2):
            pass
        print(f"opnc sandbox: {received[0] if received else 'stop'} received, stopping", file=out, flush=True)
    finally:
        _restore_signal_handlers(previous)
        sandbox.stop()
        if written is not None:
            _remove_if_unchanged(env_file, written)
        if private_dir is not None:
            shutil.rmtree(private_dir, ignore_errors=True)
    print("opnc sandbox: stopped", file=out, flush=True)
    return 0


def env_variables(sandbox: Sandbox) -> dict[str, str]:
    variables = dict(sandbox.env(0))
    if len(sandbox.pairs) > 1:
        variables["OPNC_PAIRS"] = str(len(sandbox.pairs))
        for index in range(len(sandbox.pairs)):
            for name, value in sandbox.env(index).items():
                variables[f"{name}_{index + 1}"] = value
    return variables


def write_env_file(path: str, variables: dict[str, str]) -> os.stat_result:
    """Writes `KEY=value` lines atomically with mode 0600: temporary file, fsync, rename, fsync folder.

    The format is read by ``set -a; . FILE``, ``docker --env-file`` and systemd's EnvironmentFile;
    values are URLs, paths and generated tokens, none of which needs quoting (checked).
    """
    lines = []
    for name, value in variables.items():
        if any(ch in value for ch in " \t\n'\"\\$`#;&|<>()"):
            raise ValueError(f"{name} holds a character that an env file cannot carry unquoted")
        lines.append(f"{name}={value}\n")
    directory = os.path.dirname(path) or "."
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("# opnc sandbox: valid while `opnc sandbox` runs; removed when it stops\n")
            handle.writelines(lines)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    folder = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return os.stat(path)


def banner(sandbox: Sandbox, env_file: str) -> str:
    count = len(sandbox.pairs)
    lines = [f"opnc sandbox: {count} pair{'s' if count > 1 else ''} of emulators on 127.0.0.1"
             f"{' (HTTPS)' if sandbox.ca_bundle else ''}"]
    for pair in sandbox.pairs:
        suffix = f"_{pair.index + 1}" if count > 1 else ""
        if count > 1:
            lines.append(f"  pair {pair.index + 1}")
        op_version = getattr(pair.openproject.config, "version", "?")
        nc_version = getattr(pair.nextcloud.config, "version", "?")
        app_version = getattr(pair.nextcloud.config, "app_version", "?")
        indent = "    " if count > 1 else "  "
        lines.append(f"{indent}OpenProject {op_version:<8} {pair.openproject.url}   token: $OPNC_OPENPROJECT_TOKEN{suffix}")
        lines.append(f"{indent}Nextcloud   {nc_version:<8} {pair.nextcloud.url}   user {pair.nextcloud.user}, "
                     f"password: $OPNC_NEXTCLOUD_PASSWORD{suffix} (integration_openproject {app_version})")
    if sandbox.ca_bundle:
        lines.append(f"  CA bundle   {sandbox.ca_bundle}")
    curl_tls = ' --cacert "$OPNC_CA_BUNDLE"' if sandbox.ca_bundle else ""
    lines += [
        f"  env file    {env_file} (mode 0600, removed at stop)",
        "",
        "Load it into a shell and try it (printf is a shell builtin: the token stays out of argv):",
        f"  set -a; . {shlex.quote(env_file)}; set +a",
        f"  printf 'user = \"apikey:%s\"\\n' \"$OPNC_OPENPROJECT_TOKEN\" | curl -sS{curl_tls} -K - \"$OPNC_OPENPROJECT_URL/api/v3\"",
        "Control API on each URL: /_sandbox/state, /_sandbox/requests, /_sandbox/faults, /_sandbox/latency, "
        "/_sandbox/reset, /_sandbox/config",
        "Ready. Ctrl-C or SIGTERM stops it.",
    ]
    return "\n".join(lines)


def _overrides(config_class: Any, items: list[str], option: str) -> dict[str, Any]:
    """FIELD=VALUE items as config overrides, each VALUE converted to the field's declared type."""
    fields = {field.name: field for field in dataclasses.fields(config_class)}
    overrides: dict[str, Any] = {}
    for item in items:
        name, separator, text = item.partition("=")
        name = name.strip()
        if not separator or not name:
            raise ValueError(f"{option} expects FIELD=VALUE")
        if any(word in name.lower() for word in _CREDENTIAL_WORDS):
            raise ValueError(f"{option}: {name} is a credential; the sandbox generates it (see the env file)")
        field = fields.get(name)
        if field is None:
            raise ValueError(f"{option}: unknown setting {name!r}; known: {', '.join(sorted(fields))}")
        overrides[name] = _convert(text, str(field.type), f"{option} {name}")
    return overrides


def _convert(text: str, declared: str, what: str) -> Any:
    kind = declared.split("|")[0].strip()  # "str | None" -> "str"
    if kind == "str":
        return text
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        raise ValueError(f"{what}: expected true or false")
    if kind in ("int", "float"):
        try:
            return int(text) if kind == "int" else float(text)
        except ValueError:
            raise ValueError(f"{what}: expected a number") from None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _install_signal_handlers(stop_requested: threading.Event, received: list[str]) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}  # signals reach the main thread only; the caller stops us some other way

    def handle(signum: int, frame: Any) -> None:
        received.append(signal.Signals(signum).name)
        stop_requested.set()

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handle)
    return previous


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _remove_if_unchanged(path: str, written: os.stat_result) -> None:
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return
    if (current.st_ino, current.st_dev) == (written.st_ino, written.st_dev):
        os.remove(path)


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("a port is 0 to 65535")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value
