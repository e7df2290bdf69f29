"""apply_many and `opnc apply --batch` against several sandbox pairs: with faults injected into some
pairs, the others complete, and the failed ones resume on the next run."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os

import pytest

import opnc
from opnc import errors
from opnc.batch import apply_many

NC_SETUP = "/index.php/apps/integration_openproject/setup"
MUTATING = ("POST", "PATCH", "PUT", "DELETE")


def integration(pair, state_dir, project_folders=True):
    op = opnc.OpenProject(pair.openproject.url, pair.openproject.token)
    nc = opnc.Nextcloud(pair.nextcloud.url, pair.nextcloud.user, pair.nextcloud.password)
    return opnc.Integration(op, nc, project_folders=project_folders, state_dir=state_dir, timeout=10)


def assert_complete(pair, project_folders=True):
    """One storage, one Nextcloud client, both sides pointing at each other."""
    storages = pair.openproject.state()["storages"]
    assert len(storages) == 1, storages
    nc_state = pair.nextcloud.state()
    assert len(nc_state["oauth_clients"]) == 1, nc_state["oauth_clients"]
    assert storages[0]["oauth_client_client_id"] == nc_state["oauth_clients"][0]["client_id"]
    assert nc_state["integration"]["openproject_client_id"] == storages[0]["oauth_application_client_id"]
    assert storages[0]["has_application_password"] is project_folders


# Pair 1 loses the answer of its Nextcloud setup (applied, then the connection is reset); pair 3's
# OpenProject fails storing the Nextcloud client. Pairs 0 and 2 have no faults.
FAULTS = {
    1: ("nextcloud", {"method": "POST", "path": NC_SETUP, "when": "after", "action": "reset", "times": 1},
        "configure_nextcloud"),
    3: ("openproject", {"method": "POST", "path": "/api/v3/storages/*/oauth_client_credentials", "when": "before",
                        "action": "status", "status": 500, "times": 1}, "store_nextcloud_client"),
}


@pytest.mark.opnc_sandbox(pairs=4)
def test_faulty_pairs_fail_alone_and_resume_on_the_next_run(sandbox, tmp_path):
    state_dir = str(tmp_path / "state")  # shared: each integration has its own journal and lock
    for index, (side, rule, _) in FAULTS.items():
        getattr(sandbox.pairs[index], side).faults([rule])
    events = []
    first = apply_many([(f"pair{p.index}", integration(p, state_dir)) for p in sandbox.pairs], parallel=4,
                       on_event=events.append)

    assert [p.name for p in first] == ["pair0", "pair1", "pair2", "pair3"]
    assert [p.status for p in first] == ["changed", "failed", "changed", "failed"]
    for index, (_, _, step) in FAULTS.items():
        failed = first[index]
        assert isinstance(failed.error, errors.Error)
        assert failed.error.step == step
        assert [s.name for s in failed.result.steps if s.status == "failed"] == [step]
    for index in (0, 2):
        assert first[index].result.verify.ok
        assert_complete(sandbox.pairs[index])
    # every event is tagged with its pair, and each pair has one start and one finish
    assert {e["name"] for e in events} == {"pair0", "pair1", "pair2", "pair3"}
    for name in ("pair0", "pair1", "pair2", "pair3"):
        kinds = [e["type"] for e in events if e["name"] == name]
        assert kinds[0] == "pair_started" and kinds[-1] == "pair_finished"
    assert {e["step"] for e in events if e["type"] == "step_failed"} == {"configure_nextcloud", "store_nextcloud_client"}
    shown = json.dumps(events) + json.dumps(first.to_dict()) + str(first)
    for secret in sandbox.secrets():
        assert secret not in shown

    for endpoint in sandbox.endpoints():
        endpoint.clear_requests()
    second = apply_many([(f"pair{p.index}", integration(p, state_dir)) for p in sandbox.pairs], parallel=4)
    assert [p.status for p in second] == ["unchanged", "changed", "unchanged", "changed"]
    assert second.ok
    for pair in sandbox.pairs:
        assert_complete(pair)
    for index in (0, 2):  # the finished pairs were only read
        pair = sandbox.pairs[index]
        assert [r for r in pair.openproject.requests() + pair.nextcloud.requests() if r["method"] in MUTATING] == []


@pytest.mark.opnc_sandbox(pairs=2)
def test_an_unreachable_pair_does_not_delay_or_disturb_the_other(sandbox, tmp_path):
    state_dir = str(tmp_path / "state")
    good = integration(sandbox.pairs[0], state_dir)
    op = opnc.OpenProject("http://127.0.0.1:9", "unused-token")  # nothing listens on ports 9 and 10
    nc = opnc.Nextcloud("http://127.0.0.1:10", "admin", "unused-password")
    unreachable = opnc.Integration(op, nc, state_dir=state_dir, timeout=5)
    batch = apply_many([("down", unreachable), ("up", good)], parallel=2)
    assert batch["down"].status == "failed"
    assert isinstance(batch["down"].error, errors.ConnectionFailed)
    assert batch["up"].status == "changed"
    assert_complete(sandbox.pairs[0])
    assert sandbox.pairs[1].openproject.state()["storages"] == []


# -- the CLI ---------------------------------------------------------------------------------------


def batch_parser():
    """`opnc`'s parser with the batch options on `apply` (added here until cli.py adds them itself)."""
    from opnc import batch_cli, cli

    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    apply_parser = subparsers.choices["apply"]
    if not any("--batch" in a.option_strings for a in apply_parser._actions):
        batch_cli.add_batch_arguments(apply_parser)
    return parser


def run_cli(argv, monkeypatch, env):
    from opnc import batch_cli, cli

    with monkeypatch.context() as m:
        for key in [k for k in os.environ if k.startswith("OPNC_")]:
            m.delenv(key)
        for key, value in env.items():
            m.setenv(key, value)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = batch_parser().parse_args(argv)
            try:
                code = batch_cli.run_batch(args)
            except cli.UsageError as e:
                print(f"opnc: error: {e}", file=__import__("sys").stderr)
                code = cli.EXIT_INVALID_INPUT
    return code, out.getvalue(), err.getvalue()


def write_batch(sandbox, tmp_path):
    """A batch file for every sandbox pair: OpenProject tokens in files, Nextcloud passwords in the environment."""
    (tmp_path / "secrets").mkdir(exist_ok=True)
    env = {}
    lines = ["defaults:", "  project_folders: true", "  state_dir: state", "  timeout: 10", "pairs:"]
    for pair in sandbox.pairs:
        (tmp_path / "secrets" / f"op{pair.index}").write_text(pair.openproject.token + "\n")
        env[f"NC_PASSWORD_{pair.index}"] = pair.nextcloud.password
        lines += [f"  - name: customer-{pair.index}",
                  f"    openproject: {{url: '{pair.openproject.url}', token_file: secrets/op{pair.index}}}",
                  f"    nextcloud: {{url: '{pair.nextcloud.url}', user: {pair.nextcloud.user}, "
                  f"password_env: NC_PASSWORD_{pair.index}}}"]
    path = tmp_path / "pairs.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path, env


@pytest.mark.opnc_sandbox(pairs=3)
def test_cli_batch_reports_per_pair_results_and_resumes(sandbox, tmp_path, monkeypatch):
    path, env = write_batch(sandbox, tmp_path)
    sandbox.pairs[1].nextcloud.faults([{"method": "POST", "path": NC_SETUP, "when": "before", "action": "status",
                                        "status": 503, "times": 1}])
    code, out, err = run_cli(["apply", "--batch", str(path), "--parallel", "3", "--json"], monkeypatch, env)
    assert code == 4, out + err
    data = json.loads(out)
    assert data["exit_code"] == 4
    assert (data["total"], data["changed"], data["failed"], data["ok"]) == (3, 2, 1, False)
    assert [p["name"] for p in data["pairs"]] == ["customer-0", "customer-1", "customer-2"]
    assert [p["status"] for p in data["pairs"]] == ["changed", "failed", "changed"]
    assert [p["exit_code"] for p in data["pairs"]] == [0, 4, 0]
    assert data["pairs"][1]["error"]["step"] == "configure_nextcloud"
    assert data["pairs"][0]["result"]["storage_id"] == sandbox.pairs[0].openproject.state()["storages"][0]["id"]
    assert os.path.isdir(tmp_path / "state")  # relative to the batch file

    code, out, err = run_cli(["apply", "--batch", str(path), "--parallel", "2"], monkeypatch, env)
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0].split() == ["#", "pair", "status", "time", "detail"]
    assert [line.split()[1:3] for line in lines[1:4]] == [
        ["customer-0", "unchanged"], ["customer-1", "changed"], ["customer-2", "unchanged"]]
    assert lines[4].endswith("(parallel 2): 1 changed, 2 unchanged, 0 verify failed, 0 failed")
    # not a terminal: one progress line per finished pair on standard error
    finished = sorted(line.split("] ", 1)[1].split(" ")[0] for line in err.splitlines() if line.startswith("  ✓ ["))
    assert finished == ["customer-0", "customer-1", "customer-2"]
    for pair in sandbox.pairs:
        assert_complete(pair)
    for secret in sandbox.secrets():
        assert secret not in out and secret not in err


@pytest.mark.opnc_sandbox(pairs=1)
def test_cli_batch_refuses_an_inline_secret_before_any_request(sandbox, tmp_path, monkeypatch):
    pair = sandbox.pairs[0]
    path = tmp_path / "pairs.yaml"
    path.write_text(f"pairs:\n  - name: a\n    openproject: {{url: '{pair.openproject.url}', token: {pair.openproject.token}}}\n"
                    f"    nextcloud: {{url: '{pair.nextcloud.url}', user: admin, password_env: X}}\n")
    code, out, err = run_cli(["apply", "--batch", str(path)], monkeypatch, {})
    assert code == 2
    assert out == ""
    assert err.startswith("opnc: error: pairs[0] (a): openproject.token: secrets are never accepted inline in a batch file")
    assert pair.openproject.token not in err
    assert pair.openproject.requests() == [] and pair.nextcloud.requests() == []


@pytest.mark.opnc_sandbox(pairs=2, tls=True)
def test_cli_batch_over_https_with_the_ca_bundle_from_the_file_defaults(sandbox, tmp_path, monkeypatch):
    path, env = write_batch(sandbox, tmp_path)
    text = path.read_text().replace("defaults:\n", f"defaults:\n  ca_bundle: '{sandbox.ca_bundle}'\n", 1)
    path.write_text(text)
    assert sandbox.pairs[0].openproject.url.startswith("https://")
    code, out, err = run_cli(["apply", "--batch", str(path), "--json"], monkeypatch, env)
    assert code == 0, out + err
    assert [p["status"] for p in json.loads(out)["pairs"]] == ["changed", "changed"]
    for pair in sandbox.pairs:
        assert_complete(pair)


@pytest.mark.opnc_sandbox(pairs=1, tls=True)
def test_cli_batch_over_https_without_the_ca_bundle_fails_that_pair_on_tls(sandbox, tmp_path, monkeypatch):
    path, env = write_batch(sandbox, tmp_path)
    code, out, err = run_cli(["apply", "--batch", str(path), "--json"], monkeypatch, env)
    assert code == 3, out + err
    pair = json.loads(out)["pairs"][0]
    assert pair["status"] == "failed" and pair["error"]["kind"] == "tls"
    assert sandbox.pairs[0].openproject.state()["storages"] == []
