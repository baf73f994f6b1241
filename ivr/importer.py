"""All-or-nothing CSV imports of residents, contacts, operators and helpers.

Each import reads the whole file, validates every row, and only then writes, in one
transaction: a file with any bad row changes nothing, and the error lists every bad line.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import zip_longest
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import sqlite_utils

from data import care, helpers, operators, residents
from data.db import utcnow
from data.residents import SUBSIDY_CATEGORIES
from ivr import phones
from ivr.settings import TIMEZONE

Source = str | os.PathLike[str] | IO[str] | IO[bytes]

# The categories of elders whose calls the government subsidises (the admin pages offer these).
ELDER_AGE = 60
# Older than this is a typo (1043 for 1943), not a resident.
MAX_AGE = 120
GENDERS = {"男": "M", "女": "F", "m": "M", "f": "F", "male": "M", "female": "F"}
YES = frozenset({"1", "是", "yes", "true", "y"})
NO = frozenset({"0", "否", "no", "false", "n"})
DATE_PATTERNS = (
    re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"),
    re.compile(r"([0-9]{4})/([0-9]{1,2})/([0-9]{1,2})"),
    re.compile(r"([0-9]{4})\s*年\s*([0-9]{1,2})\s*月\s*([0-9]{1,2})\s*日"),
)
# Excel shows a long number column as 1.38001E+10 and saves it that way.
EXCEL_NUMBER = re.compile(r"[0-9](\.[0-9]+)?E\+[0-9]+", re.IGNORECASE)
# A helper's id goes into the pages' URLs.
HELPER_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
# A helper's skills by name: the pages show these (admin/labels.py) and files may use them.
HELPER_SKILL_NAMES = {
    "life_care": "生活照料",
    "housekeeping": "家政",
    "companionship": "聊天陪伴",
    "emergency": "紧急上门",
}
# Every spelling a file may use: the code, its name, and the hotline's name 家政服务.
HELPER_SKILL_WORDS = {
    **{skill: skill for skill in helpers.SKILLS},
    **{name: skill for skill, name in HELPER_SKILL_NAMES.items()},
    "家政服务": "housekeeping",
}
# Lists in a cell are separated by ";" (or "；"); a comma there is a mistake, not a separator,
# since one would silently make "温泉社区,东门社区" one community that matches no resident.
LIST_SEPARATOR = re.compile("[;；]")
COMMA = re.compile("[,，、]")


@dataclass(frozen=True)
class RowError:
    """A problem on one line of the file (the header is line 1).

    ``message`` is English (the CLI); ``zh`` says the same in Chinese for the web pages.
    """

    line: int
    message: str
    zh: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class ImportRejected(Exception):
    """The file has bad rows, so nothing was imported; ``errors`` lists every one."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = sorted(errors, key=lambda error: error.line)
        super().__init__("\n".join(str(error) for error in self.errors))


@dataclass(frozen=True)
class ImportResult:
    """How many rows an import created and updated, and what looked odd but was accepted."""

    created: int
    updated: int
    warnings: list[RowError] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Rows imported."""
        return self.created + self.updated


@dataclass(frozen=True)
class Row:
    """One non-blank row: its first line in the file and its trimmed cells by column."""

    line: int
    cells: dict[str, str]


@dataclass(frozen=True)
class Checked:
    """Validated records ready to write, and the warnings found on the way."""

    records: list[dict[str, Any]]
    warnings: list[RowError]


class BadValue(ValueError):
    """A cell that cannot be converted; the message completes ``<column> '<cell>' ...``."""

    def __init__(self, message: str, zh: str) -> None:
        super().__init__(message)
        self.zh = zh


# Column names as the web pages say them.
COLUMN_ZH = {
    "phone": "电话",
    "name": "姓名",
    "birth_date": "出生日期",
    "community": "社区",
    "address": "地址",
    "gender": "性别",
    "category": "类别",
    "medical_notes": "病史",
    "dialect": "方言",
    "lives_alone": "是否独居",
    "care": "关怀电话",
    "free_minutes": "免费分钟数",
    "resident_phone": "老人电话",
    "slot": "快捷键",
    "relation": "关系",
    "emergency": "紧急联系人",
    "id": "编号",
    "skills": "技能",
    "communities": "服务社区",
}


@dataclass(frozen=True)
class Column:
    """How to read one column: a parser for non-empty cells and the value of an empty one."""

    parse: Callable[[str], Any]
    required: bool = False
    empty: Any = None


# -- cell parsers: each gets a trimmed, non-empty cell ------------------------------------


def parse_text(cell: str) -> str:
    """Free text, kept as written."""
    return cell


def parse_phone(cell: str) -> str:
    """A phone number as E.164 (region CN)."""
    try:
        return phones.normalize(cell)
    except phones.InvalidPhone:
        hint = " (Excel turned it into a number: format the column as text)"
        hint_zh = "（Excel把它变成了数字：请把这一列设为文本格式）"
        excel = EXCEL_NUMBER.fullmatch(cell)
        raise BadValue(
            "is not a valid phone number" + (hint if excel else ""),
            "不是有效的电话号码" + (hint_zh if excel else ""),
        ) from None


def parse_date(cell: str) -> date:
    """A date written ``YYYY-MM-DD``, ``YYYY/MM/DD`` or ``YYYY年M月D日``."""
    for pattern in DATE_PATTERNS:
        match = pattern.fullmatch(cell)
        if match:
            try:
                return date(*(int(part) for part in match.groups()))
            except ValueError:
                raise BadValue("is not a real date", "不是真实的日期") from None
    raise BadValue("is not a date (use YYYY-MM-DD)", "不是日期（请写成YYYY-MM-DD）")


def parse_gender(cell: str) -> str:
    """``M`` or ``F`` from 男/女, M/F or male/female."""
    try:
        return GENDERS[cell.lower()]
    except KeyError:
        raise BadValue("is not one of 男, 女, M, F, male, female", "只能是男或女") from None


def parse_category(cell: str) -> str:
    """One of the subsidy categories."""
    if cell not in SUBSIDY_CATEGORIES:
        listed = ", ".join(SUBSIDY_CATEGORIES)
        raise BadValue(
            f"is not a subsidy category (one of {listed})", f"不是补贴类别（{listed}之一）"
        )
    return cell


def parse_lower(cell: str) -> str:
    """Free text in lower case (dialect names are compared that way)."""
    return cell.lower()


def parse_yes_no(cell: str) -> int:
    """1 or 0 from 1/0, 是/否, yes/no, true/false, y/n."""
    word = cell.lower()
    if word in YES:
        return 1
    if word in NO:
        return 0
    raise BadValue("is not yes or no (use 1/0, 是/否, yes/no, true/false or y/n)", "请填是或否")


def parse_care(cell: str) -> str:
    """A care-call schedule: daily, none, or weekdays like mon;thu (每天, 周一;周四 too)."""
    try:
        return care.parse_schedule(cell)
    except ValueError:
        raise BadValue(
            "is not a care schedule (daily, none, or weekdays like mon;thu)",
            "不是关怀电话安排（填每天、不打，或周一;周四这样的星期）",
        ) from None


def parse_count(cell: str) -> int:
    """A whole number, zero or more."""
    if not re.fullmatch(r"[0-9]+", cell):
        raise BadValue("is not a whole number of zero or more", "不是0或正整数")
    return int(cell)


def parse_slot(cell: str) -> int:
    """A speed-dial slot, 1 to 9 (the key the resident presses)."""
    if not re.fullmatch(r"[1-9]", cell):
        raise BadValue("is not a slot from 1 to 9", "不是1到9的快捷键")
    return int(cell)


def parse_skills(cell: str) -> tuple[str, ...]:
    """Skills separated by ``;`` (or a full-width ``；``), lower-cased, without repeats."""
    parts = (part.strip().lower() for part in re.split("[;；]", cell))
    return tuple(dict.fromkeys(part for part in parts if part))


def parse_helper_id(cell: str) -> str:
    """A helper's id: letters, digits, ``-`` and ``_``, at most 32."""
    if not HELPER_ID.fullmatch(cell):
        raise BadValue(
            "may only hold letters, digits, - and _ (at most 32)",
            "只能用字母、数字、-和_，最多32位",
        )
    return cell


def parse_list(cell: str) -> tuple[str, ...]:
    """Entries separated by ``;`` (or ``；``), trimmed, without repeats; at least one."""
    parts = (part.strip() for part in LIST_SEPARATOR.split(cell))
    entries = tuple(dict.fromkeys(part for part in parts if part))
    if not entries:
        raise BadValue("names nothing", "一项也没有")
    if any(COMMA.search(entry) for entry in entries):
        raise BadValue("has a comma: separate the entries with ;", "有逗号：多项之间请用;分隔")
    return entries


def parse_helper_skills(cell: str) -> tuple[str, ...]:
    """A helper's skills separated by ``;``: codes or their Chinese names, as codes."""
    words = parse_list(cell)
    unknown = [word for word in words if word.lower() not in HELPER_SKILL_WORDS]
    if unknown:
        listed = ", ".join(helpers.SKILLS)
        names = "、".join(HELPER_SKILL_NAMES.values())
        raise BadValue(
            f"has unknown skill {', '.join(map(repr, unknown))} (use {listed} or their names)",
            f"里的“{'、'.join(unknown)}”不是技能（技能有：{names}）",
        )
    return tuple(dict.fromkeys(HELPER_SKILL_WORDS[word.lower()] for word in words))


RESIDENT_COLUMNS = {
    "phone": Column(parse_phone, required=True),
    "name": Column(parse_text, required=True),
    "birth_date": Column(parse_date, required=True),
    "community": Column(parse_text, required=True),
    "address": Column(parse_text, required=True),
    "gender": Column(parse_gender),
    "category": Column(parse_category),
    "medical_notes": Column(parse_text),
    "dialect": Column(parse_lower),
    "lives_alone": Column(parse_yes_no, empty=0),
    "free_minutes": Column(parse_count),
    # Empty: a new resident who lives alone is called daily, others not; an existing one keeps
    # theirs.
    "care": Column(parse_care),
}
CONTACT_COLUMNS = {
    "resident_phone": Column(parse_phone, required=True),
    "slot": Column(parse_slot, required=True),
    "name": Column(parse_text, required=True),
    "phone": Column(parse_phone, required=True),
    "relation": Column(parse_text),
    "emergency": Column(parse_yes_no, empty=0),
}
OPERATOR_COLUMNS = {
    "id": Column(parse_text, required=True),
    "name": Column(parse_text, required=True),
    "phone": Column(parse_phone, required=True),
    "skills": Column(parse_skills, empty=()),
}
HELPER_COLUMNS = {
    "id": Column(parse_helper_id, required=True),
    "name": Column(parse_text, required=True),
    "phone": Column(parse_phone, required=True),
    "communities": Column(parse_list, required=True),
    "skills": Column(parse_helper_skills, required=True),
}


# -- reading the file ---------------------------------------------------------------------


def read_rows(source: Source, columns: Mapping[str, Column]) -> list[Row]:
    """The file's rows keyed by column; raise ImportRejected for a bad file or header."""
    lines = _numbered(_read_text(source))
    header_line, header = next(lines, (1, []))
    names = _check_header(header_line, header, columns)
    rows, errors = [], []
    for line, cells in lines:
        # A short row (some tools drop trailing empty cells) reads as empty cells.
        pairs = list(zip_longest(names, cells, fillvalue=""))
        stray = [cell for name, cell in pairs if not name and cell]
        if stray:
            errors.append(
                RowError(
                    line,
                    f"value {stray[0]!r} is in a column without a header",
                    f"“{stray[0]}”所在的列没有列名",
                )
            )
        rows.append(Row(line, {name: cell for name, cell in pairs if name}))
    if errors:
        raise ImportRejected(errors)
    return rows


def _read_text(source: Source) -> str:
    if isinstance(source, str | os.PathLike):
        content: str | bytes = Path(source).read_bytes()
    else:
        content = source.read()
    if isinstance(content, str):
        return content.removeprefix("\ufeff")
    try:
        # Excel's "CSV UTF-8" starts with a byte order mark; utf-8-sig drops it.
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        message = "the file is not UTF-8 text (in Excel, save it as 'CSV UTF-8')"
        zh = "文件不是UTF-8编码（在Excel里请另存为“CSV UTF-8”）"
        raise ImportRejected([RowError(line, message, zh)]) from None


def _numbered(text: str) -> Iterator[tuple[int, list[str]]]:
    """Non-blank rows with trimmed cells and the line each starts on (a cell may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    line = 0
    try:
        for cells in reader:
            start, line = line + 1, reader.line_num
            trimmed = [cell.strip() for cell in cells]
            if any(trimmed):
                yield start, trimmed
    except csv.Error as exc:
        raise ImportRejected(
            [RowError(line + 1, f"not valid CSV: {exc}", "不是有效的CSV")]
        ) from None


def _check_header(line: int, header: list[str], columns: Mapping[str, Column]) -> list[str]:
    names = [name.lower() for name in header]
    known = ", ".join(columns)
    if not header:
        raise ImportRejected(
            [
                RowError(
                    line,
                    f"the file is empty: it needs a header row ({known})",
                    f"文件是空的：第一行要写列名（{known}）",
                )
            ]
        )
    if not any(name in columns for name in names):
        message = f"no header row: the first line must name the columns ({known})"
        raise ImportRejected([RowError(line, message, f"没有列名：第一行要写列名（{known}）")])
    errors = []
    unknown = [raw for raw, name in zip(header, names, strict=True) if name and name not in columns]
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        errors.append(
            RowError(
                line,
                f"unknown column {listed} (the columns are {known})",
                f"不认识的列 {listed}（列名应为 {known}）",
            )
        )
    missing = [name for name, column in columns.items() if column.required and name not in names]
    if missing:
        errors.append(
            RowError(
                line,
                "missing required column " + ", ".join(missing),
                "缺少必需的列 " + ", ".join(missing),
            )
        )
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        errors.append(
            RowError(
                line,
                "column " + ", ".join(repeated) + " appears twice",
                "列 " + ", ".join(repeated) + " 出现了两次",
            )
        )
    if errors:
        raise ImportRejected(errors)
    return names


# -- validation: rows to records, no database writes --------------------------------------


@dataclass
class _Parsed:
    row: Row
    values: dict[str, Any]


def _parse(rows: list[Row], columns: Mapping[str, Column]) -> tuple[list[_Parsed], list[RowError]]:
    """Convert every cell; a cell that fails is left out of ``values`` and reported."""
    parsed, errors = [], []
    for row in rows:
        values = {}
        for name, cell in row.cells.items():
            column = columns[name]
            if not cell:
                if column.required:
                    zh = f"{COLUMN_ZH.get(name, name)}没有填"
                    errors.append(RowError(row.line, f"{name} is empty", zh))
                else:
                    values[name] = column.empty
                continue
            try:
                values[name] = column.parse(cell)
            except BadValue as exc:
                zh = f"{COLUMN_ZH.get(name, name)}“{cell}”{exc.zh}"
                errors.append(RowError(row.line, f"{name} {cell!r} {exc}", zh))
        parsed.append(_Parsed(row, values))
    return parsed, errors


def _duplicates(
    parsed: list[_Parsed],
    key: Callable[[dict[str, Any]], Any],
    describe: Callable[[Any], str],
    describe_zh: Callable[[Any], str],
) -> list[RowError]:
    """An error on each row whose key an earlier row of the file already has."""
    first: dict[Any, int] = {}
    errors = []
    for item in parsed:
        value = key(item.values)
        if value is None:
            continue
        if value in first:
            message = f"{describe(value)} is also on line {first[value]}"
            zh = f"{describe_zh(value)}在第{first[value]}行已经出现"
            errors.append(RowError(item.row.line, message, zh))
        else:
            first[value] = item.row.line
    return errors


def local_today() -> date:
    """Today's date where the residents live."""
    return datetime.now(ZoneInfo(TIMEZONE)).date()


def age(born: date, on: date) -> int:
    """Age in whole years on a given day."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def validate_residents(rows: list[Row], today: date) -> Checked:
    """Resident records from rows, or ImportRejected listing every bad line."""
    parsed, errors = _parse(rows, RESIDENT_COLUMNS)
    warnings = []
    for item in parsed:
        if item.values.get("care") is None:
            item.values.pop("care", None)  # the resident's default, or what they have now
        born, line = item.values.get("birth_date"), item.row.line
        if born is None:
            continue
        item.values["birth_date"] = born.isoformat()
        years = age(born, today)
        if born > today:
            errors.append(
                RowError(line, f"birth_date {born} is in the future", f"出生日期{born}在将来")
            )
        elif years > MAX_AGE:
            errors.append(
                RowError(
                    line,
                    f"birth_date {born} is more than {MAX_AGE} years ago",
                    f"出生日期{born}超过{MAX_AGE}年前",
                )
            )
        elif years < ELDER_AGE:
            message = f"resident is {years} years old (under {ELDER_AGE}): check birth_date"
            zh = f"老人{years}岁（不到{ELDER_AGE}岁）：请核对出生日期"
            warnings.append(RowError(line, message, zh))
    errors += _duplicates(
        parsed, lambda values: values.get("phone"), "phone {}".format, "电话{}".format
    )
    return _checked(parsed, errors, warnings)


def validate_contacts(rows: list[Row], resident_ids: Mapping[str, int]) -> Checked:
    """Contact records (with ``resident_id``) from rows, or ImportRejected."""
    parsed, errors = _parse(rows, CONTACT_COLUMNS)
    warnings = []
    for item in parsed:
        line, values = item.row.line, item.values
        owner = values.get("resident_phone")
        if owner in resident_ids:
            values["resident_id"] = resident_ids[owner]
        elif owner is not None:
            cell = item.row.cells["resident_phone"]
            message = f"resident_phone {cell!r} is not in the database (import residents first)"
            zh = f"老人电话“{cell}”还没有登记（请先导入老人名单）"
            errors.append(RowError(line, message, zh))
        if "phone" in values and not phones.is_mainland(values["phone"]):
            message = f"phone {values['phone']} is outside mainland China: calls to it are refused"
            zh = f"电话{values['phone']}不是大陆号码：亲情电话不会接通它"
            warnings.append(RowError(line, message, zh))

    def slot_key(values: dict[str, Any]) -> tuple[str, int] | None:
        if values.get("resident_phone") is None or values.get("slot") is None:
            return None
        return values["resident_phone"], values["slot"]

    errors += _duplicates(
        parsed, slot_key, "resident {0[0]} slot {0[1]}".format, "老人{0[0]}的{0[1]}号键".format
    )
    return _checked(parsed, errors, warnings)


def validate_operators(rows: list[Row]) -> Checked:
    """Operator records from rows, or ImportRejected."""
    parsed, errors = _parse(rows, OPERATOR_COLUMNS)
    errors += _duplicates(
        parsed, lambda values: values.get("id"), "operator id {!r}".format, "接线员编号{}".format
    )
    return _checked(parsed, errors, [])


def validate_helpers(rows: list[Row], phone_owners: Mapping[str, str]) -> Checked:
    """Helper records from rows, or ImportRejected; ``phone_owners`` maps stored phones to ids.

    A phone belongs to one helper: the helpers' line knows who is calling by the number.
    """
    parsed, errors = _parse(rows, HELPER_COLUMNS)
    for item in parsed:
        phone, helper_id = item.values.get("phone"), item.values.get("id")
        owner = phone_owners.get(phone) if phone else None
        if owner is not None and helper_id is not None and owner != helper_id:
            message = f"phone {phone} belongs to helper {owner!r} in the database"
            zh = f"电话{phone}已经是助老员{owner}的号码"
            errors.append(RowError(item.row.line, message, zh))
    errors += _duplicates(
        parsed, lambda values: values.get("id"), "helper id {!r}".format, "助老员编号{}".format
    )
    errors += _duplicates(
        parsed, lambda values: values.get("phone"), "phone {}".format, "电话{}".format
    )
    return _checked(parsed, errors, [])


def _checked(parsed: list[_Parsed], errors: list[RowError], warnings: list[RowError]) -> Checked:
    if errors:
        raise ImportRejected(errors)
    return Checked([item.values for item in parsed], sorted(warnings, key=lambda w: w.line))


# -- writing: one transaction per file ----------------------------------------------------


def _write(
    db: sqlite_utils.Database,
    checked: Checked,
    existing: Callable[[], Collection[Any]],
    key: Callable[[dict[str, Any]], Any],
    upsert: Callable[[dict[str, Any]], object],
) -> ImportResult:
    """Upsert every record in one transaction: an error on any row rolls back them all."""
    with db.atomic():
        # Counted inside the transaction so that a concurrent import cannot skew them.
        known = existing()
        created = sum(key(record) not in known for record in checked.records)
        for record in checked.records:
            upsert(record)
    return ImportResult(created, len(checked.records) - created, checked.warnings)


def import_residents(
    db: sqlite_utils.Database, source: Source, *, today: date | None = None
) -> ImportResult:
    """Import residents from CSV, matched by phone; all rows or none."""
    checked = validate_residents(read_rows(source, RESIDENT_COLUMNS), today or local_today())
    at = utcnow()
    return _write(
        db,
        checked,
        lambda: residents.id_by_phone(db),
        lambda record: record["phone"],
        lambda record: residents.upsert(db, record, at),
    )


def import_contacts(db: sqlite_utils.Database, source: Source) -> ImportResult:
    """Import speed-dial contacts of residents already in the database; all rows or none."""
    checked = validate_contacts(read_rows(source, CONTACT_COLUMNS), residents.id_by_phone(db))

    def existing() -> set[tuple[int, int]]:
        owners = {record["resident_id"] for record in checked.records}
        return {(rid, c["slot"]) for rid in owners for c in residents.contacts(db, rid)}

    return _write(
        db,
        checked,
        existing,
        lambda record: (record["resident_id"], record["slot"]),
        lambda record: residents.upsert_contact(db, record["resident_id"], record),
    )


def import_operators(db: sqlite_utils.Database, source: Source) -> ImportResult:
    """Import operators, matched by id; all rows or none."""
    checked = validate_operators(read_rows(source, OPERATOR_COLUMNS))
    return _write(
        db,
        checked,
        lambda: {operator["id"] for operator in operators.all_operators(db)},
        lambda record: record["id"],
        lambda record: operators.upsert(db, record),
    )


def import_helpers(db: sqlite_utils.Database, source: Source) -> ImportResult:
    """Import helpers (助老员), matched by id; all rows or none."""
    checked = validate_helpers(read_rows(source, HELPER_COLUMNS), helpers.id_by_phone(db))
    at = utcnow()
    return _write(
        db,
        checked,
        lambda: set(helpers.id_by_phone(db).values()),
        lambda record: record["id"],
        lambda record: helpers.upsert(db, record, at),
    )
