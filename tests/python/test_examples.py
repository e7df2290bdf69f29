"""Issue 8, examples and docs: examples/admin_script.py, examples/runbook.ipynb and every example of
the README's section on the faces, run against the sandbox."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import opnc
import opnc._core

REPO = Path(__file__).resolve().parents[2]
ADMIN_SCRIPT = REPO / "examples" / "admin_script.py"
RUNBOOK = REPO / "examples" / "runbook.ipynb"
README = REPO / "README.md"


def opnc_pythonpath() -> str:
    """The folders this interpreter imports opnc and its compiled core from (a source tree and a
    build folder, or one installed package)."""
    folders = [str(Path(p).parent) for p in opnc.__path__] + [str(Path(opnc._core.__file__).parent.parent)]
    return os.pathsep.join(dict.fromkeys(folders))


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This process's environment without OPNC_* and ANSIBLE_*, with opnc importable, HOME and the
    Jupyter and Ansible folders inside the test's folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPNC_", "ANSIBLE_", "JUPYTER"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(PYTHONPATH=opnc_pythonpath(), HOME=str(home), IPYTHONDIR=str(home / ".ipython"),
               JUPYTER_RUNTIME_DIR=str(home / "jupyter-runtime"), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


# -- examples/admin_script.py ---------------------------------------------------------------------

def run_admin_script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ADMIN_SCRIPT), *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_admin_script_sets_up_verifies_and_reruns_without_change(sandbox, tmp_path):
    env = clean_env(tmp_path, **sandbox.env(), OPNC_STATE_DIR=str(tmp_path / "state"))
    first = run_admin_script(env, "--project-folders", "--debug")
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout.splitlines()
    assert out[0] == "Plan:"
    assert "Apply: the integration is set up." in out
    assert "Verify: all checks passed." in out
    # Progress lines (stderr is a pipe: plain lines) and the DEBUG log of every request.
    assert re.search(r"^  ✓ create_storage \(\d+ ms\)", first.stderr, re.M), first.stderr
    assert re.search(r"DEBUG   opnc\.http: POST " + re.escape(sandbox.openproject.url) + r"/api/v3/storages -> 201 ",
                     first.stderr), first.stderr
    storages = sandbox.openproject.state()["storages"]
    assert len(storages) == 1 and storages[0]["has_application_password"] is True

    second = run_admin_script(env, "--project-folders")
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.splitlines()[0] == "Nothing to do: the integration is complete."
    assert "Apply: nothing to do, the integration was already complete." in second.stdout.splitlines()

    for secret in sandbox.secrets():
        for text in (first.stdout, first.stderr, second.stdout, second.stderr):
            assert secret not in text


def test_admin_script_dry_run_changes_nothing(sandbox, tmp_path):
    env = clean_env(tmp_path, **sandbox.env(), OPNC_STATE_DIR=str(tmp_path / "state"))
    run = run_admin_script(env, "--dry-run")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[:4] == ["Plan:", *run.stdout.splitlines()[1:4]]
    assert [line.split()[1] for line in run.stdout.splitlines()[1:4]] == [
        "create_storage", "configure_nextcloud", "store_nextcloud_client"]
    assert [r for r in sandbox.openproject.requests() if r["method"] != "GET"] == []
    assert [r for r in sandbox.nextcloud.requests() if r["method"] != "GET"] == []


def test_admin_script_names_missing_settings(tmp_path):
    run = run_admin_script(clean_env(tmp_path))
    assert run.returncode == 2
    assert run.stderr.strip() == ("error: missing settings: OPNC_OPENPROJECT_URL, OPNC_OPENPROJECT_TOKEN, "
                                  "OPNC_NEXTCLOUD_URL, OPNC_NEXTCLOUD_USER, OPNC_NEXTCLOUD_PASSWORD "
                                  "(export them, or try --sandbox)")


def test_admin_script_runs_against_its_own_sandbox(tmp_path):
    run = run_admin_script(clean_env(tmp_path), "--sandbox")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Verify: all checks passed." in run.stdout.splitlines()


# -- notebooks ------------------------------------------------------------------------------------

@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    """A Jupyter kernel spec that runs this very interpreter (with opnc importable), for nbclient."""
    # Test dependencies (tools/bootstrap installs them): missing is a failure, not a skip.
    assert importlib.util.find_spec("nbclient") and importlib.util.find_spec("ipykernel")
    kernels = tmp_path / "jupyter" / "kernels" / "opnc-test"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "opnc test", "language": "python"}))
    for key, value in clean_env(tmp_path).items():
        if key in ("PYTHONPATH", "HOME", "IPYTHONDIR", "JUPYTER_RUNTIME_DIR"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    return "opnc-test"


def execute_notebook(nb: Any, kernel_name: str, cwd: Path) -> Any:
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=120, kernel_name=kernel_name, resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def html_outputs(cell: Any) -> list[str]:
    return [o["data"]["text/html"] for o in cell.get("outputs", [])
            if o.get("output_type") in ("display_data", "execute_result") and "text/html" in o.get("data", {})]


def test_runbook_is_committed_without_outputs():
    nb = json.loads(RUNBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(code) >= 6
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)


def test_runbook_runs_top_to_bottom_against_the_sandbox(kernel_env, tmp_path):
    import nbformat

    nb = execute_notebook(nbformat.read(str(RUNBOOK), as_version=4), kernel_env, tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    assert errors == []
    by_source = {c.source.splitlines()[0]: c for c in code}
    plan_html = html_outputs(by_source["plan = integration.plan()"])
    assert len(plan_html) == 1 and "<table>" in plan_html[0] and "opnc plan" in plan_html[0]
    for step in ("create_storage", "configure_nextcloud", "store_nextcloud_client", "set_app_password"):
        assert f"<td style='text-align:left'>{step}</td>" in plan_html[0]

    apply_html = html_outputs(by_source["result = integration.apply(on_event=NotebookProgress())"])
    # The progress table (updated in place: one output, its final state) and the result's table.
    progress = [h for h in apply_html if "opnc-progress" in h]
    assert len(progress) == 1
    for step in ("preflight", "create_storage", "configure_nextcloud", "store_nextcloud_client",
                 "set_app_password", "verify"):
        assert f"<td style='text-align:left'>{step}</td><td style='text-align:left'>done</td>" in progress[0]
    assert "running" not in progress[0]
    assert any("opnc apply" in h and "<table>" in h for h in apply_html if h not in progress)
    assert any("opnc verify" in h for h in html_outputs(by_source["verification = integration.verify()"]))
    status_html = html_outputs(by_source["status = integration.status()"])
    assert len(status_html) == 1 and "opnc status" in status_html[0] and "<table>" in status_html[0]
    teardown_html = html_outputs(by_source["TEARDOWN = USE_SANDBOX"])
    assert len(teardown_html) == 1 and "opnc teardown" in teardown_html[0]
    assert "<td style='text-align:left'>removed</td>" in teardown_html[0]


# -- README.md, the faces --------------------------------------------------------------------------------

# Executes faces.ipynb inside the bash script, so that its kernel sees the sandbox's variables.
NOTEBOOK_RUNNER = """import nbformat
from nbclient import NotebookClient
nb = nbformat.read("faces.ipynb", as_version=4)
NotebookClient(nb, timeout=120, kernel_name="{kernel}").execute()
nbformat.write(nb, "faces.out.ipynb")
"""

BLOCK = re.compile(r"(?:<!-- (?P<marker>[^>]*?) -->\n)?```(?P<lang>\w+)\n(?P<body>.*?)```", re.S)


def faces_text() -> str:
    """The README's section on the faces (Python, CLI, Ansible, Jupyter), between its markers."""
    text = README.read_text()
    begin = text.index("<!-- faces:begin")
    return text[text.index("\n", begin) + 1:text.index("<!-- faces:end -->")]


def faces_blocks() -> list[tuple[str, str, str]]:
    """(language, marker, code) of every fenced block, in order."""
    return [(m["lang"], (m["marker"] or "").strip(), m["body"]) for m in BLOCK.finditer(faces_text())]


def test_every_block_of_the_faces_readme_is_exercised():
    kinds = [(lang, marker.split(":")[0]) for lang, marker, _ in faces_blocks()]
    # The runner below handles exactly these kinds; a new kind of block needs a runner first.
    assert set(kinds) <= {("sh", ""), ("python", ""), ("python", "notebook"), ("yaml", "file")}
    assert kinds.count(("sh", "")) >= 5 and kinds.count(("python", "")) >= 2
    assert ("python", "notebook") in kinds and ("yaml", "file") in kinds


def test_faces_readme_examples_run_in_order_against_the_sandbox(kernel_env, tmp_path):
    import nbformat

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "opnc"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m opnc \"$@\"\n")
    wrapper.chmod(0o755)
    notebook_cells: list[str] = []
    script = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT"]
    for lang, marker, body in faces_blocks():
        if lang == "sh":
            script.append(body)
        elif lang == "python" and marker == "notebook":
            notebook_cells.append(body)
        elif lang == "python":
            script.append(f"{sys.executable} - <<'OPNC_PYTHON_EXAMPLE'\n{body}OPNC_PYTHON_EXAMPLE")
        elif lang == "yaml":
            name = marker.split(":", 1)[1].strip()
            script.append(f"cat > {name} <<'OPNC_FILE_EXAMPLE'\n{body}OPNC_FILE_EXAMPLE")
    # The notebook examples run last, in a kernel that inherits the sandbox's variables.
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.strip()) for c in notebook_cells])
    nbformat.write(nb, str(tmp_path / "faces.ipynb"))
    script.append(f"{sys.executable} - <<'OPNC_NOTEBOOK_RUNNER'\n{NOTEBOOK_RUNNER.format(kernel=kernel_env)}"
                  "OPNC_NOTEBOOK_RUNNER")
    (tmp_path / "faces.sh").write_text("\n".join(script) + "\n")
    env = clean_env(tmp_path, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                    OPNC_STATE_DIR=str(tmp_path / "state"), ANSIBLE_COLLECTIONS_PATH=str(REPO),
                    ANSIBLE_HOME=str(tmp_path / "ansible"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible" / "tmp"),
                    ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
                    ANSIBLE_NOCOLOR="true", JUPYTER_PATH=str(tmp_path / "jupyter"))
    run = subprocess.run(["bash", "faces.sh"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

    out = run.stdout
    assert "Plan:" in out and "Apply: the integration is set up." in out
    assert "verify exit code: 0" in out
    debug_log = (tmp_path / "plan-debug.log").read_text()
    assert re.search(r" DEBUG   opnc\.http: GET http://127\.0\.0\.1:\d+/api/v3 -> 200 ", debug_log), debug_log
    assert '"ok": true' in out  # opnc verify --json
    # The Python examples: the second one printed its result as JSON (the integration was done).
    assert '"changed": false' in out
    # Ansible: the CLI and Python examples before it have converged the pair already, so both
    # playbook runs (the second in check mode) find nothing to change.
    assert re.findall(r"localhost\s+: ok=\d+\s+changed=(\d+)", out) == ["0", "0"], out
    executed = nbformat.read(str(tmp_path / "faces.out.ipynb"), as_version=4)
    html = [h for c in executed.cells for h in html_outputs(c)]
    assert any("opnc plan" in h and "<table>" in h for h in html)
    assert any("opnc-progress" in h for h in html)
    assert any("opnc apply" in h and "<table>" in h for h in html)
