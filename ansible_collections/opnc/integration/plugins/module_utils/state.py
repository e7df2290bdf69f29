# -*- coding: utf-8 -*-
# The non-secret state of one integration, as shown by diff mode and returned by integration_info:
# whether OpenProject has the storage, the OAuth client ids each side holds, project folders, and
# the URL each side is configured with for the other. Built from what opnc's preflight observed
# (Plan.observed); never holds a secret.

from __future__ import annotations

# Shown in check mode for values the servers generate during apply (ids, client ids).
KNOWN_AFTER_APPLY = "(known after apply)"


def normalised_url(text):
    """The URL as opnc stores and compares it (lower-case host, no default port, no trailing slash)."""
    import opnc

    return str(opnc.Url(text))


def observed_state(observed, nextcloud_url):
    """The state from a Plan's `observed` dict. The storage opnc finds is the one whose host is
    `nextcloud_url`, so that is the Nextcloud URL OpenProject is configured with when it exists."""
    has_storage = observed.get("storage_id") is not None
    return dict(
        storage_present=has_storage,
        storage_id=observed.get("storage_id"),
        storage_nextcloud_url=normalised_url(nextcloud_url) if has_storage else "",
        openproject_client_id=observed.get("openproject_client_id", "") or "",
        nextcloud_client_id=observed.get("nextcloud_client_id_in_openproject", "") or "",
        nextcloud_configured=bool(observed.get("nextcloud_configured")),
        nextcloud_openproject_url=observed.get("nextcloud_openproject_url", "") or "",
        project_folders=bool(observed.get("storage_has_application_password") and observed.get("nextcloud_app_password")
                             and observed.get("project_folder_entities")),
    )


def state_after_plan(before, plan, openproject_url, nextcloud_url, project_folders):
    """What `before` becomes when the planned steps run (check mode). Values the servers generate
    are KNOWN_AFTER_APPLY; the rest is certain."""
    if not plan.changes:
        return dict(before)
    steps = {step.name for step in plan.steps}
    after = dict(before)
    after.update(storage_present=True, storage_nextcloud_url=normalised_url(nextcloud_url))
    if "create_storage" in steps:
        after.update(storage_id=KNOWN_AFTER_APPLY, openproject_client_id=KNOWN_AFTER_APPLY,
                     nextcloud_client_id=KNOWN_AFTER_APPLY)
    if "configure_nextcloud" in steps:
        after.update(nextcloud_configured=True, nextcloud_openproject_url=normalised_url(openproject_url))
    if "store_nextcloud_client" in steps:
        after["nextcloud_client_id"] = KNOWN_AFTER_APPLY
    # Project folders in use are kept even when not asked for (see the project_folders option).
    after["project_folders"] = bool(project_folders or before["project_folders"])
    return after


def absent_state():
    """The state after a teardown: nothing of the integration left on either side."""
    return dict(
        storage_present=False,
        storage_id=None,
        storage_nextcloud_url="",
        openproject_client_id="",
        nextcloud_client_id="",
        nextcloud_configured=False,
        nextcloud_openproject_url="",
        project_folders=False,
    )


def _same_url(a, b):
    try:
        return normalised_url(a) == normalised_url(b)
    except Exception:  # a stored value that is not a URL is not this OpenProject's
        return False


def has_integration(state, openproject_url):
    """Whether a teardown would remove anything: the storage in OpenProject, or Nextcloud's
    settings when they belong to this OpenProject (opnc leaves a Nextcloud that serves another
    OpenProject alone)."""
    stored = state["nextcloud_openproject_url"]
    nextcloud_ours = _same_url(stored, openproject_url) if stored else state["nextcloud_configured"]
    return bool(state["storage_present"] or nextcloud_ours)


def diff(before, after, what):
    """An Ansible diff of two states; `what` names the integration in the headers, which Ansible
    shows as "--- before: <what>" and "+++ after: <what>"."""
    return dict(before=before, after=after, before_header=what, after_header=what)
