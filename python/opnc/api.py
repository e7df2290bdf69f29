"""The Python API: describe both servers, then plan, apply and verify their integration.

    import opnc
    op = opnc.OpenProject("https://openproject.example", api_token=token)
    nc = opnc.Nextcloud("https://cloud.example", "admin", password)
    integration = opnc.Integration(op, nc, project_folders=True)
    print(integration.plan())
    result = integration.apply(on_event=print)
    assert integration.verify().ok

Credentials are kept as :class:`opnc.Secret` (never printed); every network call runs in the C++
core with the GIL released, so threads and Ctrl-C keep working.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from opnc import _core

if not hasattr(_core, "Integration"):  # only the type stubs were found: the build is missing
    raise ImportError("opnc's compiled core (opnc._core) is missing: reinstall opnc (bash tools/bootstrap)")
from opnc.errors import from_core
from opnc.logging_bridge import logged_events
from opnc.results import ApplyResult, Plan, Status, TeardownResult, VerifyResult

SecretLike = "str | _core.Secret"


def _secret(value: Any, what: str) -> _core.Secret:
    if isinstance(value, _core.Secret):
        return value
    if isinstance(value, str):
        return _core.Secret(value)
    raise TypeError(f"{what} must be a str or opnc.Secret, not {type(value).__name__}")


class OpenProject:
    """An OpenProject instance and the API token of an active administrator."""

    def __init__(self, url: str, api_token: "str | _core.Secret", ca_bundle: str | os.PathLike[str] | None = None,
                 *, user: str = "apikey") -> None:
        self.url = url
        self.api_token = _secret(api_token, "api_token")
        self.ca_bundle = os.fspath(ca_bundle) if ca_bundle else None
        # "apikey" with an API token (the default); a login name makes api_token that user's password.
        self.user = user

    def __repr__(self) -> str:
        return f"OpenProject({self.url!r}, api_token=[redacted])"


class Nextcloud:
    """A Nextcloud instance and the credentials of an administrator (an app password is best)."""

    def __init__(self, url: str, user: str, password: "str | _core.Secret",
                 ca_bundle: str | os.PathLike[str] | None = None) -> None:
        self.url = url
        self.user = user
        self.password = _secret(password, "password")
        self.ca_bundle = os.fspath(ca_bundle) if ca_bundle else None

    def __repr__(self) -> str:
        return f"Nextcloud({self.url!r}, user={self.user!r}, password=[redacted])"


EventCallback = Callable[[dict[str, Any]], None]


class Integration:
    """The Two-way OAuth 2.0 integration of one OpenProject and one Nextcloud.

    ``storage_name`` names the file storage in OpenProject; ``project_folders`` sets up automatically
    managed project folders; ``state_dir`` holds the journal (default ``$OPNC_STATE_DIR``,
    ``$XDG_STATE_HOME/opnc`` or ``~/.local/state/opnc``); ``replace_storage`` allows deleting a
    storage for the same Nextcloud whose secrets opnc does not hold (its file links are lost);
    ``wait`` waits for another run on the same integration instead of failing at once.
    """

    def __init__(self, openproject: OpenProject, nextcloud: Nextcloud, storage_name: str = "Nextcloud",
                 project_folders: bool = False, state_dir: str | os.PathLike[str] | None = None,
                 replace_storage: bool = False, timeout: float = 30.0, wait: bool = False,
                 setup_timeout: float = 120.0) -> None:
        self.openproject = openproject
        self.nextcloud = nextcloud
        self.storage_name = storage_name
        self.project_folders = project_folders
        self.state_dir = os.fspath(state_dir) if state_dir else ""
        self.replace_storage = replace_storage
        ca_bundle = openproject.ca_bundle or nextcloud.ca_bundle or ""
        self._core = _core.Integration(
            openproject.url, openproject.api_token, nextcloud.url, nextcloud.user, nextcloud.password,
            storage_name=storage_name, project_folders=project_folders, replace_storage=replace_storage,
            state_dir=self.state_dir, ca_bundle=ca_bundle, timeout=timeout, wait_for_lock=wait,
            openproject_user=openproject.user, setup_timeout=setup_timeout,
        )

    def __repr__(self) -> str:
        return (f"Integration({self.openproject!r}, {self.nextcloud!r}, storage_name={self.storage_name!r}, "
                f"project_folders={self.project_folders})")

    @property
    def journal_path(self) -> str:
        """The journal file of this integration (it may not exist yet)."""
        return self._core.journal_path()

    def plan(self) -> Plan:
        """Reads both sides (nothing changes) and tells what :meth:`apply` would do and why."""
        return Plan.from_core(self._core.plan())

    def apply(self, on_event: EventCallback | None = None) -> ApplyResult:
        """Converges: runs only the missing steps, then verifies.

        ``on_event`` receives dicts ``{"type", "step", "detail", "elapsed_ms"}`` while it runs.
        Raises an :class:`opnc.Error` subclass when preflight fails (nothing changed) or when a step
        fails (the journal is kept and the next run resumes; the partial result is ``error.result``).
        """
        return _raise_failed(ApplyResult.from_core(self._core.apply(logged_events(on_event))))

    def verify(self) -> VerifyResult:
        """Read-only checks that both sides agree with each other and with the journal, and that
        the credentials work."""
        return VerifyResult.from_core(self._core.verify())

    def status(self) -> Status:
        """A read-only report of both sides, the journal and every disagreement between them
        (drift), each line ok, warning or problem with a hint. ``healthy`` is False on any problem."""
        return Status.from_core(self._core.status())

    def rotate(self, *, nextcloud_client: bool = False, app_password: bool = False, replace_storage: bool = False,
               confirm: bool = False, openproject_client_id: str = "",
               openproject_client_secret: "str | _core.Secret | None" = None,
               on_event: EventCallback | None = None) -> ApplyResult:
        """Replaces credentials, then verifies.

        ``nextcloud_client``: a new Nextcloud OAuth client, stored in OpenProject (every OpenProject
        user reconnects to Nextcloud once). ``app_password``: a new app password for the project
        folders. OpenProject's own OAuth application cannot be regenerated through its API: generate
        new values with "Replace OAuth values" in OpenProject's storage settings and pass them as
        ``openproject_client_id`` and ``openproject_client_secret``, or use ``replace_storage`` with
        ``confirm=True`` (deletes and recreates the storage, losing its file links).
        """
        from opnc.errors import ConfirmationRequired

        if replace_storage and not confirm:
            raise ConfirmationRequired(
                "replacing the storage deletes it in OpenProject, with its file links and project settings.",
                hint="confirm with --yes (Python: rotate(replace_storage=True, confirm=True))", step="preflight")
        secret = _secret(openproject_client_secret, "openproject_client_secret") if openproject_client_secret else None
        return _raise_failed(ApplyResult.from_core(self._core.rotate(
            nextcloud_client=nextcloud_client, app_password=app_password, replace_storage=replace_storage,
            openproject_client_id=openproject_client_id, openproject_client_secret=secret, on_event=logged_events(on_event))))

    def teardown(self, *, confirm: bool = False, on_event: EventCallback | None = None) -> TeardownResult:
        """Removes the integration: deletes the storage in OpenProject (its file links go with it,
        hence ``confirm=True``), resets Nextcloud's integration settings, and archives the journal.
        Reports what stays on Nextcloud (the OpenProject user, group, team folder and app password)
        with how to remove it. Running it again changes nothing."""
        return TeardownResult.from_core(self._core.teardown(delete_storage=confirm, on_event=logged_events(on_event)))


def _raise_failed(result: ApplyResult) -> ApplyResult:
    """Raises the error of a run whose step failed, with the partial result as ``error.result``."""
    if result.error is not None:
        e = result.error
        exc = from_core(e["kind"], e["message"], e["hint"], e["step"], e["http_status"], e["server_id"], "")
        exc.result = result  # type: ignore[attr-defined]
        raise exc
    return result
