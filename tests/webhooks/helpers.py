"""The README's signature check, run as the README shows it (so the documented code is what we test)."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_verify():
    """The `verify` function from the README's "Verifying a signature" snippet."""
    text = README.read_text()
    section = text[text.index("### Verifying a signature"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace["verify"]
