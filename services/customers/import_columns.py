"""What the columns of an import file mean, and what one row's cells say (pure: no I/O).

Columns are mapped by their header, case-insensitively (and with spaces or hyphens read as
``_``: "External ID" is ``external_id``), in English or Chinese (:data:`ALIASES`), or as a
custom attribute by its key or its label. Every problem with the header is reported at once
(:func:`map_columns`): an unknown column refuses the whole file before a row is imported.

A row's cells become the ``data`` of a customer (:func:`parse_row`), checked with the same
schema as ``create_customer`` (``schemas.CustomerData``). An empty cell says nothing (an
update leaves that field alone). Several e-mail addresses or phone numbers may share a cell
(separated by ``;`` or ``,``), and several columns may give them (手机 and 电话); tags are
separated by ``;``, ``,``, ``、`` or spaces. Address columns make one address (China when no
country is given). Reasons for rejecting a row are keyed by the file's column header (what the
person fixing the file sees), ``_row`` for the row as a whole.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from marshmallow import ValidationError

from services.customers.schemas import CustomerData
from services.customers.validation import attribute_value
from shared.errors import BadRequest, CmsError, Conflict

MODES = ("create", "update", "upsert")
MATCH_ON = ("email", "phone", "external_id")

#: The fields a column can be, with the headers that name them (compared by :func:`header_key`).
ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "full name", "姓名", "客户名称", "客户姓名"),
    "kind": ("kind", "type", "类型", "客户类型"),
    "company": ("company", "公司", "公司名称", "单位"),
    "email": ("email", "emails", "e-mail", "邮箱", "电子邮件", "电子邮箱"),
    "phone": ("phone", "phones", "mobile", "手机", "手机号", "电话", "联系电话"),
    "tags": ("tags", "tag", "标签"),
    "external_id": ("external_id", "external id", "外部编号", "客户编号"),
    "source": ("source", "来源"),
    "language": ("language", "语言"),
    "preferred_channel": ("preferred_channel", "preferred channel", "首选渠道"),
    "country": ("country", "国家", "国家/地区"),
    "region": ("region", "province", "state", "省份", "地区", "省"),
    "city": ("city", "城市"),
    "district": ("district", "区县"),
    "street": ("street", "address", "地址", "街道"),
    "postal_code": ("postal_code", "postal code", "postcode", "zip", "邮编", "邮政编码"),
    "notes": ("notes", "note", "备注"),
}
#: Columns of the customer export (``GET /customers/export.csv``) that an import cannot set:
#: the record's id, owner (a manager assigns it), status and times. They are read past, so an
#: exported file imports again as it is.
IGNORED = "ignored"
EXPORT_ONLY = frozenset({"id", "owner_id", "status", "created_at", "updated_at"})
#: Fields that several columns may feed (their values add up).
MULTI_COLUMN = frozenset({"email", "phone", "tags"})
ADDRESS_PARTS = ("country", "region", "city", "district", "street", "postal_code")
ATTRIBUTE = "attribute:"
#: The key of cells beyond the last named column (``shared.tabular.rows``).
EXTRA_CELLS = ""
#: The key of reasons about the row as a whole.
ROW = "_row"

KINDS = {
    "person": "person",
    "个人": "person",
    "individual": "person",
    "company": "company",
    "公司": "company",
    "企业": "company",
    "organisation": "company",
    "organization": "company",
}
CHANNELS = {
    **{channel: channel for channel in ("email", "phone", "sms", "wechat", "mail", "none")},
    "邮件": "email",
    "电子邮件": "email",
    "邮箱": "email",
    "电话": "phone",
    "短信": "sms",
    "微信": "wechat",
    "邮寄": "mail",
    "信件": "mail",
    "无": "none",
}
LANGUAGES = {
    "中文": "zh-CN",
    "简体中文": "zh-CN",
    "汉语": "zh-CN",
    "繁体中文": "zh-TW",
    "英文": "en",
    "英语": "en",
    "日文": "ja",
    "日语": "ja",
    "韩文": "ko",
    "韩语": "ko",
}
COUNTRIES = {
    "中国": "CN",
    "中国大陆": "CN",
    "中华人民共和国": "CN",
    "香港": "HK",
    "中国香港": "HK",
    "澳门": "MO",
    "中国澳门": "MO",
    "台湾": "TW",
    "中国台湾": "TW",
    "美国": "US",
    "英国": "GB",
    "日本": "JP",
    "韩国": "KR",
    "新加坡": "SG",
    "德国": "DE",
    "法国": "FR",
    "加拿大": "CA",
    "澳大利亚": "AU",
    "马来西亚": "MY",
}
TRUE = frozenset({"true", "yes", "y", "1", "是", "对", "真"})
FALSE = frozenset({"false", "no", "n", "0", "否", "不", "假"})

#: A row's cells checked as ``create_customer``'s data, the name aside (an update needs none).
_ROW_SCHEMA = CustomerData(partial=("name",))
_SEPARATORS = re.compile(r"[;,；，]+")
_TAG_SEPARATORS = re.compile(r"[;,；，、|\s]+")
_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T]00:00(?::00)?)?$")


def header_key(text: str) -> str:
    """A header as compared: NFKC, case-folded, spaces and hyphens as ``_``."""
    return re.sub(r"[\s\-]+", "_", unicodedata.normalize("NFKC", text).casefold().strip())


_FIELD_OF = {header_key(alias): name for name, aliases in ALIASES.items() for alias in aliases}


def _aliases(name: str) -> str:
    return ", ".join(ALIASES[name])


@dataclass(frozen=True)
class ColumnMap:
    """``columns``: the file's header → field (``name``, ``email``, ``attribute:<key>``...)."""

    columns: dict[str, str]

    def columns_of(self, name: str) -> list[str]:
        return [column for column, mapped in self.columns.items() if mapped == name]

    def column_of(self, name: str) -> str:
        """The (first) column of a field; the field's name when no column gives it."""
        found = self.columns_of(name)
        return found[0] if found else name


def map_columns(
    header: Iterable[str],
    mode: str,
    match_on: str,
    definitions: Mapping[str, Mapping[str, Any]],
) -> ColumnMap:
    """The meaning of each column; :class:`BadRequest` ``{"columns": [...]}`` naming every
    problem (unknown or unnamed columns, a field named twice, a missing name or match column)."""
    by_attribute: dict[str, list[str]] = {}
    for key, definition in definitions.items():
        for alias in {header_key(key), header_key(str(definition.get("label") or ""))}:
            if alias:
                by_attribute.setdefault(alias, []).append(key)
    columns: dict[str, str] = {}
    problems: list[str] = []
    for position, column in enumerate(header, start=1):
        key = header_key(column)
        if not key:
            problems.append(f"Column {position} has no name.")
            continue
        if key in _FIELD_OF:
            columns[column] = _FIELD_OF[key]
        elif len(set(by_attribute.get(key, ()))) == 1:
            columns[column] = ATTRIBUTE + by_attribute[key][0]
        elif key in by_attribute:
            keys = ", ".join(sorted(set(by_attribute[key])))
            problems.append(f"Column {column} could be any of the attributes {keys}.")
        elif key in EXPORT_ONLY:
            columns[column] = IGNORED
        else:
            problems.append(f"Unknown column: {column}")
    seen: dict[str, list[str]] = {}
    for column, name in columns.items():
        seen.setdefault(name, []).append(column)
    for name, named in seen.items():
        if len(named) > 1 and name not in MULTI_COLUMN and name != IGNORED:
            problems.append(f"Columns {' and '.join(named)} both give {name.split(':')[-1]}.")
    if mode in ("create", "upsert") and "name" not in seen:
        problems.append(f"Creating customers needs one of the columns {_aliases('name')}.")
    if mode in ("update", "upsert") and match_on not in seen:
        problems.append(f"Matching on {match_on} needs one of the columns {_aliases(match_on)}.")
    if problems:
        raise BadRequest.for_fields({"columns": problems}, "the file's columns cannot be imported")
    return ColumnMap(columns)


# -- one row ----------------------------------------------------------------------------------


@dataclass
class ParsedRow:
    """One row read: ``data`` is what ``CustomerData`` made of the given cells (with its
    defaults: ``given`` names the fields the row really gives), ``attributes`` the attribute
    values, ``errors`` the reasons to reject it, keyed by column."""

    data: dict[str, Any] = field(default_factory=dict)
    given: set[str] = field(default_factory=set)
    address_parts: set[str] = field(default_factory=set)
    attributes: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    #: For list fields (emails, phones, tags): the column and the cell text of each entry.
    sources: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def reject(self, column: str, message: str) -> None:
        self.errors.setdefault(column, []).append(message)


def _split(text: str, separators: re.Pattern) -> list[str]:
    return [part.strip() for part in separators.split(text) if part.strip()]


def _attribute(definition: Mapping[str, Any], text: str) -> Any:
    """A cell's text as a value of the attribute's type; ``ValueError`` with a message."""
    kind = definition["type"]
    if kind == "number":
        cleaned = text.replace(",", "").replace(" ", "")
        try:
            number = float(cleaned)
        except ValueError:
            raise ValueError("Must be a number.") from None
        return attribute_value(definition, int(number) if number.is_integer() else number)
    if kind == "boolean":
        word = text.casefold()
        if word in TRUE:
            return True
        if word in FALSE:
            return False
        raise ValueError("Must be yes or no (是 or 否, true or false).")
    if kind == "date":
        match = _DATE.match(text)
        if match:
            try:
                return date(*(int(part) for part in match.groups())).isoformat()
            except ValueError:
                pass
        raise ValueError("Must be a date, like 2026-03-01.")
    if kind == "choice":
        options = definition.get("options") or []
        for option in options:
            if option.casefold() == text.casefold():
                return option
    return attribute_value(definition, text)


def parse_row(
    values: Mapping[str, str],
    columns: ColumnMap,
    definitions: Mapping[str, Mapping[str, Any]],
) -> ParsedRow:
    """Read one row's cells (``{column: text}``) and check them as ``create_customer`` would
    (a missing name is the caller's to judge: an update needs none)."""
    parsed = ParsedRow()
    raw: dict[str, Any] = {}
    address: dict[str, str] = {}
    lists: dict[str, list[tuple[str, str]]] = {"email": [], "phone": [], "tags": []}
    for column, cell in values.items():
        text = str(cell or "").strip()
        if column == EXTRA_CELLS:
            if text:
                parsed.reject(ROW, f"Cells beyond the last named column: {text}")
            continue
        name = columns.columns.get(column)
        if name is None:
            parsed.reject(ROW, f"Unknown column: {column}")
            continue
        if not text or name == IGNORED:
            continue
        if name in lists:
            separators = _TAG_SEPARATORS if name == "tags" else _SEPARATORS
            lists[name].extend((column, part) for part in _split(text, separators))
        elif name in ADDRESS_PARTS:
            address[name] = COUNTRIES.get(text, text) if name == "country" else text
        elif name.startswith(ATTRIBUTE):
            key = name[len(ATTRIBUTE) :]
            definition = definitions.get(key)
            if definition is None:  # removed since the import began: nothing to check against
                parsed.reject(column, "Unknown attribute; an admin defines attributes first.")
                continue
            try:
                parsed.attributes[key] = _attribute(definition, text)
            except ValueError as exc:
                parsed.reject(column, str(exc))
        elif name == "kind":
            kind = KINDS.get(text.casefold())
            if kind is None:
                parsed.reject(column, "Must be person or company (个人 or 公司).")
            else:
                raw["kind"] = kind
        elif name == "preferred_channel":
            channel = CHANNELS.get(text.casefold())
            if channel is None:
                parsed.reject(
                    column,
                    "Must be one of email, phone, sms, wechat, mail, none "
                    "(邮件, 电话, 短信, 微信, 邮寄, 无).",
                )
            else:
                raw["preferred_channel"] = channel
        elif name == "language":
            raw["language"] = LANGUAGES.get(text, text)
        elif name == "notes":
            raw["preferences"] = {"notes": text}
        else:
            raw[name] = text
    entries = {
        "emails": _unique(lists["email"], lambda text: text.casefold()),
        "phones": _unique(lists["phone"], lambda text: re.sub(r"[^\d+]", "", text)),
        "tags": _unique(lists["tags"], lambda text: text.casefold()),
    }
    if entries["emails"]:
        raw["emails"] = [{"address": text} for _, text in entries["emails"]]
    if entries["phones"]:
        raw["phones"] = [{"number": text} for _, text in entries["phones"]]
    if entries["tags"]:
        raw["tags"] = [text for _, text in entries["tags"]]
    if address:
        raw["addresses"] = [{"country": "CN", **address, "primary": True}]
        parsed.address_parts = set(address)
    parsed.sources = {name: found for name, found in entries.items() if found}
    parsed.given = set(raw)
    try:
        parsed.data = _ROW_SCHEMA.load(raw)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        for column, problems in reasons(messages, parsed, columns).items():
            for problem in problems:
                parsed.reject(column, problem)
    return parsed


def _unique(entries: list[tuple[str, str]], key) -> list[tuple[str, str]]:
    seen: set[str] = set()
    kept = []
    for column, text in entries:
        if key(text) not in seen:
            seen.add(key(text))
            kept.append((column, text))
    return kept


# -- reasons ----------------------------------------------------------------------------------

_LIST_FIELDS = {"emails": "email", "phones": "phone", "tags": "tags"}
_SCALARS = ("name", "kind", "company", "source", "external_id", "language", "preferred_channel")


def _flatten(messages: Any) -> list[str]:
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, Mapping):
        return [text for value in messages.values() for text in _flatten(value)]
    if isinstance(messages, list | tuple):
        return [text for value in messages for text in _flatten(value)]
    return [str(messages)]


def reasons(
    messages: Mapping[str, Any], parsed: ParsedRow, columns: ColumnMap
) -> dict[str, list[str]]:
    """Errors keyed by the fields of a customer's data (as the schemas and the command layer
    report them) → the same messages keyed by the row's columns."""
    found: dict[str, list[str]] = {}

    def add(column: str, texts: list[str]) -> None:
        found.setdefault(column, []).extend(texts)

    for name, problem in messages.items():
        if name in _LIST_FIELDS and isinstance(problem, Mapping):
            sources = parsed.sources.get(name, [])
            for index, inner in problem.items():
                try:
                    column, text = sources[int(index)]
                except (ValueError, IndexError):
                    add(columns.column_of(_LIST_FIELDS[name]), _flatten(inner))
                    continue
                add(column, [f"{text}: {message}" for message in _flatten(inner)])
        elif name in _LIST_FIELDS:
            add(columns.column_of(_LIST_FIELDS[name]), _flatten(problem))
        elif name == "addresses":
            entries = problem.values() if isinstance(problem, Mapping) else ()
            entries = [entry for entry in entries if isinstance(entry, Mapping)]
            for entry in entries:
                for part, inner in entry.items():
                    add(_address_column(str(part), parsed, columns), _flatten(inner))
            if not entries:
                add(_address_column("country", parsed, columns), _flatten(problem))
        elif name == "preferences":
            add(columns.column_of("notes"), _flatten(problem))
        elif name == "attributes" and isinstance(problem, Mapping):
            for key, inner in problem.items():
                add(columns.column_of(ATTRIBUTE + str(key)), _flatten(inner))
        elif name in _SCALARS:
            add(columns.column_of(name), _flatten(problem))
        else:
            add(ROW, _flatten(problem))
    return found


def _address_column(part: str, parsed: ParsedRow, columns: ColumnMap) -> str:
    if columns.columns_of(part):
        return columns.column_of(part)
    given = [columns.column_of(name) for name in ADDRESS_PARTS if name in parsed.address_parts]
    return given[0] if given else ROW


def error_reasons(
    exc: CmsError, parsed: ParsedRow, columns: ColumnMap, match_on: str | None = None
) -> dict[str, list[str]]:
    """What an error of the command layer says about the row, keyed by column."""
    extra = exc.extra or {}
    if isinstance(exc, Conflict) and extra.get("code") == "duplicate":
        existing = f" (customer {extra['existing_id']})" if extra.get("existing_id") else ""
        name = str(extra.get("field") or "")
        return {columns.column_of(name): [f"Already in use by another customer{existing}."]}
    if isinstance(exc.extra.get("errors"), Mapping):
        found = reasons(exc.extra["errors"], parsed, columns)
        if found:
            return found
    column = columns.column_of(match_on) if match_on else ROW
    return {column: [str(exc)]}
