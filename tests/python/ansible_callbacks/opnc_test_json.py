"""A stdout callback for the Ansible tests: the whole run as one JSON document on stdout.

ansible-core alone (Debian's package, which is all opnc needs) ships no JSON stdout callback; the
familiar `json` one lives in the ansible.posix collection. This one writes the same shape that the
tests read: {"plays": [{"play": {...}, "tasks": [{"task": {...}, "hosts": {host: result}}]}],
"stats": {...}}. The results are the ones every callback receives, already censored for no_log.
"""

from __future__ import annotations

import json

from ansible.parsing.ajson import AnsibleJSONEncoder
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: opnc_test_json
    type: stdout
    short_description: the playbook run as one JSON document (opnc's tests)
    description: Plays, tasks and each host's result, printed once at the end of the run.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "opnc_test_json"

    def __init__(self) -> None:
        super().__init__()
        self._plays: list[dict] = []

    def v2_playbook_on_play_start(self, play) -> None:
        self._plays.append({"play": {"name": play.get_name()}, "tasks": []})

    def _task_start(self, task) -> None:
        self._plays[-1]["tasks"].append({"task": {"name": task.get_name(), "action": task.action}, "hosts": {}})

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        self._task_start(task)

    def v2_playbook_on_handler_task_start(self, task) -> None:
        self._task_start(task)

    def _record(self, result, **flags) -> None:
        outcome = dict(result._result)
        outcome.update(flags)
        self._plays[-1]["tasks"][-1]["hosts"][result._host.get_name()] = outcome

    def v2_runner_on_ok(self, result, **kwargs) -> None:
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False, **kwargs) -> None:
        self._record(result, failed=True)

    def v2_runner_on_skipped(self, result, **kwargs) -> None:
        self._record(result, skipped=True)

    def v2_runner_on_unreachable(self, result, **kwargs) -> None:
        self._record(result, unreachable=True)

    def v2_playbook_on_stats(self, stats) -> None:
        summary = {host: stats.summarize(host) for host in sorted(stats.processed)}
        self._display.display(json.dumps({"plays": self._plays, "stats": summary}, cls=AnsibleJSONEncoder,
                                         indent=2, sort_keys=True))
