"""Rules that turn the OCR lines of a sheet into draft Darwin Core fields.

Herbarium labels are forms: a printed caption ("Botanical Name", "Locality",
"Collector", "Date") with the value typed or written on the dotted line after it. The
value may be a separate text box beside the caption or a little above it (typed on
the line, above the printed baseline), the same box as the caption when the OCR joins
them, or run onto the next line. So each caption takes the text that follows it in its
own box, the boxes on its row up to the next caption, and for free text (locality,
habitat) an uncaptioned line below.

What is never a value: the colour-checker card photographed beside the plant, and the
institution's printed header (its station name and address are not where the plant
was collected). A field with no caption on the label is looked for only where its
form is unmistakable (a date, a "No." number, a province name); anything else stays
empty rather than guessed.

Each value's confidence is the OCR's confidence in its text times how sure the rule
is; values a rule is unsure of come out below 0.5.

``VERSION`` names these rules in the ledger: a change to what they produce from the
same lines must change it, so a replay over stored readings shows what changed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from herbx.events import OcrLine as Line

VERSION = "1"

TERMS = (
    "catalogNumber",
    "scientificName",
    "recordedBy",
    "recordNumber",
    "eventDate",
    "locality",
    "habitat",
    "stateProvince",
    "country",
    "identifiedBy",
)

# Printed captions and the term they introduce; None marks a caption whose value is
# not one of the terms (it still ends the value before it). Longer captions win over
# the shorter ones they contain ("Host Identified by" over "Host").
CAPTIONS: tuple[tuple[str, str | None], ...] = (
    ("botanical name", "scientificName"),
    ("latin name", "scientificName"),
    ("species", "scientificName"),
    ("scientific name", "scientificName"),
    ("host", "scientificName"),
    ("common name", None),
    ("english name", None),
    ("natural order", None),
    ("family", None),
    ("remarks", None),
    ("disease symptom", None),
    ("pathogen identified by", None),
    ("pathogen", None),
    ("host identified by", "identifiedBy"),
    ("identified by", "identifiedBy"),
    ("checked by", "identifiedBy"),
    ("det", "identifiedBy"),
    ("locality", "locality"),
    ("location", "locality"),
    ("habitat", "habitat"),
    ("collector", "recordedBy"),
    ("collected by", "recordedBy"),
    ("coll", "recordedBy"),
    ("elevation", None),
    ("altitude", None),
    ("coll no", "recordNumber"),
    ("no", "recordNumber"),
    ("number", "catalogNumber"),
    ("date", "eventDate"),
    ("province", "stateProvince"),
    ("country", "country"),
)
# Values that are one number: they take no more than their first box.
SHORT = ("recordNumber", "catalogNumber")
# Values that may run onto a second, uncaptioned line.
CONTINUED = ("locality", "habitat")

CHECKER_WORDS = ("calibrite", "colorchecker", "checker", "classic", "xrite")
HEADER_PATTERNS = (
    r"research\s*station",
    r"agri\w*\s*canada",
    r"canada\s*department\s*of\s*agri",
    r"agriculture\s*and\s*agri",
    r"experimental\s*farm",
    r"^\s*regina\W*\s*sask\w*\W*$",
    r"herbarium",
    r"scientific\s*co",
    r"\(das\)|\(dao\)",
    r"\bstet\b",  # an annotation slip: a later botanist agreeing, not the label
    r"annotated\s*by|annot\w*\s*par",
)
# Provinces by name, or by the abbreviations labels use, written as abbreviations
# are: "Man." and "Alta." take their dot, so "man-made" and "Alta Vista" are none.
PROVINCES = (
    (r"(?i:\bsaskatchewan\b)|\bSask\b|\bSASK\b", "Saskatchewan"),
    (r"(?i:\balberta\b)|\bAlta\.|\bALTA\.", "Alberta"),
    (r"(?i:\bmanitoba\b)|\bMan\.(?!\w)|\bMAN\.(?!\w)", "Manitoba"),
    (r"(?i:\bbritish\s+columbia\b)|\bB\s?[.:]\s?C\b", "British Columbia"),
    (r"(?i:\bontario\b)|\bOnt\.|\bONT\.", "Ontario"),
    (r"(?i:\bqu[eé]bec\b)|\bQue\.|\bP\.\s?Q\.", "Quebec"),
    (r"(?i:\byukon\b)", "Yukon"),
)
MONTHS = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
# Month names as labels write them, and nothing else: "Marsh" is no March.
MONTH_WORDS = {
    **{name[:3]: number for name, number in MONTHS.items()},
    **{
        name: number
        for number, name in enumerate(
            (
                "january",
                "february",
                "march",
                "april",
                "may",
                "june",
                "july",
                "august",
                "september",
                "october",
                "november",
                "december",
            ),
            1,
        )
    },
    "sept": 9,
    "june": 6,
    "july": 7,
}
ROMAN = {
    "i": 1,
    "ii": 2,
    "iii": 3,
    "iv": 4,
    "v": 5,
    "vi": 6,
    "vii": 7,
    "viii": 8,
    "ix": 9,
    "x": 10,
    "xi": 11,
    "xii": 12,
}

# How sure each rule is, multiplied into the OCR's own confidence.
SURE = 1.0
FUZZY_CAPTION = 0.85
CONTINUATION = 0.8
AMBIGUOUS_DATE = 0.45
UNCAPTIONED = 0.45
MALFORMED = 0.4

# Words, numbers, and the halves of words the OCR glued together ("WiseDate").
_TOKEN = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+|[^\W\d_]+")
_LEADERS = re.compile(r"(?:\s*[.·•:;_|\[\]]){2,}\s*|\s+[.·•:;_|]\s+")


@dataclass
class _Box:
    """A line of OCR text on the sheet, with what the rules learned about it."""

    line: Line
    captions: list[_Caption] = field(default_factory=list)
    used: bool = False

    @property
    def left(self) -> int:
        return self.line.box[0]

    @property
    def top(self) -> int:
        return self.line.box[1]

    @property
    def right(self) -> int:
        return self.line.box[2]

    @property
    def bottom(self) -> int:
        return self.line.box[3]

    @property
    def height(self) -> int:
        return max(1, self.bottom - self.top)

    def x_at(self, offset: int) -> float:
        """Where a character offset of the text lies, assuming even spacing."""
        share = offset / max(1, len(self.line.text))
        return self.left + share * (self.right - self.left)


@dataclass
class _Caption:
    box: _Box
    term: str | None
    start: int  # character offsets of the caption within its box's text
    end: int
    exact: bool

    @property
    def x(self) -> float:
        return self.box.x_at(self.start)

    @property
    def value_x(self) -> float:
        return self.box.x_at(self.end)


@dataclass
class _Value:
    # (row, left, text, OCR score): read row by row, each row left to right.
    parts: list[tuple[int, float, str, float]] = field(default_factory=list)
    sure: float = SURE
    raw: dict[str, str] = field(default_factory=dict)  # cleaned part -> OCR text

    def add(self, text: str, score: float, left: float, row: int = 0) -> None:
        cleaned = clean(text)
        if cleaned:
            self.parts.append((row, left, cleaned, score))
            self.raw[cleaned] = text

    def ends_abbreviated(self) -> bool:
        """Whether the last word is an abbreviation with its dot ("Beauv.", "L.")."""
        if not self.parts:
            return False
        last = sorted(self.parts)[-1][2]
        found = re.search(r"\b([A-Z][A-Za-z]{0,6})\.(?=[\s.·:;]*$)", self.raw[last])
        return bool(found) and last.endswith(found[1])

    @property
    def text(self) -> str:
        return " ".join(part[2] for part in sorted(self.parts)).strip()

    @property
    def score(self) -> float:
        if not self.parts:
            return 0.0
        weights = [len(part[2]) for part in self.parts]
        total = sum(w * part[3] for w, part in zip(weights, self.parts, strict=True))
        return total / sum(weights)


def extract(lines: Iterable[Line]) -> dict[str, Any]:
    """Return draft Darwin Core fields, ``{term: {"value", "confidence"}}``."""
    # Short texts with a degree sign are the graticule of a printed map.
    boxes = [
        _Box(_plain(line))
        for line in lines
        if not ("°" in line.text and len(line.text) <= 6)
    ]
    boxes = _without_checker(boxes)
    label = _without_header(boxes)
    label = _joined_captions(label)
    for box in label:
        box.captions = _captions(box.line.text, box)

    values = _captioned_values(label)
    fields: dict[str, dict[str, Any]] = {}
    for term, value in values.items():
        parsed = _finish(term, value)
        if parsed is not None:
            fields[term] = parsed
    _uncaptioned(fields, boxes, label)
    return {term: fields[term] for term in TERMS if term in fields}


# -- what is not label text ------------------------------------------------------------


def _without_checker(boxes: list[_Box]) -> list[_Box]:
    """Drop the colour checker's printed words and the ruler figures beside them."""
    checker = [box for box in boxes if _is_checker_word(box.line.text)]
    if not checker:
        return boxes
    # The card is a few times as long as its printed name, which may run either way.
    reach = 4 * max(max(b.right - b.left, b.bottom - b.top) for b in checker)
    kept = []
    for box in boxes:
        if box in checker:
            continue
        near = any(
            abs(box.left - other.left) < reach and abs(box.top - other.top) < reach
            for other in checker
        )
        ruler = re.fullmatch(
            r"\d{1,3}(/\d{1,3})?|[mc]m|ww|mw|\W*", box.line.text.lower()
        )
        if near and ruler:
            continue  # the ruler's "12/22", "mm" and tick numbers
        kept.append(box)
    return kept


def _is_checker_word(text: str) -> bool:
    letters = re.sub(r"[^a-z]", "", text.lower())
    return any(word in letters for word in CHECKER_WORDS) and len(letters) >= 5


def _plain(line: Line) -> Line:
    """Fold the accents the recogniser puts on plain English letters ("Creęk").

    Its dictionary covers many scripts and it adds cedillas and ogoneks to typed
    English far more often than these labels carry a real accent.
    """
    folded = unicodedata.normalize("NFKD", line.text)
    text = "".join(char for char in folded if not unicodedata.combining(char))
    return Line(text, line.score, line.box) if text != line.text else line


def _without_header(boxes: list[_Box]) -> list[_Box]:
    """Drop the institution's printed header, its address lines included.

    A header line is known by its words, unless it is captioned ("Locality:
    Experimental Farm, Indian Head"); the address below it ("SWIFT CURRENT, SASK.")
    by standing right under a header line, in capitals, with no caption.
    """
    header: list[_Box] = []
    for box in sorted(boxes, key=lambda b: b.top):
        captions = _captions(box.line.text, box)
        if _is_header(box.line.text) and not any(c.term for c in captions):
            header.append(box)
            continue
        under = any(
            -0.5 * above.height <= box.top - above.bottom <= 0.8 * above.height
            and box.left < above.right
            and above.left < box.right
            for above in header
        )
        # Printed headers are set in capitals; a value right below one is not.
        capitals = not re.search("[a-z]", box.line.text)
        if under and capitals and not captions:
            header.append(box)
    return [box for box in boxes if box not in header]


def _joined_captions(boxes: list[_Box]) -> list[_Box]:
    """Join a caption the OCR cut in two boxes ("Botanical" + "Name.")."""
    firsts = {c.split()[0]: c for c, _ in CAPTIONS if " " in c}
    joined = list(boxes)
    for box in boxes:
        words = _TOKEN.findall(box.line.text)
        if not words or words[-1].lower() not in firsts or box not in joined:
            continue
        rest = firsts[words[-1].lower()].split()[1]
        for other in joined:
            tokens = _TOKEN.findall(other.line.text)
            if (
                other is not box
                and tokens
                and tokens[0].lower() == rest
                and 0 <= other.left - box.right <= 2 * box.height
                and _overlap(box, other) > 0.5
            ):
                line = Line(
                    f"{box.line.text} {other.line.text}",
                    min(box.line.score, other.line.score),
                    (
                        box.left,
                        min(box.top, other.top),
                        other.right,
                        max(box.bottom, other.bottom),
                    ),
                )
                joined[joined.index(box)] = _Box(line)
                joined.remove(other)
                break
    return joined


def _overlap(a: _Box, b: _Box) -> float:
    """How much two boxes share vertically, as a share of the shorter one."""
    shared = min(a.bottom, b.bottom) - max(a.top, b.top)
    return max(0, shared) / min(a.height, b.height)


def _is_header(text: str) -> bool:
    lowered = text.lower()
    return any(re.search(pattern, lowered) for pattern in HEADER_PATTERNS)


# -- captions --------------------------------------------------------------------------


def _captions(text: str, box: _Box) -> list[_Caption]:
    """Find the printed captions in a line's text, left to right."""
    tokens = [(m.group().lower(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
    found: list[_Caption] = []
    i = 0
    while i < len(tokens):
        match = _caption_at(tokens, i, text)
        if match is None:
            i += 1
            continue
        term, used, exact = match
        found.append(
            _Caption(box, term, tokens[i][1], tokens[i + used - 1][2], exact=exact)
        )
        i += used
    return found


def _caption_at(
    tokens: list[tuple[str, int, int]], i: int, text: str
) -> tuple[str | None, int, bool] | None:
    best: tuple[int, str | None, int, bool] | None = None
    for caption, term in CAPTIONS:
        target = caption.replace(" ", "")
        words = caption.count(" ") + 1
        for used in range(1, min(words + 1, len(tokens) - i) + 1):
            joined = "".join(token for token, _, _ in tokens[i : i + used])
            if len(joined) > len(target) + 2:
                break
            distance = _distance(joined, target)
            if distance > _allowed(target):
                continue
            first = tokens[i][0]
            if len(first) < 3 and not target.startswith(first):
                continue  # a stray letter before the caption, not a misread of it
            if len(target) <= 3 and not _short_caption_ok(tokens, i, used, text):
                continue
            if not _stands_as_caption(tokens, i, used, text, target, distance == 0):
                continue
            rank = len(target) * 10 - distance
            if best is None or rank > best[0]:
                best = (rank, term, used, distance == 0)
    if best is None:
        return None
    return best[1], best[2], best[3]


_SEPARATORS = set(".:;,|·•[]")


def _stands_as_caption(
    tokens: list[tuple[str, int, int]],
    i: int,
    used: int,
    text: str,
    target: str,
    exact: bool,
) -> bool:
    """Whether words that spell a caption are printed as one, not part of a value.

    A printed caption starts its box or follows punctuation (the dotted line of the
    value before it), or is glued to that value by the OCR ("WiseDate"). It ends in
    its dots or colon, the end of the box, or, spelled exactly and long enough not
    to be an everyday word, a space before its value; "Date June 27, 1935" too. So
    "Cold Lake" is no "Coll." and "open country" no "Country".
    """
    start, end = tokens[i][1], tokens[i + used - 1][2]
    before = text[tokens[i - 1][2] : start] if i else ""
    glued = not before and i and text[start].isupper() and text[start - 1].islower()
    if i and not glued and not _SEPARATORS & set(before):
        return False

    following = i + used
    after = text[end : tokens[following][1]] if following < len(tokens) else text[end:]
    if _SEPARATORS & set(after) or following == len(tokens):
        return True
    if not exact:
        return False
    if target == "date":
        word = tokens[following][0]
        return word.isdigit() or word in MONTH_WORDS
    return len(target) >= 5


def _allowed(target: str) -> int:
    """Edit distance tolerated for a caption of this length (OCR misreads)."""
    if len(target) <= 3:
        return 0
    if len(target) <= 9:
        return 1
    return 2


def _short_caption_ok(
    tokens: list[tuple[str, int, int]], i: int, used: int, text: str
) -> bool:
    """ "No" and "Det" are captions only as abbreviations: "No." or "No 123"."""
    end = tokens[i + used - 1][2]
    following = text[end : end + 1]
    if following in (".", ":"):
        return True
    after = tokens[i + used][0] if i + used < len(tokens) else ""
    return after[:1].isdigit()


def _distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            )
        previous = current
    return previous[-1]


# -- values beside and above captions --------------------------------------------------


def _captioned_values(label: list[_Box]) -> dict[str, _Value]:
    captions = [caption for box in label for caption in box.captions]
    values: dict[str, _Value] = {}
    owners: dict[int, _Value] = {}
    # How far right each caption's value reaches so far: a box further than a few
    # letters beyond it is something else on the sheet (a map, a stamp).
    reach: dict[int, float] = {}
    loose: list[_Box] = []

    for caption in captions:
        value = _Value(sure=SURE if caption.exact else FUZZY_CAPTION)
        box = caption.box
        siblings = box.captions
        after = siblings.index(caption) + 1
        stop = siblings[after].start if after < len(siblings) else len(box.line.text)
        value.add(box.line.text[caption.end : stop], box.line.score, caption.value_x)
        owners[id(caption)] = value
        reach[id(caption)] = box.x_at(stop)
        if caption.term and (
            caption.term not in values or not values[caption.term].text
        ):
            values[caption.term] = value
        box.used = True
        if caption is siblings[0] and clean(box.line.text[: caption.start]):
            # Text before a box's first caption is the value of a caption further
            # left ("Thomas & Wise" + "Date" read as one box).
            head = Line(
                box.line.text[: caption.start],
                box.line.score,
                (box.left, box.top, round(box.x_at(caption.start)), box.bottom),
            )
            loose.append(_Box(head))

    # A box without captions belongs to the nearest caption to its left on its row.
    rows = [box for box in label if not box.captions] + loose
    for box in sorted(rows, key=lambda b: b.left):
        caption = _row_caption(box, captions)
        if caption is None:
            continue
        value = owners[id(caption)]
        line = caption.box
        # The first words may start well along the dotted line; the next follow on.
        if box.left - reach[id(caption)] > (3 if value.text else 8) * line.height:
            continue
        if caption.term in SHORT and value.text:
            continue  # a number is one value; what follows is not part of it
        value.add(box.line.text, box.line.score, box.left)
        reach[id(caption)] = max(reach[id(caption)], box.right)
        box.used = True

    for term in CONTINUED:
        caption = next((c for c in captions if c.term == term), None)
        if caption is not None and values.get(term) is owners[id(caption)]:
            _continuation(caption, values[term], label)
    return values


def _row_caption(box: _Box, captions: list[_Caption]) -> _Caption | None:
    """The caption a value box stands beside: on its row, nearest to its left.

    Typed values sit on the dotted line, so a little above the caption's printed
    baseline; handwriting may rise further. The row of a caption reaches from most
    of a line above it down to its own bottom.
    """
    middle = (box.top + box.bottom) / 2
    best: tuple[float, _Caption] | None = None
    for caption in captions:
        line = caption.box
        if not (
            line.top - 0.9 * line.height <= middle <= line.bottom + 0.2 * line.height
        ):
            continue
        if box.left < caption.value_x - 0.5 * line.height:
            continue
        gap = box.left - caption.value_x
        # A caption further right on the row that the box lies beyond is closer.
        vertical = abs(box.bottom - line.bottom) / line.height
        rank = gap + vertical * line.height * 4
        if best is None or rank < best[0]:
            best = (rank, caption)
    return best[1] if best else None


def _continuation(caption: _Caption, value: _Value, label: list[_Box]) -> None:
    """Append an uncaptioned line just below a free-text value, in its column."""
    line = caption.box
    captions = [c for box in label for c in box.captions]
    below = [
        box
        for box in label
        if not box.used
        and _row_caption(box, captions) in (None, caption)
        and not box.captions
        and line.bottom <= box.top <= line.bottom + 1.6 * line.height
        and caption.x - 2 * line.height <= box.left <= caption.value_x + 4 * line.height
    ]
    if below:
        box = min(below, key=lambda b: b.top)
        value.add(box.line.text, box.line.score, box.left, row=1)
        value.sure = min(value.sure, CONTINUATION)
        box.used = True


# -- cleaning and parsing values -------------------------------------------------------


def clean(text: str) -> str:
    """Strip dotted leaders, stray punctuation and the caption's colon."""
    text = _LEADERS.sub(" ", f" {text} ")
    # Words read together with the dots of the line they are written on
    # ("miles.east.of"); initials ("J.F.Alex") keep theirs.
    text = re.sub(r"(?<=[A-Za-z]{2})\.(?=[A-Za-z]{2})", " ", text)
    # A capital split from the rest of its word by a speck ("A,ster", "S.ept").
    text = re.sub(r"(?<=\b[A-Z])[.,](?=[a-z]{2})", "", text)
    text = re.sub(r"\s+", " ", text)
    return text.strip(" .,:;|[]_-·•'\"")


def _finish(term: str, value: _Value) -> dict[str, Any] | None:
    text = value.text
    if not text:
        return None
    sure = value.sure
    if term == "eventDate":
        parsed = parse_date(text)
        if parsed is None:
            return None
        text, certainty = parsed
        sure *= certainty
    elif term == "catalogNumber":
        # Stamped numbers are often read with the dots of their line between
        # the digits ("2..0.6.28"); a catalogue number has no dots of its own.
        number = _number(re.sub(r"(?<=\d)[.\s]+(?=\d)", "", _digits(text)))
        if number is None:
            return None
        text = number
    elif term == "recordNumber":
        number = _number(text)
        if number is None:
            return None
        text = number
    elif term == "scientificName":
        if not re.match(r"[A-Z][a-z]+(\s+[a-z-]{3,})?", text):
            sure *= MALFORMED
        if value.ends_abbreviated():
            text += "."  # an author's abbreviation keeps its dot: "Beauv.", "L."
    elif term == "stateProvince":
        text = _province(text) or text
    elif len(re.sub(r"[\W_]", "", text)) < 2:
        return None
    return _field(text, value.score * sure)


def _field(value: str, confidence: float) -> dict[str, Any]:
    return {"value": value, "confidence": round(max(0.0, min(1.0, confidence)), 2)}


def _number(text: str) -> str | None:
    """A collector's or catalogue number: digits, maybe a letter or a dash."""
    text = _digits(text)
    match = re.search(r"\d(?:[\d\-]|\.(?=\d))*[A-Za-z]?(?![A-Za-z])", text)
    if match is None:
        return None
    return match.group().strip("-")


def _digits(text: str) -> str:
    """Undo the OCR's usual letter-for-digit misreads next to digits."""
    swaps = {"l": "1", "I": "1", "|": "1", "O": "0", "o": "0"}
    out = []
    for i, char in enumerate(text):
        near = text[max(0, i - 1) : i] + text[i + 1 : i + 2]
        out.append(swaps[char] if char in swaps and re.search(r"\d", near) else char)
    return "".join(out)


def parse_date(text: str) -> tuple[str, float] | None:
    """An ISO 8601 date from a label's date, with how sure the reading is.

    Labels write "Aug. 22, 1985", "22 Aug 1985", "22.VIII.1985", "20/06/47" and
    "08/18/83". A numeric date is read day first unless its first number cannot be
    a month; when both readings are possible the confidence says so. A two-digit year
    is in the 1900s: labels of this century write the year in full. Years outside
    1750-2099 are no collection date. The reading depends on the text alone, never
    on today's date, so a replay gives the same.
    """
    # "S.ept.18.l984": handwriting read together with its dotted line.
    text = re.sub(r"(?<=[A-Za-z])\.(?=[a-z])", "", _digits(text))
    # "20/0.6/47": a dot of the line inside a numeric date.
    text = (
        re.sub(r"(?<=[/\d])\.(?=\d)|(?<=\d)\.(?=/)", "", text) if "/" in text else text
    )
    # Numbers longer than a year are no part of a date.
    words = [
        w
        for w in re.findall(r"[A-Za-z]+|\d+", text)
        if not (w.isdigit() and len(w) > 4)
    ]

    for i, word in enumerate(words):
        month = MONTH_WORDS.get(word.lower())
        if month is None:
            continue
        before = words[i - 1] if i else ""
        numbers = [w for w in words[i + 1 : i + 3] if w.isdigit()]
        if len(numbers) == 2 and len(numbers[0]) <= 2 and len(numbers[1]) in (2, 4):
            return _iso(_year(numbers[1]), month, int(numbers[0]), SURE)
        if len(before) == 4 and before.isdigit() and numbers and len(numbers[0]) <= 2:
            return _iso(int(before), month, int(numbers[0]), SURE)  # "1987 Aug 20"
        day_first = before.isdigit() and len(before) <= 2  # "22 Aug 1985"
        if day_first and numbers and len(numbers[0]) in (2, 4):
            return _iso(_year(numbers[0]), month, int(before), SURE)
        if numbers and len(numbers[0]) == 4 and _plausible(int(numbers[0])):
            return f"{int(numbers[0]):04d}-{month:02d}", SURE

    # A Roman month stands between the day and the year: "22.VIII.1985".
    match = re.search(
        r"\b(\d{1,2})\s*[.\-/]\s*([IVXivx]{1,4})\s*[.\-/]\s*(\d{2}|\d{4})\b"
        r"|\b(\d{1,2}) ([IVX]{1,4}) (\d{4})\b",
        text,
    )
    if match:
        day, roman, year = (
            match[1] or match[4],
            match[2] or match[5],
            match[3] or match[6],
        )
        if roman.lower() in ROMAN:
            return _iso(_year(year), ROMAN[roman.lower()], int(day), SURE)
    match = re.search(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b", text)
    if match:
        return _iso(int(match[1]), int(match[2]), int(match[3]), SURE)
    match = re.search(
        r"\b(\d{1,2})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{2}|\d{4})\b", text
    )
    if match:
        first, second = int(match[1]), int(match[2])
        year = _year(match[3])
        if first > 12:
            return _iso(year, second, first, SURE)
        if second > 12:
            return _iso(year, first, second, SURE)
        return _iso(year, second, first, AMBIGUOUS_DATE)
    match = re.search(r"\b(1[789]\d\d|20\d\d)\b", text)
    if match and _plausible(int(match[1])):
        return match[1], UNCAPTIONED
    return None


def _year(text: str) -> int:
    year = int(text)
    return 1900 + year if len(text) == 2 else year


def _plausible(year: int) -> bool:
    return 1750 <= year <= 2099


def _iso(year: int, month: int, day: int, sure: float) -> tuple[str, float] | None:
    if not _plausible(year):
        return None
    try:
        return date(year, month, day).isoformat(), sure
    except (ValueError, OverflowError):
        return None


def _province(text: str) -> str | None:
    for pattern, province in PROVINCES:
        if re.search(pattern, text):
            return province
    return None


# -- fields without a caption ----------------------------------------------------------


def _uncaptioned(
    fields: dict[str, dict[str, Any]],
    boxes: list[_Box],
    label: list[_Box],
) -> None:
    """Fill what a label states without a caption, where its form is unmistakable."""
    free = [box for box in label if not box.used]
    if "eventDate" not in fields:
        for box in free:
            parsed = parse_date(box.line.text)
            if parsed and len(parsed[0]) == 10:  # a whole date, never a lone year
                value, certainty = parsed
                fields["eventDate"] = _field(
                    value, box.line.score * min(certainty, UNCAPTIONED + 0.3)
                )
                box.used = True
                break
    if "recordNumber" not in fields:
        for box in free:
            match = re.match(
                r"\s*no\W*\s*(\d[\dA-Za-z-]*)", _digits(box.line.text), re.I
            )
            if match:
                fields["recordNumber"] = _field(match[1], box.line.score * UNCAPTIONED)
                break

    # The province: in the locality, else a label title such as "Plants of
    # Saskatchewan, Canada" (a statement about the collection, not an address).
    places = [
        (fields[term]["value"], fields[term]["confidence"])
        for term in ("locality", "habitat")
        if term in fields
    ]
    titles = [
        box
        for box in boxes
        if re.search(r"\b(plants|flora)\s+of\b", box.line.text, re.I)
    ]
    places += [(box.line.text, box.line.score * 0.9) for box in titles]
    if "scientificName" not in fields:
        _name_under_title(fields, titles, label)
    if "stateProvince" not in fields:
        for text, score in places:
            province = _province(text)
            if province:
                fields["stateProvince"] = _field(province, score)
                break
    if "country" not in fields:
        for text, score in places:
            if re.search(r"\bcanada\b", text, re.I):
                fields["country"] = _field("Canada", score)
                break


_BINOMIAL = re.compile(r"[A-Z][a-z]{2,}\s+[a-z][a-z-]{2,}\b|[A-Z]{3,}\s+[A-Z]{3,}$")
_FAMILY = re.compile(r"\b[A-Z]{3,}(?:ACEAE|AE)\b")


def _name_under_title(
    fields: dict[str, dict[str, Any]], titles: list[_Box], label: list[_Box]
) -> None:
    """A name typed without a caption: the line under a label's title ("Plants of
    Saskatchewan") or under a family name (a folder's "280 COMPOSITAE")."""
    heads = titles + [box for box in label if _FAMILY.search(box.line.text)]
    for head in heads:
        below = sorted(
            (
                box
                for box in label
                if not box.used
                and box is not head
                and 0 <= box.top - head.top <= 3 * head.height
            ),
            key=lambda b: (b.top, b.left),
        )
        for box in below:
            if not _BINOMIAL.match(box.line.text):
                continue
            text = box.line.text
            if text.isupper():
                text = text.capitalize()  # "HIERACIUM UMBELLATUM"
            # The author may stand apart on the same row ("Coreopsis tinctoria" and
            # "Nutt.").
            for other in sorted(label, key=lambda b: b.left):
                if (
                    other is not box
                    and not other.used
                    and 0 <= other.left - box.right <= 3 * box.height
                    and _overlap(box, other) > 0.5
                ):
                    text = f"{text} {other.line.text}"
            fields["scientificName"] = _field(clean(text), box.line.score * UNCAPTIONED)
            box.used = True
            return
