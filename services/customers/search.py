"""Search tokens (DESIGN §5): computed in Python when the read model is written, and the same
way for a query.

A customer's ``search_tokens`` hold, for name and company:
- the CJK unigrams and bigrams (穆琳 → 穆, 琳, 穆琳): most Chinese personal names are two
  characters, too short for a trigram index, and the bigrams of a query are all contained in
  the tokens of a name that contains it;
- for the name, pinyin (pypinyin): the full spelling, the initials and each syllable
  (张伟 → zhangwei, zw, zhang, wei), and for names of up to six syllables every contiguous
  run of syllables and of initials, so that a spelling typed halfway finds the name
  (穆琳琅 → mulin, linlang, ml, ll as well as mulinlang, mll, mu, lin, lang); with the
  surname's reading where it differs from the everyday one (曾 → zeng as a surname, not ceng)
  and ü also as v and u (吕 → lv, lu);
- the lower-cased Latin words (and their accent-free form: José → josé, jose).

Partial matches of Latin text, e-mail addresses and phone numbers (3 characters or more) use
pg_trgm indexes on ``lower(name)``, ``lower(company)``, ``emails_text`` and ``phones_text``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from pypinyin import lazy_pinyin

#: CJK ideographs (unified, extension A, compatibility, extensions B and later).
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
CJK_RUN = re.compile(f"[{_CJK}]+")
HAS_CJK = re.compile(f"[{_CJK}]")
#: Words of other scripts: letters and digits that are not CJK.
WORD = re.compile(rf"[^\W_{_CJK}]+")
PHONE_QUERY = re.compile(r"^\+?[\d\s\-().]+$")
MAX_TOKENS = 400
#: Names of up to this many syllables get every contiguous run of their pinyin as a token.
PARTIAL_PINYIN_MAX = 6
#: The shortest term a trigram index can help with.
TRIGRAM_MIN = 3

#: Surnames whose reading as a surname differs from pypinyin's everyday reading.
SURNAME_READINGS = {
    "曾": "zeng",
    "单": "shan",
    "解": "xie",
    "仇": "qiu",
    "朴": "piao",
    "查": "zha",
    "盖": "ge",
    "区": "ou",
    "繁": "po",
    "缪": "miao",
    "翟": "zhai",
    "乐": "yue",
    "种": "chong",
    "秘": "bi",
    "尉": "yu",
    "员": "yun",
    "召": "shao",
    "覃": "qin",
    "折": "she",
    "长": "chang",
    "重": "chong",
    "和": "he",
    "华": "hua",
    "任": "ren",
    "沈": "shen",
    "石": "shi",
    "薄": "bo",
    "柏": "bai",
    "藏": "zang",
    "应": "ying",
}


def normalise(text: str) -> str:
    """NFKC (full-width forms to ASCII) and case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


def _unaccented(word: str) -> str:
    return "".join(
        char for char in unicodedata.normalize("NFKD", word) if not unicodedata.combining(char)
    )


def cjk_ngrams(run: str) -> list[str]:
    """Unigrams and bigrams of one run of CJK characters."""
    return [*run, *(run[i : i + 2] for i in range(len(run) - 1))]


def _syllables(run: str) -> list[str]:
    """The pinyin syllables of a CJK run, ASCII only (unknown characters dropped)."""
    return [s for s in lazy_pinyin(run, errors="ignore") if s.isascii() and s.isalpha()]


def _u_variants(spelling: str) -> set[str]:
    """pypinyin writes ü as v (lv); people type lv or lu."""
    return {spelling, spelling.replace("v", "u")} if "v" in spelling else {spelling}


def pinyin_tokens(name: str) -> set[str]:
    tokens: set[str] = set()
    runs = CJK_RUN.findall(name)
    if not runs:
        return tokens
    readings = [_syllables(run) for run in runs]
    whole = [syllable for reading in readings for syllable in reading]
    spellings = [whole]
    first = runs[0][0]
    if first in SURNAME_READINGS and whole and whole[0] != SURNAME_READINGS[first]:
        spellings.append([SURNAME_READINGS[first], *whole[1:]])
    for syllables in [*spellings, *readings[1:]]:
        if not syllables:
            continue
        tokens.update(syllables)
        for run in _runs(syllables):
            tokens.add("".join(run))
            tokens.add("".join(s[0] for s in run))
    return {variant for token in tokens for variant in _u_variants(token)}


def _runs(syllables: list[str]) -> list[list[str]]:
    """The runs of syllables a user may type: every contiguous run of two or more for a name
    of up to :data:`PARTIAL_PINYIN_MAX` syllables (穆琳琅 → mulin, linlang, mulinlang and ml,
    ll, mll), else the whole and the given name without the surname (张小明 → xiaoming, xm)."""
    count = len(syllables)
    if count <= PARTIAL_PINYIN_MAX:
        return [
            syllables[start:end] for start in range(count) for end in range(start + 2, count + 1)
        ] or [syllables]
    return [syllables, syllables[1:]]


def text_tokens(text: str) -> set[str]:
    """CJK n-grams and Latin words of one text."""
    text = normalise(text)
    tokens: set[str] = set()
    for run in CJK_RUN.findall(text):
        tokens.update(cjk_ngrams(run))
    for word in WORD.findall(text):
        tokens.add(word)
        tokens.add(_unaccented(word))
    return tokens


def index_tokens(name: str | None, company: str | None) -> list[str]:
    """The ``search_tokens`` of a customer, sorted (a stable value for the read model)."""
    tokens: set[str] = set()
    if name:
        tokens |= text_tokens(name)
        tokens |= pinyin_tokens(normalise(name))
    if company:
        tokens |= text_tokens(company)
    return sorted(token for token in tokens if token)[:MAX_TOKENS]


def emails_text(emails: Iterable[Mapping[str, Any]]) -> str:
    return " ".join(str(entry["address"]).lower() for entry in emails)


def phones_text(phones: Iterable[Mapping[str, Any]]) -> str:
    """E.164 and the national significant number, so that '138 1234' and '+86138' both hit."""
    parts: list[str] = []
    for entry in phones:
        number = str(entry["number"])
        parts.append(number)
        try:
            parsed = phonenumbers.parse(number, None)
        except phonenumbers.NumberParseException:
            continue
        parts.append(phonenumbers.national_significant_number(parsed))
    return " ".join(parts)


def contact_keys(
    emails: Iterable[Mapping[str, Any]], phones: Iterable[Mapping[str, Any]]
) -> list[str]:
    """Exact-match keys for duplicate detection (and import matching)."""
    return sorted(
        {f"email:{str(entry['address']).lower()}" for entry in emails}
        | {f"phone:{entry['number']}" for entry in phones}
    )


# -- queries ------------------------------------------------------------------------------------


@dataclass
class Term:
    """One term of a query and how it may match:
    - ``all_tokens``: the customer's tokens contain all of these (CJK n-grams), or
    - ``any_token``: the customer's tokens contain this one (a pinyin spelling, a word);
    - ``like``: a substring of lower(name), lower(company) or the e-mail text (trigram);
    - ``phone``: digits that are a substring of the phone text (trigram);
    - ``recheck``: for CJK, the substring that name or company must contain (the n-grams
      alone could match the characters in another order)."""

    all_tokens: list[str] = field(default_factory=list)
    any_token: str | None = None
    like: str | None = None
    phone: str | None = None
    recheck: str | None = None


def query_terms(query: str) -> list[Term]:
    """The terms of a search query; a customer matches when it matches every term."""
    text = normalise(query).strip()
    if not text:
        return []
    if PHONE_QUERY.match(text):
        digits = re.sub(r"\D", "", text)
        if len(digits) >= TRIGRAM_MIN:
            # A bare run of digits may as well be part of a name, company or e-mail address.
            bare = text if text == digits else None
            return [Term(phone=("+" if text.startswith("+") else "") + digits, like=bare)]
    terms = []
    for part in text.split():
        if HAS_CJK.search(part):
            tokens: list[str] = []
            for run in CJK_RUN.findall(part):
                tokens.extend(cjk_ngrams(run) if len(run) == 1 else _bigrams(run))
            for word in WORD.findall(part):
                tokens.append(word)
            terms.append(Term(all_tokens=sorted(set(tokens)), recheck=part))
            continue
        words = WORD.findall(part)
        token = "".join(words) if len(words) == 1 else None
        like = part if len(part) >= TRIGRAM_MIN else None
        if token is None and like is None:
            continue  # punctuation or a fragment too short to search by
        digits = re.sub(r"\D", "", part)
        phone = digits if len(digits) >= TRIGRAM_MIN and digits == part else None
        terms.append(Term(any_token=token, like=like, phone=phone))
    return terms


def _bigrams(run: str) -> list[str]:
    return [run[i : i + 2] for i in range(len(run) - 1)]
