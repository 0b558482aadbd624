"""Build static/icons/lucide-sprite.svg from an unpacked lucide-static npm package.

Only the icons the UI uses are copied (ICONS below), as <symbol>s of one sprite that
templates/macros/icons.html references with <use href>: one cached request, no inline
SVG markup to keep in sync, and the CSP's "same origin only" is enough.

    cd /tmp && npm pack lucide-static@1.62.0 && tar xzf lucide-static-1.62.0.tgz
    python scripts/vendor_icons.py /tmp/package
"""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

VERSION = "1.62.0"
ICONS = [
    "copy", "trash-2", "thumbs-up", "thumbs-down", "star", "pencil", "sparkles", "folder", "megaphone",
    "newspaper", "globe", "mail", "message-circle", "target", "rocket", "tag", "search", "zap", "rotate-cw",
    "download", "file-text", "log-out", "check", "x", "pen-line", "wand-sparkles", "chart-column", "users",
    "lightbulb", "triangle-alert",
]
OUT = Path(__file__).resolve().parents[1] / "static" / "icons"


def symbol(name: str, svg: str) -> str:
    """The drawing of one icon file (everything inside <svg>) as a <symbol id=name>."""
    body = re.search(r"<svg[^>]*>(.*)</svg>", svg, re.S).group(1)
    body = " ".join(line.strip() for line in body.strip().splitlines())
    return f'<symbol id="{name}" viewBox="0 0 24 24">{body}</symbol>'


def main(package: Path) -> None:
    symbols = [symbol(name, (package / "icons" / f"{name}.svg").read_text()) for name in ICONS]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "lucide-sprite.svg").write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg"><!-- lucide-static v{VERSION}, ISC licence: LICENSE-lucide.txt -->\n'
        + "\n".join(symbols) + "\n</svg>\n")
    shutil.copy(package / "LICENSE", OUT / "LICENSE-lucide.txt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
