"""The choices a writer makes beside a template's fields, shared by the form, the job and test runs."""
from __future__ import annotations

MAX_VARIANTS = 5
CREATIVITY = {"low": 0.3, "balanced": 0.7, "high": 1.0}
BALANCED = CREATIVITY["balanced"]
