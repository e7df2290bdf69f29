# -*- coding: utf-8 -*-
# The options every module of opnc.integration shares: where both servers are, how to log in, and
# which integration is meant. Kept in one place so that the modules and their documentation agree.

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  openproject_url:
    description:
      - Base URL of the OpenProject instance, for example C(https://openproject.example.com).
      - Falls back to the environment variable C(OPNC_OPENPROJECT_URL) of the module's process.
    type: str
    required: true
  openproject_token:
    description:
      - API token of an active OpenProject administrator.
      - Falls back to C(OPNC_OPENPROJECT_TOKEN).
      - Never logged or returned (C(no_log)). Keep it in Ansible Vault.
    type: str
    required: true
  nextcloud_url:
    description:
      - Base URL of the Nextcloud instance, for example C(https://cloud.example.com).
      - Falls back to C(OPNC_NEXTCLOUD_URL).
    type: str
    required: true
  nextcloud_user:
    description:
      - Login of a Nextcloud administrator.
      - Falls back to C(OPNC_NEXTCLOUD_USER).
    type: str
    required: true
  nextcloud_password:
    description:
      - Password or, better, app password of C(nextcloud_user).
      - Falls back to C(OPNC_NEXTCLOUD_PASSWORD).
      - Never logged or returned (C(no_log)). Keep it in Ansible Vault.
    type: str
    required: true
  ca_bundle:
    description:
      - PEM file of extra certificate authorities to trust for both servers, on the controller.
      - TLS verification is always on; this option only adds trust anchors.
      - Falls back to C(OPNC_CA_BUNDLE).
    type: path
  timeout:
    description:
      - Seconds to wait for each HTTP request.
      - Falls back to C(OPNC_TIMEOUT).
    type: float
    default: 30
  storage_name:
    description:
      - Name of the Nextcloud file storage in OpenProject.
      - The storage is found by the host of C(nextcloud_url); the name is used when it is created.
      - Falls back to C(OPNC_STORAGE_NAME).
    type: str
    default: Nextcloud
  project_folders:
    description:
      - Set up automatically managed project folders (the C(OpenProject) user, group and team
        folder in Nextcloud, and an app password for OpenProject). Needs the Team folders
        (groupfolders) app in Nextcloud.
      - When project folders are already in use on the storage, they are kept even if this is
        false, because turning them off would break them.
      - Falls back to C(OPNC_PROJECT_FOLDERS).
    type: bool
    default: false
  state_dir:
    description:
      - Folder on the controller that holds opnc's journals, one per integration. A journal keeps
        the client secrets that the servers show only once (mode 0600), so that a later run can
        resume, verify and rotate. Keep it on persistent, private storage and back it up like a
        vault.
      - Falls back to C(OPNC_STATE_DIR), then C($XDG_STATE_HOME/opnc), then C(~/.local/state/opnc).
    type: path
  wait:
    description:
      - When another run works on the same integration, wait for it to finish instead of failing.
    type: bool
    default: false
requirements:
  - The compiled C(opnc) Python package (with its C(opnc._core) extension), importable by the
    Python interpreter that runs the module on the controller.
notes:
  - >-
    The module talks to both servers over HTTP(S) itself, so run it on the controller, where opnc
    is installed, with C(delegate_to: localhost) or C(connection: local). Set
    C(ansible_python_interpreter) to the interpreter that has opnc (for example a virtualenv's
    C(bin/python)).
  - >-
    Enable pipelining (C(ANSIBLE_PIPELINING=true) or C(ansible_pipelining: true)) so the module and
    its arguments, secrets included, reach the interpreter through standard input instead of a
    temporary file.
  - >-
    Pass secrets as the C(no_log) options C(openproject_token) and C(nextcloud_password). Do not
    pass them through the C(environment) keyword - Ansible puts those variables on the command
    line it runs, which C(-vvv) prints and C(ps) shows. The C(OPNC_*) fallbacks are for variables
    already set in the environment of C(ansible-playbook) itself (for example by a CI system).
"""
