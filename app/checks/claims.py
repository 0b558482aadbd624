"""Claims check: numbers, prices, percentages, dates, quantities and named superlatives or
certifications in a variant that appear nowhere in what the writer was given.

"What it was given" is the generation's inputs, its brand voice text and the knowledge
passages put into its prompt. Numbers are compared by value and unit, not text: `$14.99`
== `14.99 dollars`, `32 oz` == `32-ounce`, `1,000` == `1000`, `20%` == `20 percent`,
`two` == `2`. English and German forms are understood (the evaluation set covers both).

Pure functions: `unsupported_claims(text, sources)` returns findings with spans.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from app.checks.findings import Finding

# --------------------------------------------------------------------------- units

_UNITS: dict[str, tuple[str, ...]] = {
    "usd": ("dollars", "dollar", "usd", "bucks"),
    "eur": ("euros", "euro", "eur"),
    "gbp": ("gbp", "pounds sterling", "pfund"),
    "%": ("%", "percent", "per cent", "prozent", "pct"),
    "oz": ("fl. oz", "fl oz", "fluid ounces", "fluid ounce", "ounces", "ounce", "oz"),
    "ml": ("milliliters", "millilitres", "milliliter", "millilitre", "ml"),
    "l": ("liters", "litres", "liter", "litre", "l"),
    "kg": ("kilograms", "kilogram", "kilos", "kilo", "kg"),
    "mg": ("milligrams", "milligram", "mg"),
    "g": ("grams", "gram", "gramm", "g"),
    "lb": ("pounds", "pound", "lbs", "lb"),
    "km": ("kilometers", "kilometres", "kilometer", "kilometre", "km"),
    "cm": ("centimeters", "centimetres", "centimeter", "centimetre", "cm"),
    "mm": ("millimeters", "millimetres", "millimeter", "millimetre", "mm"),
    "m": ("meters", "metres", "meter", "metre", "m"),
    "mi": ("miles", "mile", "mi"),
    "ft": ("feet", "foot", "ft"),
    "inch": ("inches", "inch"),
    "h": ("hours", "hour", "hrs", "hr", "stunden", "stunde", "std", "h"),
    "min": ("minutes", "minute", "minuten", "mins", "min"),
    "s": ("seconds", "second", "sekunden", "secs", "sec"),
    "day": ("days", "day", "tagen", "tage", "tag"),
    "week": ("weeks", "week", "wochen", "woche"),
    "month": ("months", "month", "monaten", "monate", "monat"),
    "year": ("years", "year", "yrs", "jahren", "jahre", "jahr"),
    "gb": ("gb",), "tb": ("tb",), "mb": ("mb",), "mah": ("mah",),
    "w": ("watts", "watt", "w"), "kwh": ("kwh",),
    "kcal": ("calories", "calorie", "kalorien", "kcal", "cal"),
    "x": ("x", "times", "mal"),
}
_UNIT_OF = {alias: unit for unit, aliases in _UNITS.items() for alias in aliases}
_UNIT_RE = "|".join(sorted((re.escape(a) for a in _UNIT_OF), key=len, reverse=True))
_MULTIPLIERS = {"k": 1_000, "thousand": 1_000, "tausend": 1_000, "million": 1_000_000, "millionen": 1_000_000,
                "mio.": 1_000_000, "mio": 1_000_000, "billion": 1_000_000_000, "m": 1_000_000, "bn": 1_000_000_000}
_CURRENCY_PREFIX = {"$": "usd", "us$": "usd", "usd": "usd", "€": "eur", "eur": "eur", "£": "gbp", "gbp": "gbp"}

_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "dozen": 12,
    "eins": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5, "sechs": 6, "sieben": 7, "acht": 8, "neun": 9,
    "zehn": 10, "elf": 11, "zwölf": 12,
}
_WORD_RE = "|".join(sorted(_WORDS, key=len, reverse=True))
# "one"/"eins"/"elf" are too common as plain words; they count only followed by a unit.
_WEAK_WORDS = {"one", "eins", "elf"}

_NUMBER = re.compile(
    r"(?<![\w.,/#])"
    r"(?P<cur>US\$|\$|€|£|(?:USD|EUR|GBP)\s?)?"
    r"(?:(?P<num>\d{1,3}(?:[,.]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?)|(?P<word>" + _WORD_RE + r"))"
    r"(?P<mult>\s?(?:k|thousand|tausend|million|millionen|mio\.?|billion|bn|(?-i:M))(?![\w]))?"
    r"(?:(?:\s|-|\u00a0)?(?P<unit>" + _UNIT_RE + r")(?![\w]))?"
    r"(?:\s?(?P<cur2>€|\$))?",
    re.IGNORECASE,
)

# --------------------------------------------------------------------------- dates

_MONTHS = {
    "January": 1, "Jan": 1, "Januar": 1, "February": 2, "Feb": 2, "Februar": 2, "March": 3, "Mar": 3, "März": 3,
    "April": 4, "Apr": 4, "May": 5, "Mai": 5, "June": 6, "Jun": 6, "Juni": 6, "July": 7, "Jul": 7, "Juli": 7,
    "August": 8, "Aug": 8, "September": 9, "Sep": 9, "Sept": 9, "October": 10, "Oct": 10, "Oktober": 10,
    "Okt": 10, "November": 11, "Nov": 11, "December": 12, "Dec": 12, "Dezember": 12, "Dez": 12,
}
_ABBREVIATIONS = {"Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Okt", "Nov", "Dec", "Dez"}
_AMBIGUOUS = _ABBREVIATIONS | {"May", "Mai"}
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE = re.compile(
    r"(?:(?P<d1>\d{1,2})(?:st|nd|rd|th|\.)?\s+(?:of\s+)?)?"
    r"\b(?P<month>" + _MONTH_RE + r")\b\.?"
    r"(?:\s+(?P<d2>\d{1,2})(?:st|nd|rd|th)?\b)?"
    r"(?:,?\s+(?P<year>(?:19|20)\d{2})\b)?"
)
_NUMERIC_DATE = re.compile(
    r"\b(?:(?P<y>(?:19|20)\d{2})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"          # 2026-07-31
    r"|(?P<d2>\d{1,2})\.(?P<m2>\d{1,2})\.(?P<y2>(?:19|20)\d{2}))\b")   # 31.07.2026
_QUARTER = re.compile(r"\b(?P<q>Q[1-4])(?:\s+(?P<year>(?:19|20)\d{2}))?\b")
# Words that, right before an ambiguous "May", make it a month ("in May", "by May").
_MAY_CUES = re.compile(r"(?:\b(?:in|by|since|until|till|from|of|early|late|mid|this|next|last|im|ab|bis|seit)\s+)$",
                       re.IGNORECASE)

# --------------------------------------------------------------------------- superlatives and certifications

# canonical key -> pattern; a term is supported if its key's pattern matches any source.
_TERMS: dict[str, str] = {
    # "#1" ranks when it qualifies something ("the #1 app", "#1 in sales") or completes "we're/is/rated #1";
    # a bare trailing "#1" is a label (a post number), not a ranking.
    "number one": (r"#\s?1\b(?=\s+\w)"
                   r"|(?:(?<=the\s)|(?<=is\s)|(?<=are\s)|(?<=re\s)|(?<=rated\s)|(?<=ranked\s)|(?<=voted\s))#\s?1\b"
                   r"|\bno\.\s?1\b|\bnumber\s+one\b|\bnr\.\s?1\b|\bnummer\s+(?:1|eins)\b"),
    "award-winning": r"\baward[-\s]?winning\b|\bpreisgekrönt\w*",
    "organic": r"\b(?:certified\s+)?organic\b|\bbio\b|\bbiologisch\w*|\bbio-\w+",
    "fda-approved": r"\bfda[-\s](?:approved|cleared|registered)\b",
    "clinically proven": r"\bclinically[-\s](?:proven|tested|shown)\b|\bklinisch\s+(?:getestet|erwiesen|bewiesen)\w*",
    "dermatologist-tested": r"\bdermatologist[-\s](?:tested|recommended|approved)\b|\bdermatologisch\s+getestet\w*",
    "doctor-recommended": r"\b(?:doctor|dentist|vet)[-\s]recommended\b",
    "best-selling": r"\bbest[-\s]?sell(?:ing|er)s?\b|\bmeistverkauft\w*",
    "top-rated": r"\b(?:top|highest|best)[-\s]rated\b",
    "world's first": r"\bworld['’]?s\s+(?:first|best|leading)\b|\bweltweit\s+(?:erste|beste)\w*",
    "best in class": r"\bbest[-\s]in[-\s]class\b",
    "industry-leading": r"\b(?:industry|market)[-\s](?:leading|leader)\b|\bmarktführer\w*",
    "test winner": r"\btestsieger\w*",
    "patented": r"\bpatent(?:ed|[-\s]pending)\b|\bpatentiert\w*",
    "certified": r"\bcertified\b|\bzertifiziert\w*",
    "gluten-free": r"\bgluten[-\s]?free\b|\bglutenfrei\w*",
    "sugar-free": r"\bsugar[-\s]?free\b|\bzuckerfrei\w*",
    "vegan": r"\bvegan\w*",
    "non-gmo": r"\bnon[-\s]gmo\b|\bgentechnikfrei\w*",
    "cruelty-free": r"\bcruelty[-\s]free\b|\btierversuchsfrei\w*",
    "all-natural": r"\ball[-\s]natural\b|\bnaturrein\w*",
    "hypoallergenic": r"\bhypoallergen\w*",
    "guaranteed": r"\bguarantee[ds]?\b|\bmoney[-\s]back\b|\bgarantie\w*|\bgarantiert\w*",
    "genuine leather": (r"\b(?:genuine|real|italian|full[-\s]grain)\s+leather\b"
                        r"|\becht(?:es|em)?\s+leder\b|\bechtleder\w*"),
    "handmade": r"\bhand[-\s]?made\b|\bhandgemacht\w*|\bhandgefertigt\w*",
    "made in": (r"\bmade\s+in\s+(?:the\s+)?(?:usa|u\.s\.a?\.?|italy|germany|france|japan|uk|america)\b"
                r"|\bhergestellt\s+in\s+deutschland\b"),
    "carbon neutral": r"\bcarbon[-\s]neutral\b|\bklimaneutral\w*",
    "biodegradable": r"\bbiodegradable\b|\bbiologisch\s+abbaubar\b",
    "fair trade": r"\bfair[-\s]?trade\b",
    "lab-tested": r"\blab[-\s]tested\b|\blaborgetestet\w*",
}


@lru_cache(maxsize=None)
def _term_re(key: str) -> re.Pattern:
    return re.compile(_TERMS[key], re.IGNORECASE)


# --------------------------------------------------------------------------- extraction

@dataclass(frozen=True)
class Claim:
    start: int
    end: int
    text: str
    kind: str                 # "number" | "date" | "term"
    key: tuple


def _to_value(raw: str) -> float:
    """'1,000' -> 1000; '1.000' (German) -> 1000; '14,99' -> 14.99; '14.99' -> 14.99."""
    groups = re.split(r"[,.]", raw)
    if len(groups) == 1:
        return float(raw)
    seps = re.findall(r"[,.]", raw)
    last = groups[-1]
    if len(groups) > 2 and len(set(seps)) == 1:
        return float("".join(groups))                          # 1,000,000 / 1.000.000
    if len(set(seps)) == 2:                                     # 1,234.50 / 1.234,50
        return float("".join(groups[:-1]) + "." + last)
    if len(last) == 3 and groups[0] != "0":                     # 1,000 / 1.000: thousands
        return float("".join(groups))
    return float(groups[0] + "." + last)                        # 14.99 / 14,99 / 0.5


def _numbers(text: str) -> list[Claim]:
    claims = []
    for m in _NUMBER.finditer(text):
        word, unit_raw = m.group("word"), m.group("unit")
        if word and word.lower() in _WEAK_WORDS and not unit_raw:
            continue
        if word and m.group("cur"):
            continue
        value = float(_WORDS[word.lower()]) if word else _to_value(m.group("num"))
        mult = (m.group("mult") or "").strip().lower()
        if mult:
            value *= _MULTIPLIERS.get(mult, 1)
        unit = _UNIT_OF.get(unit_raw.lower()) if unit_raw else None
        currency = m.group("cur") or m.group("cur2")
        if currency:
            unit = _CURRENCY_PREFIX.get(currency.strip().lower(), unit)
        end = m.end()
        claims.append(Claim(m.start(), end, text[m.start():end].strip(), "number", (round(value, 4), unit)))
    return claims


def _dates(text: str) -> list[Claim]:
    claims = []
    for m in _DATE.finditer(text):
        month_word = m.group("month")
        day = m.group("d1") or m.group("d2")
        year = m.group("year")
        if month_word in _AMBIGUOUS and not (day or year or _MAY_CUES.search(text[:m.start()])):
            continue  # "you may", "Mar" as a name: a month only next to a day, a year or "in/by ..."
        end = m.end()
        if text[end - 1:end] == "." and month_word not in _ABBREVIATIONS:
            end -= 1  # a sentence's full stop, not an abbreviation's
        claims.append(Claim(m.start(), end, text[m.start():end].strip(), "date",
                            (_MONTHS[month_word], int(day) if day else None, int(year) if year else None)))
    for m in _NUMERIC_DATE.finditer(text):
        y, mo, d = (m.group("y"), m.group("m"), m.group("d")) if m.group("y") else \
            (m.group("y2"), m.group("m2"), m.group("d2"))
        if 1 <= int(mo) <= 12:
            claims.append(Claim(m.start(), m.end(), m.group(0), "date", (int(mo), int(d), int(y))))
    for m in _QUARTER.finditer(text):
        claims.append(Claim(m.start(), m.end(), m.group(0), "date",
                            (m.group("q").upper(), None, int(m.group("year")) if m.group("year") else None)))
    return claims


def _terms(text: str) -> list[Claim]:
    claims = []
    for key in _TERMS:
        for m in _term_re(key).finditer(text):
            claims.append(Claim(m.start(), m.end(), m.group(0), "term", (key,)))
    return claims


def extract_claims(text: str) -> list[Claim]:
    """Every claim in `text`, longest first where they overlap (a date swallows its day and year)."""
    found = _terms(text) + _dates(text) + _numbers(text)
    kept: list[Claim] = []
    taken: list[tuple[int, int]] = []
    for claim in sorted(found, key=lambda c: (-(c.end - c.start), c.start)):
        if any(claim.start < e and s < claim.end for s, e in taken):
            continue
        if claim.kind == "number" and text[claim.start:claim.end + 2] == claim.text + "/7":
            continue  # "24/7" is a phrase, not a figure
        kept.append(claim)
        taken.append((claim.start, claim.end))
    return sorted(kept, key=lambda c: c.start)


# --------------------------------------------------------------------------- support

@dataclass(frozen=True)
class Sources:
    """What the claims may rest on, pre-extracted once per generation."""
    text: str
    numbers: frozenset
    dates: tuple

    @classmethod
    def of(cls, texts: list[str]) -> "Sources":
        text = "\n".join(t for t in texts if t)
        numbers: set = set()
        dates: list = []
        for claim in _dates(text):
            dates.append(claim.key)
            if claim.key[1] is not None:
                numbers.add((float(claim.key[1]), None))
            if claim.key[2] is not None:
                numbers.add((float(claim.key[2]), None))
        for claim in _numbers(text):
            numbers.add(claim.key)
        return cls(text, frozenset(numbers), tuple(dates))

    def supports(self, claim: Claim) -> bool:
        if claim.kind == "term":
            return bool(_term_re(claim.key[0]).search(self.text))
        if claim.kind == "date":
            month, day, year = claim.key
            return any(m == month and (day is None or d == day) and (year is None or y in (year, None))
                       for m, d, y in self.dates) and \
                (year is None or any(v == year for v, _u in self.numbers) or
                 any(y == year for _m, _d, y in self.dates))
        value, unit = claim.key
        return any(v == value and (unit is None or u is None or u == unit) for v, u in self.numbers)


_REASONS = {
    "number": "This figure appears nowhere in your inputs, brand voice or knowledge.",
    "date": "This date appears nowhere in your inputs, brand voice or knowledge.",
    "term": "This claim appears nowhere in your inputs, brand voice or knowledge.",
}


def unsupported_claims(text: str, sources: Sources) -> list[Finding]:
    """A finding for every claim in `text` that `sources` does not support."""
    return [Finding("unsupported_claim", "claim", c.start, c.end, c.text, _REASONS[c.kind],
                    "Use a figure from your inputs, or remove it.")
            for c in extract_claims(text) if not sources.supports(c)]
