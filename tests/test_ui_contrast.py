"""Form controls' edges meet WCAG 1.4.11 (3:1) against the card and the page background."""
from __future__ import annotations

import re
from pathlib import Path

CSS = (Path(__file__).resolve().parents[1] / "static" / "css" / "app.css").read_text()


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _last(variable: str) -> str:
    """The value a custom property ends up with (the last declaration wins)."""
    return re.findall(rf"--{variable}:\s*(#[0-9a-fA-F]{{6}})", CSS)[-1]


def test_field_borders_have_three_to_one_contrast():
    border = _last("field-line")
    for background in ("#ffffff", _last("bg")):
        assert contrast(border, background) >= 3, (border, background)
    assert re.search(r"textarea \{ border-color:var\(--field-line\); \}", CSS)


def test_the_old_border_did_not():
    assert contrast(_last("line"), "#ffffff") < 3  # the divider colour, no longer used for field edges
