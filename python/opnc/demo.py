"""`opnc demo`: the whole exchange against the built-in sandbox, told as a short story."""

from __future__ import annotations

import sys
import tempfile
from typing import Any


def run_demo(project_folders: bool = True, out: Any = None) -> int:
    import opnc
    from opnc.sandbox import Sandbox

    out = out or sys.stdout

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    def on_event(event: dict[str, Any]) -> None:
        if event["type"] == "step_finished":
            detail = f" – {event['detail']}" if event["detail"] else ""
            say(f"    ✓ {event['step']}{detail}")
        elif event["type"] == "step_failed":
            say(f"    ✗ {event['step']}: {event['detail']}")

    with tempfile.TemporaryDirectory(prefix="opnc-demo-") as state_dir, Sandbox() as sb:
        say("opnc demo: a local OpenProject and Nextcloud (the sandbox emulators) are running at")
        say(f"  OpenProject {sb.openproject.url}")
        say(f"  Nextcloud   {sb.nextcloud.url}")
        op = opnc.OpenProject(sb.openproject.url, sb.openproject.token)
        nc = opnc.Nextcloud(sb.nextcloud.url, sb.nextcloud.user, sb.nextcloud.password)
        integration = opnc.Integration(op, nc, storage_name="Nextcloud", project_folders=project_folders,
                                       state_dir=state_dir)
        say()
        say("1. Plan: both sides are read (nothing changes yet).")
        plan = integration.plan()
        for line in str(plan).splitlines():
            say(f"    {line}")
        say()
        say("2. Apply: each one-time secret goes to the journal before the next request leaves.")
        result = integration.apply(on_event=on_event)
        say(f"    storage {result.storage_id}; OpenProject client {result.openproject_client_id}; "
            f"Nextcloud client {result.nextcloud_client_id}")
        say()
        say("3. Verify: both sides agree and the credentials work.")
        verify = integration.verify()
        for line in str(verify).splitlines():
            say(f"    {line}")
        say()
        say("4. Run again: opnc converges, so a finished integration is left alone.")
        sb.openproject.clear_requests()
        sb.nextcloud.clear_requests()
        again = integration.apply()
        sent = sb.openproject.requests() + sb.nextcloud.requests()
        writes = [r for r in sent if r["method"] in ("POST", "PATCH", "PUT", "DELETE")]
        say(f"    changed: {again.changed}; {len(sent)} read requests in one parallel round, {len(writes)} writes")
        ok = verify.ok and not again.changed and result.changed and not writes
        say()
        say("Done: the integration is set up." if ok else "The demo did not end as expected.")
        return 0 if ok else 1
