"""The batch file reader: structure, secret references, inline secrets refused without echo."""

from __future__ import annotations

import os
import textwrap

import pytest

from opnc import errors
from opnc.batch import BatchEntry, apply_many, read_batch_file

SECRET = "pa55-W0rd-that-must-never-be-echoed"


def write(tmp_path, text, name="pairs.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_a_full_file_with_defaults_overrides_and_relative_paths(tmp_path):
    (tmp_path / "secrets").mkdir()
    path = write(tmp_path, """\
        defaults:
          storage_name: Files
          project_folders: true
          state_dir: state
          timeout: 12
        pairs:
          - name: acme
            openproject: {url: "https://op.acme.example", token_file: secrets/acme-op}
            nextcloud: {url: "https://cloud.acme.example", user: admin, password_env: ACME_NC}
          - name: beta
            project_folders: false
            ca_bundle: ca.pem
            openproject: {url: "https://op.beta.example", token_env: BETA_OP}
            nextcloud: {url: "https://cloud.beta.example", user: root, password_file: /etc/opnc/beta}
        """)
    acme, beta = read_batch_file(path, defaults={"storage_name": "Nextcloud", "wait": True})
    assert isinstance(acme, BatchEntry)
    assert (acme.index, acme.name, beta.index, beta.name) == (0, "acme", 1, "beta")
    assert acme.openproject.url == "https://op.acme.example"
    assert acme.openproject.secret_file == str(tmp_path / "secrets" / "acme-op")
    assert acme.openproject.secret_env is None
    assert acme.nextcloud.user == "admin" and acme.nextcloud.secret_env == "ACME_NC"
    # file defaults beat the caller's defaults; pair keys beat both
    assert acme.options == {"storage_name": "Files", "wait": True, "project_folders": True,
                            "state_dir": str(tmp_path / "state"), "timeout": 12}
    assert beta.options["project_folders"] is False
    assert beta.options["ca_bundle"] == str(tmp_path / "ca.pem")
    assert beta.nextcloud.secret_file == "/etc/opnc/beta"
    assert SECRET not in repr(acme)


@pytest.mark.parametrize("side,key", [("openproject", "token"), ("openproject", "api_token"),
                                      ("nextcloud", "password"), ("nextcloud", "app_password")])
def test_inline_secrets_are_refused_without_echoing_them(tmp_path, side, key):
    servers = {
        "openproject": {"url": "https://op.example", "token_env": "T"},
        "nextcloud": {"url": "https://nc.example", "user": "admin", "password_env": "P"},
    }
    servers[side][key] = SECRET
    block = "\n".join(f"    {s}: {{{', '.join(f'{k}: {v}' for k, v in servers[s].items())}}}" for s in servers)
    path = write(tmp_path, f"pairs:\n  - name: acme\n{block}\n")
    with pytest.raises(errors.InvalidInput) as info:
        read_batch_file(path)
    assert info.value.message == f"pairs[0] (acme): {side}.{key}: secrets are never accepted inline in a batch file"
    assert "_file" in info.value.hint and "_env" in info.value.hint
    assert SECRET not in str(info.value) + info.value.hint + repr(info.value)


@pytest.mark.parametrize("where", ["defaults", "pair"])
def test_secret_looking_keys_elsewhere_are_refused_too(tmp_path, where):
    extra = f"client_secret: {SECRET}"
    text = ("defaults: {" + extra + "}\n" if where == "defaults" else "") + textwrap.dedent(f"""\
        pairs:
          - name: acme
            {extra if where == 'pair' else 'storage_name: x'}
            openproject: {{url: "https://op.example", token_env: T}}
            nextcloud: {{url: "https://nc.example", user: admin, password_env: P}}
        """)
    path = write(tmp_path, text)
    with pytest.raises(errors.InvalidInput) as info:
        read_batch_file(path)
    prefix = "defaults" if where == "defaults" else "pairs[0] (acme)"
    assert info.value.message == f"{prefix}.client_secret: secrets are never accepted inline in a batch file"
    assert SECRET not in str(info.value)


def test_invalid_yaml_names_the_line_but_never_quotes_it(tmp_path):
    path = write(tmp_path, f"""\
        pairs:
          - name: acme
            openproject: {{url: x, token: "{SECRET}" : oops}}
        """)
    with pytest.raises(errors.InvalidInput) as info:
        read_batch_file(path)
    assert info.value.message.startswith(f"the batch file {path} is not valid YAML at line 3, column ")
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("text,message", [
    ("- just a list\n", "a batch file is a mapping with the keys 'pairs' (and optionally 'defaults')"),
    ("pairs: []\n", "pairs must be a non-empty list of pairs"),
    ("pair: []\n", "the batch file: unknown key(s) pair; known: defaults, pairs"),
    ("pairs: [3]\n", "pairs[0] must be a mapping with name, openproject and nextcloud"),
    ("pairs:\n  - openproject: {url: a, token_env: T}\n    nextcloud: {url: b, user: u, password_env: P}\n",
     "pairs[0]: name is required (a non-empty text)"),
    ("pairs:\n  - name: a\n    nextcloud: {url: b, user: u, password_env: P}\n",
     "pairs[0] (a): openproject is required"),
    ("pairs:\n  - name: a\n    openproject: {url: a}\n    nextcloud: {url: b, user: u, password_env: P}\n",
     "pairs[0] (a): openproject: give exactly one of token_file and token_env"),
    ("pairs:\n  - name: a\n    openproject: {url: a, token_env: T, token_file: f}\n    nextcloud: {url: b, user: u, password_env: P}\n",
     "pairs[0] (a): openproject: give exactly one of token_file and token_env"),
    ("pairs:\n  - name: a\n    openproject: {url: a, token_env: T}\n    nextcloud: {url: b, password_env: P}\n",
     "pairs[0] (a): nextcloud.user is required (a text)"),
    ("pairs:\n  - name: a\n    openproject: {token_env: T}\n    nextcloud: {url: b, user: u, password_env: P}\n",
     "pairs[0] (a): openproject.url is required (a text)"),
    ("pairs:\n  - name: a\n    project_folders: 'yes please'\n    openproject: {url: a, token_env: T}\n"
     "    nextcloud: {url: b, user: u, password_env: P}\n", "pairs[0] (a): project_folders must be true or false"),
    ("defaults: {timeout: 0}\npairs:\n  - name: a\n    openproject: {url: a, token_env: T}\n"
     "    nextcloud: {url: b, user: u, password_env: P}\n", "defaults: timeout must be a number of seconds > 0"),
    ("defaults: {timeout: true}\npairs:\n  - name: a\n    openproject: {url: a, token_env: T}\n"
     "    nextcloud: {url: b, user: u, password_env: P}\n", "defaults: timeout must be a number"),
    ("pairs:\n  - name: a\n    colour: red\n    openproject: {url: a, token_env: T}\n"
     "    nextcloud: {url: b, user: u, password_env: P}\n",
     "pairs[0] (a): unknown key(s) colour; known: ca_bundle, name, nextcloud, openproject, project_folders, "
     "replace_storage, state_dir, storage_name, timeout, wait"),
    ("pairs:\n  - name: a\n    openproject: {url: a, token_env: T}\n    nextcloud: {url: b, user: u, password_env: P}\n"
     "  - name: a\n    openproject: {url: c, token_env: T}\n    nextcloud: {url: d, user: u, password_env: P}\n",
     "pairs[1]: the name 'a' is used by an earlier pair; names must be unique"),
])
def test_structure_errors_name_the_pair_and_key(tmp_path, text, message):
    with pytest.raises(errors.InvalidInput) as info:
        read_batch_file(write(tmp_path, text))
    assert info.value.message == message


def test_an_unreadable_batch_file(tmp_path):
    with pytest.raises(errors.InvalidInput) as info:
        read_batch_file(tmp_path / "missing.yaml")
    assert info.value.message == f"cannot read the batch file {tmp_path / 'missing.yaml'} (No such file or directory)"


def test_secrets_are_read_when_the_pair_starts_and_a_missing_one_fails_that_pair_only(tmp_path, monkeypatch):
    (tmp_path / "good-token").write_text(SECRET + "\n", encoding="utf-8")
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    monkeypatch.setenv("GOOD_PASSWORD", SECRET)
    monkeypatch.delenv("UNSET_PASSWORD", raising=False)
    path = write(tmp_path, """\
        pairs:
          - name: no-file
            openproject: {url: "http://127.0.0.1:9", token_file: nowhere}
            nextcloud: {url: "http://127.0.0.1:9", user: admin, password_env: GOOD_PASSWORD}
          - name: no-env
            openproject: {url: "http://127.0.0.1:9", token_file: good-token}
            nextcloud: {url: "http://127.0.0.1:9", user: admin, password_env: UNSET_PASSWORD}
          - name: empty
            openproject: {url: "http://127.0.0.1:9", token_file: empty}
            nextcloud: {url: "http://127.0.0.1:9", user: admin, password_env: GOOD_PASSWORD}
        """)
    entries = read_batch_file(path)
    token = entries[1].openproject.read_secret("x")
    assert token == SECRET  # the trailing newline of the file is not part of it
    batch = apply_many(entries, parallel=3)
    messages = {p.name: p.error.message for p in batch}
    assert all(isinstance(p.error, errors.InvalidInput) for p in batch)
    assert messages == {
        "no-file": f"pair 'no-file': openproject.token_file: cannot read the secret file {tmp_path / 'nowhere'} "
                   f"(No such file or directory)",
        "no-env": "pair 'no-env': nextcloud.password_env: the environment variable UNSET_PASSWORD is not set or empty",
        "empty": "pair 'empty': openproject.token_file: the secret is empty",
    }
    assert SECRET not in str(batch.to_dict())
    assert os.environ["GOOD_PASSWORD"] == SECRET  # read, never changed
