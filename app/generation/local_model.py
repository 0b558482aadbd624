"""What the app tells people about the bundled local model while `make run` prepares it.

scripts/local_model.py writes the preparation's state to Redis (LOCAL_MODEL_STATUS_KEY): building
with "done/total" compile steps, installing, starting, ready, failed. Pages read it here for the
banner and the queued-generation line. Only under the local draft model (LLM_LOCAL_DRAFT).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from flask import current_app
from redis.exceptions import RedisError

LABELS = {"building": "compiling", "installing": "installing the model", "starting": "starting",
          "failed": "it failed to build", "stopped": "stopped"}


@dataclass(frozen=True)
class LocalModelStatus:
    state: str
    done: int = 0
    total: int = 0

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def label(self) -> str:
        """"112/193" while compiling, else a few words."""
        if self.state == "building" and self.total:
            return f"{self.done}/{self.total}"
        return LABELS.get(self.state, self.state)


def status() -> LocalModelStatus | None:
    """The local model's state (one Redis GET); None when no local model is in use or nothing is known.

    Read each time it is asked (a page asks once or twice), not cached on `g`: `g` lives as long as the
    app context, which can span several requests when one is already pushed (tests, CLI).
    """
    if not current_app.config.get("LLM_LOCAL_DRAFT"):
        return None
    result = None
    try:
        raw = current_app.extensions["redis"].get(current_app.config["LOCAL_MODEL_STATUS_KEY"])
        if raw:
            data = json.loads(raw)
            result = LocalModelStatus(str(data.get("state", "")), int(data.get("done") or 0), int(data.get("total") or 0))
    except (RedisError, ValueError, TypeError):
        result = None
    return result
