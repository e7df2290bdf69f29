# -*- coding: utf-8 -*-
# How an opnc error ends a task: fail_json with opnc's message as `msg` and its hint, kind, step and
# HTTP status as keys of their own, so that playbooks can branch on `kind` in a rescue block. opnc
# errors never contain a secret; Ansible additionally masks every no_log value in the result.

from __future__ import annotations


# opnc's hints name the options of its command line; here the same choice is a module option. Keyed
# on the option names (a stable interface), longest first so that a phrase wins over its parts.
CLI_TO_MODULE = (
    ("opnc apply --replace-storage", "opnc.integration.integration with replace_storage: true"),
    ("opnc apply --project-folders", "opnc.integration.integration with project_folders: true"),
    ("opnc apply", "opnc.integration.integration"),
    ("--replace-storage", "replace_storage: true"),
    ("--project-folders", "project_folders: true"),
    ("--openproject-token-file", "openproject_token"),
    ("--nextcloud-password-file", "nextcloud_password"),
    ("--openproject-url", "openproject_url"),
    ("--nextcloud-url", "nextcloud_url"),
    ("--nextcloud-user", "nextcloud_user"),
    ("--storage-name", "storage_name"),
    ("--ca-bundle", "ca_bundle"),
    ("--state-dir", "state_dir"),
    ("--timeout", "timeout"),
    ("--wait", "wait: true"),
)


def in_module_terms(text):
    """`text` with the opnc command line options it names replaced by the module options."""
    for cli, module_option in CLI_TO_MODULE:
        text = text.replace(cli, module_option)
    return text


def error_fields(error):
    """The non-secret fields of an opnc.Error, as returned to Ansible."""
    return dict(
        msg=in_module_terms(error.message or str(error)),
        hint=in_module_terms(error.hint),
        kind=error.kind,
        step=error.step,
        http_status=error.http_status,
        server_id=error.server_id,
    )


def fail_with_error(module, error, **extra):
    """Fails the task with an opnc.Error. When a step of an apply failed, what the run did before it
    (error.result, a partial ApplyResult) is returned too, and `changed` tells whether it changed
    anything: the journal keeps it and the next run resumes from there."""
    result = dict(extra)
    partial = getattr(error, "result", None)
    if partial is not None:
        data = partial.to_dict()
        data.pop("error", None)  # its fields are the top-level ones
        data.pop("changed", None)  # only the top-level `changed` counts, see below
        result.update(data)
        result["changed"] = result.get("changed", False) or bool(partial.changed)
    result.setdefault("changed", False)
    result.update(error_fields(error))
    module.fail_json(**result)
