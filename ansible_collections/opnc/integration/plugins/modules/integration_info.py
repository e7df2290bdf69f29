#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opnc contributors
# GNU Affero General Public License v3.0 or later (see https://www.gnu.org/licenses/agpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: integration_info
short_description: Report the health and state of the OpenProject - Nextcloud integration
version_added: 0.1.0
description:
  - Reads both servers and opnc's journal and reports the status of the "Two-way OAuth 2.0"
    integration between one OpenProject and one Nextcloud instance - one line per aspect with a
    level (C(ok), C(warning), C(problem)) and a hint - together with the non-secret state (storage,
    OAuth client ids, project folders, configured URLs) and whether opnc.integration.integration
    would change anything (drift).
  - Changes nothing on either server; the same in check mode.
  - Like every C(_info) module it returns its report as the task's result; use C(register) to keep it.
author:
  - opnc contributors
extends_documentation_fragment:
  - opnc.integration.connection
attributes:
  check_mode:
    support: full
    description: The module never changes anything.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
seealso:
  - module: opnc.integration.integration
"""

EXAMPLES = r"""
- name: Read the status of the integration
  opnc.integration.integration_info:
    openproject_url: https://openproject.example.com
    openproject_token: "{{ vault_openproject_api_token }}"
    nextcloud_url: https://cloud.example.com
    nextcloud_user: admin
    nextcloud_password: "{{ vault_nextcloud_app_password }}"
  delegate_to: localhost
  register: integration

- name: Show what is wrong
  ansible.builtin.debug:
    msg: "{{ item.area }} {{ item.name }}: {{ item.detail }} ({{ item.hint }})"
  loop: "{{ integration.status.lines | rejectattr('level', 'equalto', 'ok') }}"

- name: Fail when the integration drifted from what the playbook wants
  ansible.builtin.assert:
    that:
      - integration.status.healthy
      - not integration.drift
    fail_msg: "run opnc.integration.integration to repair: {{ integration.plan.steps | map(attribute='name') | join(', ') }}"
"""

RETURN = r"""
status:
  description: The status report of opnc.
  returned: success
  type: dict
  contains:
    healthy:
      description: No line has the level C(problem).
      type: bool
      sample: true
    lines:
      description: One entry per aspect, each with C(area), C(name), C(level) (C(ok), C(warning) or
        C(problem)), C(detail) and C(hint).
      type: list
      elements: dict
      sample:
        - {area: openproject, name: storage, level: ok, detail: "storage 3 \"Nextcloud\" is configured", hint: ""}
drift:
  description: Whether opnc.integration.integration with the same options would change anything;
    null when opnc cannot tell (see C(plan_error)).
  returned: success
  type: bool
  sample: false
plan:
  description: What opnc.integration.integration would do - C(changes), C(steps) (C(name), C(reason),
    C(warnings)) and C(notes); null when opnc cannot tell.
  returned: success
  type: dict
plan_error:
  description: Why there is no plan - an existing storage that only a replacement could finish, or
    a storage name taken by another host - with C(kind), C(msg) and C(hint).
  returned: when plan is null
  type: dict
state:
  description: The non-secret state of the integration (the keys of the diff of
    opnc.integration.integration); null when opnc cannot tell.
  returned: success
  type: dict
  sample:
    storage_present: true
    storage_id: 3
    storage_nextcloud_url: https://cloud.example.com
    openproject_client_id: 5cb8c8a0bd7a4c0b9b7a7c43a4aa4d1c
    nextcloud_client_id: kcGI4Hx2Q6XpZfDyPZM9LwRq
    nextcloud_configured: true
    nextcloud_openproject_url: https://openproject.example.com
    project_folders: false
versions:
  description: Versions of OpenProject, Nextcloud and Nextcloud's C(integration_openproject) app;
    null when opnc cannot tell.
  returned: success
  type: dict
  sample: {openproject: "15.4.0", nextcloud: "31.0.4", integration_openproject: "2.9.1"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opnc.integration.plugins.module_utils.connection import (
    OpncError,
    build_integration,
    connection_argument_spec,
    require_opnc,
)
from ansible_collections.opnc.integration.plugins.module_utils.failure import error_fields, fail_with_error, in_module_terms
from ansible_collections.opnc.integration.plugins.module_utils.state import observed_state

# Errors of opnc's plan decision (not of reading): the status is still worth returning with them.
UNDECIDED_PLAN = ("confirmation_required", "conflict")


def main():
    module = AnsibleModule(argument_spec=connection_argument_spec(), supports_check_mode=True)
    require_opnc(module, "status", "plan")
    result = dict(changed=False)
    try:
        integration = build_integration(module)
        status = integration.status().to_dict()
        for line in status["lines"]:
            line["hint"] = in_module_terms(line["hint"])
        result["status"] = status
        try:
            plan = integration.plan()
        except OpncError as error:
            if error.kind not in UNDECIDED_PLAN:
                raise
            fields = error_fields(error)
            result.update(drift=None, plan=None, state=None, versions=None,
                          plan_error=dict(kind=fields["kind"], msg=fields["msg"], hint=fields["hint"]))
        else:
            observed = plan.observed
            result.update(
                drift=plan.changes,
                plan=plan.to_dict(),
                state=observed_state(observed, module.params["nextcloud_url"]),
                versions=dict(openproject=observed.get("openproject_version", ""),
                              nextcloud=observed.get("nextcloud_version", ""),
                              integration_openproject=observed.get("integration_app_version", "")),
            )
            # `observed` is in `state` already, in the form both modules share.
            result["plan"].pop("observed", None)
    except OpncError as error:
        fail_with_error(module, error)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
