"""pytest plugin: the ``opnc_sandbox`` fixture, a fresh running :class:`opnc.sandbox.Sandbox` per test.

Enabled automatically when opnc is installed (entry point ``pytest11``); in a source checkout add
``pytest_plugins = ["opnc.sandbox.pytest_plugin"]`` to your top-level ``conftest.py`` (or run
``pytest -p opnc.sandbox.pytest_plugin``)::

    def test_storage_is_created(opnc_sandbox):
        env = opnc_sandbox.env()            # OPNC_OPENPROJECT_URL, OPNC_OPENPROJECT_TOKEN, ...
        run_my_playbook(env)
        assert len(opnc_sandbox.openproject.state()["storages"]) == 1

``opnc_sandbox_env`` also sets those variables in ``os.environ`` for the duration of the test.

The ``opnc_sandbox`` marker passes arguments to :class:`Sandbox`::

    @pytest.mark.opnc_sandbox(tls=True, pairs=2, nextcloud={"groupfolders": False})
    def test_without_groupfolders(opnc_sandbox): ...
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from opnc.sandbox import Sandbox


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "opnc_sandbox(pairs=1, tls=False, latency_ms=0, openproject=None, nextcloud=None): "
        "arguments of the Sandbox that the opnc_sandbox fixture starts for this test",
    )


@pytest.fixture
def opnc_sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """A running Sandbox (one OpenProject and one Nextcloud emulator), stopped after the test."""
    options: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("opnc_sandbox"))):
        options.update(marker.kwargs)  # the marker closest to the test wins
    with Sandbox(**options) as sandbox:
        yield sandbox


@pytest.fixture
def opnc_sandbox_env(opnc_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The sandbox's ``OPNC_*`` variables, also set in ``os.environ`` for the test (then restored),
    so tools that read their settings from the environment find the sandbox."""
    variables = opnc_sandbox.env()
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return variables
