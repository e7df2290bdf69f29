# -*- coding: utf-8 -*-
# From module options to an opnc.Integration: the shared argument spec (each option also read from
# the OPNC_* environment variable the opnc CLI uses), the check that the compiled opnc package is
# importable, and the construction of the Integration object.

from __future__ import annotations

import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib

try:
    # opnc.api imports the compiled extension opnc._core: an interpreter without opnc, or a source
    # tree without a build, fails here and not halfway through a run. A source tree's folder of type
    # stubs (opnc/_core/*.pyi) imports as an empty namespace package, hence the look inside.
    import opnc
    import opnc.api  # noqa: F401
    from opnc.errors import Error as OpncError

    if not hasattr(opnc.api._core, "Integration"):
        raise ImportError("opnc._core is not the compiled extension (a source tree without a build?)")
except ImportError:
    HAS_OPNC = False
    OPNC_IMPORT_ERROR = traceback.format_exc()

    class OpncError(Exception):  # type: ignore[no-redef]
        """Stands in for opnc.Error when opnc is missing, so that `except OpncError` clauses still work."""
else:
    HAS_OPNC = True
    OPNC_IMPORT_ERROR = None

# What missing_required_lib names; the compiled part matters, the pure-Python part alone is not enough.
OPNC_LIBRARY = "opnc (the compiled Python package with its opnc._core extension)"


def connection_argument_spec():
    """The options of doc_fragments/connection.py, with the same names, types, defaults and
    environment fallbacks as the opnc CLI (python/opnc/cli.py)."""
    return dict(
        openproject_url=dict(type="str", required=True, fallback=(env_fallback, ["OPNC_OPENPROJECT_URL"])),
        openproject_token=dict(type="str", required=True, no_log=True,
                               fallback=(env_fallback, ["OPNC_OPENPROJECT_TOKEN"])),
        nextcloud_url=dict(type="str", required=True, fallback=(env_fallback, ["OPNC_NEXTCLOUD_URL"])),
        nextcloud_user=dict(type="str", required=True, fallback=(env_fallback, ["OPNC_NEXTCLOUD_USER"])),
        nextcloud_password=dict(type="str", required=True, no_log=True,
                                fallback=(env_fallback, ["OPNC_NEXTCLOUD_PASSWORD"])),
        ca_bundle=dict(type="path", fallback=(env_fallback, ["OPNC_CA_BUNDLE"])),
        timeout=dict(type="float", default=30.0, fallback=(env_fallback, ["OPNC_TIMEOUT"])),
        storage_name=dict(type="str", default="Nextcloud", fallback=(env_fallback, ["OPNC_STORAGE_NAME"])),
        project_folders=dict(type="bool", default=False, fallback=(env_fallback, ["OPNC_PROJECT_FOLDERS"])),
        state_dir=dict(type="path", fallback=(env_fallback, ["OPNC_STATE_DIR"])),
        wait=dict(type="bool", default=False),
    )


def require_opnc(module, *methods):
    """Fails the task cleanly when opnc cannot be imported, or when the installed opnc is too old
    to have every one of `methods` of opnc.Integration."""
    if not HAS_OPNC:
        module.fail_json(msg=missing_required_lib(OPNC_LIBRARY), exception=OPNC_IMPORT_ERROR)
    missing = [name for name in methods if not callable(getattr(opnc.Integration, name, None))]
    if missing:
        module.fail_json(msg="the installed opnc %s has no Integration.%s(); install a newer opnc on the controller"
                             % (opnc.__version__, "(), Integration.".join(missing)))


def build_integration(module, replace_storage=False):
    """The opnc.Integration the module's options describe. The secrets go to opnc as opnc.Secret at
    once and are not kept anywhere else."""
    p = module.params
    openproject = opnc.OpenProject(p["openproject_url"], opnc.Secret(p["openproject_token"]),
                                   ca_bundle=p["ca_bundle"])
    nextcloud = opnc.Nextcloud(p["nextcloud_url"], p["nextcloud_user"], opnc.Secret(p["nextcloud_password"]),
                               ca_bundle=p["ca_bundle"])
    return opnc.Integration(openproject, nextcloud, storage_name=p["storage_name"],
                            project_folders=p["project_folders"], state_dir=p["state_dir"],
                            replace_storage=replace_storage, timeout=p["timeout"], wait=p["wait"])
