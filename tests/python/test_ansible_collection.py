"""The collection opnc.integration as a package: ansible-doc renders both modules, the documentation
matches the argument specs (names, types, defaults, no_log, environment fallbacks), and
`ansible-galaxy collection build` makes a tarball with everything in it. No server is involved."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "ansible_collections" / "opnc" / "integration"
MODULES = ("opnc.integration.integration", "opnc.integration.integration_info")

# ansible-core is a test dependency (tools/bootstrap installs it): its absence is a failure, not a skip.
assert shutil.which("ansible-doc"), "ansible-core is not installed (bash tools/bootstrap installs it)"

# The connection options and the environment variables of the opnc CLI they fall back to.
ENVIRONMENT = {
    "openproject_url": "OPNC_OPENPROJECT_URL",
    "openproject_token": "OPNC_OPENPROJECT_TOKEN",
    "nextcloud_url": "OPNC_NEXTCLOUD_URL",
    "nextcloud_user": "OPNC_NEXTCLOUD_USER",
    "nextcloud_password": "OPNC_NEXTCLOUD_PASSWORD",
    "ca_bundle": "OPNC_CA_BUNDLE",
    "timeout": "OPNC_TIMEOUT",
    "storage_name": "OPNC_STORAGE_NAME",
    "project_folders": "OPNC_PROJECT_FOLDERS",
    "state_dir": "OPNC_STATE_DIR",
}


def ansible_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(REPO), ANSIBLE_HOME=str(tmp_path / "ansible-home"),
               ANSIBLE_NOCOLOR="true", ANSIBLE_CONFIG=str(tmp_path / "no-ansible.cfg"))
    return env


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("ansible-doc")
    proc = subprocess.run(["ansible-doc", "--json", *MODULES], env=ansible_env(tmp), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def argument_specs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The argument specs as the modules build them, loaded through Ansible's collection loader
    (in a child process: the loader installs itself in sys.meta_path)."""
    tmp = tmp_path_factory.mktemp("argspec")
    script = f"""
import json
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
_AnsibleCollectionFinder(paths=[{str(REPO)!r}])._install()
from ansible_collections.opnc.integration.plugins.modules import integration, integration_info
from ansible_collections.opnc.integration.plugins.module_utils.connection import connection_argument_spec

def plain(spec):
    return {{name: {{k: (list(v) if k == "fallback" else v) for k, v in option.items()}}
             for name, option in spec.items()}}

print(json.dumps({{"opnc.integration.integration": plain(integration.argument_spec()),
                  "opnc.integration.integration_info": plain(connection_argument_spec())}}, default=str))
"""
    proc = subprocess.run(["/usr/bin/python3", "-c", script], env=ansible_env(tmp), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_the_module_as_text(module, tmp_path):
    proc = subprocess.run(["ansible-doc", module], env=ansible_env(tmp_path), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith(f"> {module.upper()}    (")
    for heading in ("OPTIONS (= is mandatory):", "EXAMPLES:", "RETURN VALUES:", "REQUIREMENTS:", "NOTES:"):
        assert heading in proc.stdout
    assert "= openproject_token" in proc.stdout


@pytest.mark.parametrize("module", MODULES)
def test_documented_options_are_exactly_the_argument_spec(module, docs, argument_specs):
    documented = docs[module]["doc"]["options"]
    spec = argument_specs[module]
    assert sorted(documented) == sorted(spec)
    for name, option in spec.items():
        doc = documented[name]
        assert doc["type"] == option["type"], name
        assert doc.get("required", False) == option.get("required", False), name
        assert doc.get("default") == option.get("default"), name
        assert doc.get("choices") == option.get("choices"), name
        assert doc.get("elements") == option.get("elements"), name


@pytest.mark.parametrize("module", MODULES)
def test_secrets_are_no_log_and_every_connection_option_reads_its_opnc_variable(module, argument_specs):
    spec = argument_specs[module]
    assert sorted(name for name, option in spec.items() if option.get("no_log")) == ["nextcloud_password",
                                                                                      "openproject_token"]
    fallbacks = {name: option["fallback"][1] for name, option in spec.items() if "fallback" in option}
    assert fallbacks == {name: [variable] for name, variable in ENVIRONMENT.items()}


def test_the_integration_module_documents_states_rotation_check_and_diff_mode(docs):
    doc = docs["opnc.integration.integration"]["doc"]
    assert doc["options"]["state"]["choices"] == ["present", "absent"]
    assert doc["options"]["rotate"]["choices"] == ["nextcloud_client", "app_password"]
    assert doc["attributes"]["check_mode"]["support"] == "full"
    assert doc["attributes"]["diff_mode"]["support"] == "full"
    returned = docs["opnc.integration.integration"]["return"]
    for key in ("storage_id", "openproject_client_id", "nextcloud_client_id", "steps", "checks", "state", "msg",
                "hint", "kind", "step"):
        assert key in returned
    # Client ids are returned, client secrets never.
    assert not [key for key in returned if "secret" in key or "password" in key or "token" in key]


def test_galaxy_builds_the_collection(tmp_path):
    out = tmp_path / "dist"
    proc = subprocess.run(["ansible-galaxy", "collection", "build", "--output-path", str(out), str(COLLECTION)],
                          env=ansible_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [tarball] = out.iterdir()
    assert tarball.name == "opnc-integration-0.1.0.tar.gz"
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    assert {"MANIFEST.json", "FILES.json", "README.md", "meta/runtime.yml",
            "plugins/modules/integration.py", "plugins/modules/integration_info.py",
            "plugins/module_utils/connection.py", "plugins/module_utils/failure.py",
            "plugins/module_utils/state.py", "plugins/doc_fragments/connection.py"} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("opnc", "integration", "0.1.0")


def test_the_example_playbook_passes_ansibles_syntax_check(tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"opnc_pairs": {"hosts": {"acme": {}}}}))
    proc = subprocess.run(["ansible-playbook", "--syntax-check", "-i", str(inventory), str(REPO / "examples" / "playbook.yml")],
                          env=ansible_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == f"playbook: {REPO / 'examples' / 'playbook.yml'}"
    assert "WARNING" not in proc.stderr, proc.stderr
