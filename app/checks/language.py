"""Output language check with py3langid (offline: its model ships inside the package).

Why py3langid: a maintained fork of langid.py, deterministic (langdetect is random
unless seeded), fast, and its model is in the wheel, so nothing is fetched at run
time. It is restricted to the languages the generate form offers, which makes short
copy far more reliable. Text shorter than MIN_CHARS letters is not judged.
"""
from __future__ import annotations

import re
import threading

from app.checks.findings import Finding

# The generate form's languages (app/generation/services.py LANGUAGES) -> ISO 639-1.
CODES = {
    "English": "en", "Spanish": "es", "French": "fr", "German": "de", "Italian": "it", "Portuguese": "pt",
    "Dutch": "nl", "Polish": "pl", "Swedish": "sv", "Japanese": "ja", "Chinese (Simplified)": "zh", "Korean": "ko",
}
NAMES = {code: name for name, code in CODES.items()}
MIN_CHARS = 40          # letters; shorter copy (a headline, a hashtag list) is not judged
CONFIDENCE = 0.95       # the detected language must be this sure, among the form's languages

_identifier = None
_lock = threading.Lock()


def _get_identifier():
    """Load the model once per process (about 2 s), on first use, thread-safely."""
    global _identifier
    if _identifier is None:
        with _lock:
            if _identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier
                identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                identifier.set_languages(sorted(CODES.values()))
                _identifier = identifier
    return _identifier


def detect(text: str) -> tuple[str, float] | None:
    """(ISO code, probability) of the text, or None when it is too short to judge."""
    letters = re.sub(r"[\W\d_]+", "", text)
    if len(letters) < MIN_CHARS:
        return None
    code, probability = _get_identifier().classify(text)
    return code, float(probability)


def check_language(text: str, language: str) -> list[Finding]:
    """A finding over the whole variant if it is confidently in another language than requested."""
    expected = CODES.get(language)
    if expected is None:
        return []
    detected = detect(text)
    if detected is None or detected[0] == expected or detected[1] < CONFIDENCE:
        return []
    name = NAMES.get(detected[0], detected[0])
    return [Finding("wrong_language", "language", 0, 0, "",
                    f"This reads as {name}; {language} was requested.", f"Rewrite it in {language}.")]
