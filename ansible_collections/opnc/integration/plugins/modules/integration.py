#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opnc contributors
# GNU Affero General Public License v3.0 or later (see https://www.gnu.org/licenses/agpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: integration
short_description: Set up, repair, rotate or tear down the OpenProject - Nextcloud integration
version_added: 0.1.0
description:
  - Manages the "Two-way OAuth 2.0" connection between one OpenProject instance and one Nextcloud
    instance with opnc - the exchange of one-time OAuth client secrets that otherwise means copying
    them between two browser tabs.
  - With I(state=present) it converges. It reads both servers first and runs only the steps that
    are missing (create the file storage in OpenProject, configure Nextcloud's
    C(integration_openproject) app, store Nextcloud's client in OpenProject, set the app password for
    project folders), then verifies that both sides agree and the credentials work. A second run
    changes nothing and reports C(changed=false).
  - With I(state=absent) it tears the integration down on both sides.
  - Every one-time secret is written to opnc's journal on the controller (see C(state_dir)) before
    the next request leaves, so an interrupted run is completed by the next one.
  - Check mode only reads (no request that changes anything is sent) and reports what would change.
    Diff mode shows the non-secret state before and after - storage, OAuth client ids, project folders
    and the URL each side is configured with. Secrets are never returned.
author:
  - opnc contributors
extends_documentation_fragment:
  - opnc.integration.connection
options:
  state:
    description:
      - C(present) sets up or repairs the integration; C(absent) removes it from both sides.
      - C(absent) deletes the storage in OpenProject, and with it every file link and the project
        settings of that storage; it resets Nextcloud's integration settings when they belong to this
        OpenProject, and archives opnc's journal. The C(OpenProject) user, group, team folder and app
        password stay in Nextcloud (see C(remaining)).
    type: str
    choices: [present, absent]
    default: present
  replace_storage:
    description:
      - Allow deleting and recreating an existing, incomplete storage for this Nextcloud that was set
        up outside opnc. OpenProject shows a storage's client secret only once, so opnc cannot finish
        such a storage otherwise.
      - Deleting a storage removes its file links and project settings in OpenProject.
    type: bool
    default: false
  rotate:
    description:
      - Credentials to replace after the integration is complete. C(nextcloud_client) issues a new
        Nextcloud OAuth client and stores it in OpenProject; C(app_password) issues a new app password
        for project folders.
      - A rotation always changes something, so the task reports C(changed) every time it runs with
        this option; use it in a dedicated play or behind a C(when) condition.
    type: list
    elements: str
    choices: [nextcloud_client, app_password]
    default: []
attributes:
  check_mode:
    support: full
    description: Only reads both servers and reports what would change.
  diff_mode:
    support: full
    description: Before and after of the non-secret state of the integration.
seealso:
  - module: opnc.integration.integration_info
"""

EXAMPLES = r"""
- name: Connect OpenProject and Nextcloud
  opnc.integration.integration:
    openproject_url: https://openproject.example.com
    openproject_token: "{{ vault_openproject_api_token }}"
    nextcloud_url: https://cloud.example.com
    nextcloud_user: admin
    nextcloud_password: "{{ vault_nextcloud_app_password }}"
    project_folders: true
  delegate_to: localhost

- name: Keep the journals in a private folder of the controller, behind a private CA
  opnc.integration.integration:
    openproject_url: "{{ openproject_url }}"
    openproject_token: "{{ vault_openproject_api_token }}"
    nextcloud_url: "{{ nextcloud_url }}"
    nextcloud_user: "{{ nextcloud_admin }}"
    nextcloud_password: "{{ vault_nextcloud_app_password }}"
    storage_name: Company cloud
    state_dir: /var/lib/opnc
    ca_bundle: /etc/ssl/private-ca.pem
  delegate_to: localhost

- name: Rotate the Nextcloud OAuth client and the app password (changes every time)
  opnc.integration.integration:
    openproject_url: "{{ openproject_url }}"
    openproject_token: "{{ vault_openproject_api_token }}"
    nextcloud_url: "{{ nextcloud_url }}"
    nextcloud_user: "{{ nextcloud_admin }}"
    nextcloud_password: "{{ vault_nextcloud_app_password }}"
    project_folders: true
    rotate: [nextcloud_client, app_password]
  delegate_to: localhost
  when: rotate_credentials | default(false) | bool

- name: Remove the integration from both sides
  opnc.integration.integration:
    openproject_url: "{{ openproject_url }}"
    openproject_token: "{{ vault_openproject_api_token }}"
    nextcloud_url: "{{ nextcloud_url }}"
    nextcloud_user: "{{ nextcloud_admin }}"
    nextcloud_password: "{{ vault_nextcloud_app_password }}"
    state: absent
  delegate_to: localhost

- name: Set the connection once for every opnc task of a play
  hosts: integration_pairs
  connection: local
  gather_facts: false
  module_defaults:
    group/opnc.integration.opnc:
      openproject_url: "{{ openproject_url }}"
      openproject_token: "{{ vault_openproject_api_token }}"
      nextcloud_url: "{{ nextcloud_url }}"
      nextcloud_user: "{{ nextcloud_admin }}"
      nextcloud_password: "{{ vault_nextcloud_app_password }}"
  tasks:
    - opnc.integration.integration:
        project_folders: true
    - opnc.integration.integration_info:
      register: integration
    - ansible.builtin.assert:
        that: integration.status.healthy
"""

RETURN = r"""
storage_id:
  description: Id of the Nextcloud file storage in OpenProject (null when there is none).
  returned: when state is present, in check mode and in diff mode
  type: int
  sample: 3
openproject_client_id:
  description: Client id of OpenProject's OAuth application for the storage (not a secret).
  returned: when state is present
  type: str
  sample: 5cb8c8a0bd7a4c0b9b7a7c43a4aa4d1c
nextcloud_client_id:
  description: Client id of Nextcloud's OAuth client as stored in OpenProject (not a secret).
  returned: when state is present
  type: str
  sample: kcGI4Hx2Q6XpZfDyPZM9LwRq
steps:
  description:
    - The steps of the run. In check mode the steps that would run, with C(reason) and C(warnings);
      otherwise every step with its C(status) (C(done), C(skipped) or C(failed)), C(duration_ms) and C(detail).
  returned: when state is present
  type: list
  elements: dict
  sample:
    - {name: create_storage, status: done, duration_ms: 41.2, detail: "storage 3"}
    - {name: configure_nextcloud, status: done, duration_ms: 87.0, detail: ""}
rotation_steps:
  description: The steps of the rotation that followed the apply, in the form of C(steps).
  returned: when rotate is not empty, not in check mode
  type: list
  elements: dict
checks:
  description: The verify checks at the end of the run (after the rotation, if any), each with
    C(name), C(ok), C(detail) and C(hint).
  returned: when state is present, not in check mode
  type: list
  elements: dict
  sample:
    - {name: openproject_storage, ok: true, detail: "storage 3 is configured", hint: ""}
rotated:
  description: The credentials replaced (or, in check mode, that would be).
  returned: when state is present
  type: list
  elements: str
  sample: [nextcloud_client]
removed:
  description: What the teardown removed.
  returned: when state is absent, not in check mode
  type: list
  elements: str
remaining:
  description: What the teardown left on the servers on purpose (the project folders' user, group,
    team folder and app password in Nextcloud), each with how to remove it by hand.
  returned: when state is absent, not in check mode
  type: list
  elements: str
archived_journal:
  description: Where opnc archived the journal of the integration (empty when there was none).
  returned: when state is absent, not in check mode
  type: str
notes:
  description: Remarks of opnc worth reading (for example that project folders in use were kept).
  returned: always
  type: list
  elements: str
state:
  description:
    - The non-secret state of the integration after the task (in check mode, as it would be; values
      the servers generate are C((known after apply))). The same keys as the diff.
  returned: when state is present, in check mode and in diff mode
  type: dict
  contains:
    storage_present: {description: OpenProject has a storage for this Nextcloud., type: bool}
    storage_id: {description: Its id., type: int}
    storage_nextcloud_url: {description: The Nextcloud URL the storage is configured with., type: str}
    openproject_client_id: {description: Client id of OpenProject's OAuth application., type: str}
    nextcloud_client_id: {description: Client id of Nextcloud's OAuth client stored in OpenProject., type: str}
    nextcloud_configured: {description: Nextcloud's integration app is configured., type: bool}
    nextcloud_openproject_url: {description: The OpenProject URL Nextcloud is configured with., type: str}
    project_folders: {description: Automatically managed project folders are set up on both sides., type: bool}
msg:
  description: On failure, opnc's error message.
  returned: failed
  type: str
  sample: "Nextcloud refused the credentials of user admin (HTTP 401)."
hint:
  description: On failure, what to do about it.
  returned: failed
  type: str
kind:
  description: On failure, the kind of opnc error (for example C(unauthenticated), C(preflight_failed),
    C(confirmation_required), C(verify_failed)), stable for use in conditions.
  returned: failed
  type: str
step:
  description: On failure, the step of the exchange that failed (C(preflight) means nothing was changed).
  returned: failed
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opnc.integration.plugins.module_utils.connection import (
    OpncError,
    build_integration,
    connection_argument_spec,
    require_opnc,
)
from ansible_collections.opnc.integration.plugins.module_utils.failure import fail_with_error, in_module_terms
from ansible_collections.opnc.integration.plugins.module_utils.state import (
    absent_state,
    diff,
    has_integration,
    observed_state,
    state_after_plan,
)

ROTATABLE = ("nextcloud_client", "app_password")


def argument_spec():
    spec = connection_argument_spec()
    spec.update(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        replace_storage=dict(type="bool", default=False),
        rotate=dict(type="list", elements="str", choices=list(ROTATABLE), default=[]),
    )
    return spec


def current_state(module, integration):
    """Reads both sides (GET only) and returns their non-secret state."""
    return observed_state(integration.plan().observed, module.params["nextcloud_url"])


def present(module, integration, what):
    p = module.params
    rotate = [name for name in ROTATABLE if name in p["rotate"]]
    result = dict(rotated=rotate)

    if module.check_mode:
        plan = integration.plan()
        before = observed_state(plan.observed, p["nextcloud_url"])
        after = state_after_plan(before, plan, p["openproject_url"], p["nextcloud_url"], p["project_folders"])
        steps = [dict(name=s.name, reason=in_module_terms(s.reason), warnings=[in_module_terms(w) for w in s.warnings])
                 for s in plan.steps]
        for step in steps:
            for warning in step["warnings"]:
                module.warn("%s: %s" % (step["name"], warning))
        result.update(changed=plan.changes or bool(rotate), steps=steps,
                      notes=[in_module_terms(n) for n in plan.notes], storage_id=plan.observed.get("storage_id"),
                      openproject_client_id=before["openproject_client_id"],
                      nextcloud_client_id=before["nextcloud_client_id"], state=after)
        if module._diff:
            result["diff"] = diff(before, after, what)
        return result

    before = current_state(module, integration) if module._diff else None
    applied = integration.apply()
    runs = [applied]
    if rotate:
        try:
            runs.append(integration.rotate(nextcloud_client="nextcloud_client" in rotate,
                                           app_password="app_password" in rotate))
        except OpncError as error:
            # What apply changed before the rotation failed counts too.
            fail_with_error(module, error, changed=applied.changed, rotated=rotate)
    last = runs[-1]

    def outcomes(run):
        return [dict(name=s.name, status=s.status, duration_ms=s.duration_ms, detail=s.detail) for s in run.steps]

    if rotate:
        result["rotation_steps"] = outcomes(last)
    result.update(
        changed=any(run.changed for run in runs),
        steps=outcomes(applied),
        notes=[in_module_terms(note) for run in runs for note in run.notes],
        storage_id=last.storage_id,
        openproject_client_id=last.openproject_client_id,
        nextcloud_client_id=last.nextcloud_client_id,
        checks=[dict(name=c.name, ok=c.ok, detail=c.detail, hint=c.hint) for c in (last.verify.checks if last.verify else [])],
    )
    after = current_state(module, integration)
    result["state"] = after
    if module._diff:
        result["diff"] = diff(before, after, what)
    if last.verify is not None and not last.verify.ok:
        failed = last.verify.failed
        module.fail_json(msg="the integration was applied, but %d verify check(s) failed: %s"
                             % (len(failed), "; ".join("%s: %s" % (c.name, c.detail) for c in failed)),
                         hint=" ".join(c.hint for c in failed if c.hint), kind="verify_failed", step="verify",
                         **result)
    return result


def absent(module, integration, what):
    # Reading the state runs opnc's plan, whose decision stops at a storage it could only replace
    # (confirmation_required). Tearing down needs no such decision, so the read-only look before it
    # uses an Integration that may replace: it observes the same and always answers.
    reader = build_integration(module, replace_storage=True)
    before = current_state(module, reader) if module.check_mode or module._diff else None
    if module.check_mode:
        changed = has_integration(before, module.params["openproject_url"])
        after = absent_state() if changed else dict(before)
        notes = []
        if before["storage_present"]:
            notes.append("storage %s in OpenProject would be deleted, with its file links and project settings"
                         % before["storage_id"])
        result = dict(changed=changed, storage_id=before["storage_id"], notes=notes, state=after)
    else:
        # state=absent is the explicit request to delete the storage (and its file links) that
        # opnc's teardown asks to confirm.
        torn_down = integration.teardown(confirm=True)
        result = dict(changed=bool(torn_down.changed), removed=list(torn_down.removed),
                      remaining=list(torn_down.remaining), notes=[in_module_terms(n) for n in torn_down.notes],
                      archived_journal=torn_down.archived_journal)
        if module._diff:
            after = current_state(module, reader)
            result.update(storage_id=after["storage_id"], state=after)
    if module._diff:
        result["diff"] = diff(before, after, what)
    return result


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    require_opnc(module, "plan", "apply", "verify", *(("teardown",) if p["state"] == "absent" else
                                                       ("rotate",) if p["rotate"] else ()))
    what = "%s <-> %s" % (p["openproject_url"], p["nextcloud_url"])
    try:
        integration = build_integration(module, replace_storage=p["replace_storage"])
        if p["state"] == "present":
            result = present(module, integration, what)
        else:
            result = absent(module, integration, what)
    except OpncError as error:
        fail_with_error(module, error)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
