"""CSV imports: every bad line reported, nothing written unless the whole file is good."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlite_utils
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ivr.cli
import ivr.db
import ivr.settings
from data import db as store
from data import operators, residents
from ivr.importer import (
    GENDERS,
    NO,
    SUBSIDY_CATEGORIES,
    YES,
    ImportRejected,
    RowError,
    import_contacts,
    import_operators,
    import_residents,
)

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
TODAY = date(2026, 11, 16)
RESIDENT = {
    "phone": "13800138000",
    "name": "陈国强",
    "gender": "男",
    "birth_date": "1941-03-02",
    "community": "鼓楼区温泉街道温泉社区",
    "address": "福州市鼓楼区温泉路12号3栋201",
    "category": "低保对象",
    "medical_notes": "高血压",
    "dialect": "Fuzhou",
    "lives_alone": "是",
    "free_minutes": "",
}
CONTACT = {
    "resident_phone": "13800138000",
    "slot": "1",
    "name": "陈明",
    "relation": "儿子",
    "phone": "13900139001",
    "emergency": "是",
}
OPERATOR = {"id": "op01", "name": "陈晓燕", "phone": "13800138201", "skills": "sos;fuzhou"}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    """A fresh, migrated database file."""
    conn = store.connect(tmp_path / "t.db")
    store.migrate(conn)
    yield conn
    conn.conn.close()


@pytest.fixture
def demo(db: sqlite_utils.Database) -> sqlite_utils.Database:
    """The database holding the three sample files."""
    import_residents(db, SAMPLES / "residents.csv", today=TODAY)
    import_contacts(db, SAMPLES / "contacts.csv")
    import_operators(db, SAMPLES / "operators.csv")
    return db


def csv_file(rows: list[dict[str, str]], columns: list[str] | None = None) -> io.BytesIO:
    """An uploaded-looking CSV file: a header of ``columns`` and one line per row."""
    columns = columns or list(rows[0])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([row.get(column, "") for column in columns] for row in rows)
    return io.BytesIO(out.getvalue().encode())


def counts(db: sqlite_utils.Database) -> dict[str, int]:
    """Rows in each table the imports write."""
    return {table: db[table].count for table in ("residents", "contacts", "operators")}


def snapshot(db: sqlite_utils.Database) -> list[list[dict]]:
    """Everything the imports can change, to compare before and after."""
    return [list(db.query(f"SELECT * FROM {t} ORDER BY 1")) for t in counts(db)]


def rejected(run: Callable[..., object], *args: object, **kwargs: object) -> list[str]:
    """The error lines of an import that must be rejected."""
    with pytest.raises(ImportRejected) as info:
        run(*args, **kwargs)
    return [str(error) for error in info.value.errors]


def sample_rows(name: str) -> int:
    """Data rows in a sample file."""
    return len((SAMPLES / name).read_text(encoding="utf-8-sig").splitlines()) - 1


# -- the sample files ---------------------------------------------------------------------


def test_sample_files_import(db):
    people = import_residents(db, SAMPLES / "residents.csv", today=TODAY)
    family = import_contacts(db, SAMPLES / "contacts.csv")
    staff = import_operators(db, SAMPLES / "operators.csv")
    assert (people.created, people.updated, people.warnings) == (12, 0, [])
    assert (family.created, family.updated) == (sample_rows("contacts.csv"), 0)
    assert [str(w) for w in family.warnings] == [
        "line 11: phone +85251234567 is outside mainland China: calls to it are refused"
    ]
    assert (staff.created, staff.updated, staff.warnings) == (5, 0, [])
    assert counts(db) == {"residents": 12, "contacts": sample_rows("contacts.csv"), "operators": 5}


def test_sample_residents_are_stored_normalised(demo):
    chen = residents.by_phone(demo, "+8613800138000")
    assert chen is not None
    assert (chen["name"], chen["gender"], chen["dialect"], chen["lives_alone"]) == (
        "陈国强",
        "M",
        "fuzhou",
        1,
    )
    assert residents.by_phone(demo, "+8613800138003")["birth_date"] == "1941-02-27"
    assert residents.by_phone(demo, "+8615000150012")["birth_date"] == "1950-05-14"
    assert residents.by_phone(demo, "+8613900139004")["free_minutes"] == 500
    assert [c["relation"] for c in residents.contacts(demo, chen["id"])] == ["儿子", "女儿", "邻居"]


def test_only_the_residents_sample_has_a_bom():
    assert (SAMPLES / "residents.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert not (SAMPLES / "contacts.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_bad_residents_sample_lists_every_bad_line(db):
    assert rejected(import_residents, db, SAMPLES / "bad_residents.csv", today=TODAY) == [
        "line 3: phone '12345' is not a valid phone number",
        "line 4: birth_date '1948-02-30' is not a real date",
        "line 5: category '五保户' is not a subsidy category (one of "
        + ", ".join(SUBSIDY_CATEGORIES)
        + ")",
        "line 6: phone +8613800138301 is also on line 2",
        "line 7: lives_alone 'maybe' is not yes or no (use 1/0, 是/否, yes/no, true/false or y/n)",
        "line 7: free_minutes '-5' is not a whole number of zero or more",
    ]
    assert counts(db)["residents"] == 0


# -- sources and encodings ----------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
@pytest.mark.parametrize("kind", ["str", "path", "binary", "text"])
def test_bom_or_not_from_any_kind_of_source(db, tmp_path, encoding, kind):
    path = tmp_path / "r.csv"
    path.write_bytes(csv_file([RESIDENT]).getvalue().decode().encode(encoding))
    sources = {
        "str": lambda: str(path),
        "path": lambda: path,
        "binary": lambda: path.open("rb"),
        "text": lambda: path.open(encoding="utf-8"),  # keeps the BOM as a character
    }
    source = sources[kind]()
    result = import_residents(db, source, today=TODAY)
    if hasattr(source, "close"):
        source.close()
    assert (result.created, result.updated) == (1, 0)
    assert residents.by_phone(db, "+8613800138000")["name"] == "陈国强"


def test_not_utf8_names_the_line_and_the_fix(db):
    data = csv_file([RESIDENT, {**RESIDENT, "phone": "13800138001"}]).getvalue()
    gbk = data.decode().encode("gbk")
    assert rejected(import_residents, db, io.BytesIO(gbk), today=TODAY) == [
        "line 2: the file is not UTF-8 text (in Excel, save it as 'CSV UTF-8')"
    ]


def test_blank_lines_are_skipped_but_counted_and_cells_trimmed(db):
    text = (
        "\ufeff Phone , name,birth_date ,community,address\n"
        "\n"
        " 138 0013 8000 ,  陈国强  ,1941-03-02,温泉社区,温泉路12号\n"
        " , , , , \n"
        "12345,林永福,1935-09-03,东门社区,东门路66号\n"
    )
    assert rejected(import_residents, db, io.StringIO(text), today=TODAY) == [
        "line 5: phone '12345' is not a valid phone number"
    ]
    good = text.replace("12345", "13800138002")
    assert import_residents(db, io.StringIO(good), today=TODAY).created == 2
    assert residents.by_phone(db, "+8613800138000")["name"] == "陈国强"


def test_a_cell_spanning_lines_keeps_later_line_numbers_right(db):
    text = (
        "phone,name,birth_date,community,address\n"
        '13800138000,陈国强,1941-03-02,温泉社区,"温泉路12号\n3栋201"\n'
        "13800138001,,1935-09-03,东门社区,东门路66号\n"
    )
    assert rejected(import_residents, db, io.StringIO(text), today=TODAY) == [
        "line 4: name is empty"
    ]


def test_empty_file_and_header_only(db):
    assert rejected(import_residents, db, io.BytesIO(b"\xef\xbb\xbf\n\n")) == [
        "line 1: the file is empty: it needs a header row (phone, name, birth_date, community, "
        "address, gender, category, medical_notes, dialect, lives_alone, free_minutes, care)"
    ]
    result = import_operators(db, io.StringIO("id,name,phone,skills\n"))
    assert (result.created, result.updated) == (0, 0)


def test_a_file_without_header_is_rejected(db):
    errors = rejected(import_operators, db, io.StringIO("op01,陈晓燕,13800138201,sos\n"))
    assert errors == [
        "line 1: no header row: the first line must name the columns (id, name, phone, skills)"
    ]


# -- header problems ----------------------------------------------------------------------


def test_missing_required_column(db):
    columns = [c for c in RESIDENT if c != "birth_date"]
    errors = rejected(import_residents, db, csv_file([RESIDENT], columns), today=TODAY)
    assert errors == ["line 1: missing required column birth_date"]


def test_unknown_column_is_named_not_dropped(db):
    row = {**RESIDENT, "birthdate": RESIDENT["birth_date"]}
    columns = [c for c in row if c != "birth_date"]
    errors = rejected(import_residents, db, csv_file([row], columns), today=TODAY)
    assert len(errors) == 2
    assert errors[0].startswith("line 1: unknown column 'birthdate' (the columns are phone, ")
    assert errors[1] == "line 1: missing required column birth_date"


def test_extra_column_alone_is_an_error(db):
    errors = rejected(import_operators, db, csv_file([{**OPERATOR, "备注": "夜班"}]))
    assert errors == ["line 1: unknown column '备注' (the columns are id, name, phone, skills)"]


def test_repeated_column_and_value_without_header(db):
    assert rejected(import_operators, db, io.StringIO("id,name,phone,name\n")) == [
        "line 1: column name appears twice"
    ]
    text = "id,name,phone,skills,\nop01,陈晓燕,13800138201,sos,\nop02,林志强,13900139202,sos,夜班\n"
    assert rejected(import_operators, db, io.StringIO(text)) == [
        "line 3: value '夜班' is in a column without a header"
    ]


# -- bad residents ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "cell", "message"),
    [
        ("phone", "12345", "phone '12345' is not a valid phone number"),
        ("phone", "", "phone is empty"),
        (
            "phone",
            "1.38001E+10",
            "phone '1.38001E+10' is not a valid phone number "
            "(Excel turned it into a number: format the column as text)",
        ),
        ("name", "", "name is empty"),
        ("birth_date", "1941-02-30", "birth_date '1941-02-30' is not a real date"),
        ("birth_date", "02/03/1941", "birth_date '02/03/1941' is not a date (use YYYY-MM-DD)"),
        ("birth_date", "2027-01-01", "birth_date 2027-01-01 is in the future"),
        ("birth_date", "1843-01-01", "birth_date 1843-01-01 is more than 120 years ago"),
        ("gender", "男性", "gender '男性' is not one of 男, 女, M, F, male, female"),
        ("category", "五保户", "category '五保户' is not a subsidy category (one of "),
        ("lives_alone", "maybe", "lives_alone 'maybe' is not yes or no (use 1/0, "),
        ("free_minutes", "-5", "free_minutes '-5' is not a whole number of zero or more"),
        ("free_minutes", "1.5", "free_minutes '1.5' is not a whole number of zero or more"),
        ("free_minutes", "abc", "free_minutes 'abc' is not a whole number of zero or more"),
    ],
)
def test_bad_resident_row_is_named_and_nothing_is_imported(db, column, cell, message):
    rows = [
        RESIDENT,
        {**RESIDENT, "phone": "13800138001", column: cell},
        {**RESIDENT, "phone": "13800138002"},
    ]
    errors = rejected(import_residents, db, csv_file(rows), today=TODAY)
    assert len(errors) == 1
    assert errors[0].startswith(f"line 3: {message}")
    assert counts(db)["residents"] == 0


def test_every_bad_line_and_every_problem_is_listed(db):
    rows = [
        {**RESIDENT, "phone": "12345", "gender": "x"},
        RESIDENT,
        {**RESIDENT, "phone": "13800138001", "birth_date": "soon"},
    ]
    errors = rejected(import_residents, db, csv_file(rows), today=TODAY)
    assert [e.split(":")[0] for e in errors] == ["line 2", "line 2", "line 4"]


def test_duplicate_resident_phone_names_both_lines(db):
    rows = [
        RESIDENT,
        {**RESIDENT, "phone": "13800138001"},
        {**RESIDENT, "phone": "+86 138 0013 8000"},
    ]
    assert rejected(import_residents, db, csv_file(rows), today=TODAY) == [
        "line 4: phone +8613800138000 is also on line 2"
    ]


def test_young_resident_is_imported_with_a_warning(db):
    rows = [RESIDENT, {**RESIDENT, "phone": "13800138001", "birth_date": "1970/12/01"}]
    result = import_residents(db, csv_file(rows), today=TODAY)
    assert result.created == 2
    assert result.warnings == [RowError(3, "resident is 55 years old (under 60): check birth_date")]


@pytest.mark.parametrize(
    ("column", "cells", "stored"),
    [
        ("gender", ["男", "M", "male", "Male"], "M"),
        ("gender", ["女", "f", "FEMALE"], "F"),
        ("gender", [""], None),
        ("lives_alone", ["1", "是", "YES", "true", "y"], 1),
        ("lives_alone", ["0", "否", "no", "False", "N", ""], 0),
        ("birth_date", ["1941-03-02", "1941/03/02", "1941/3/2", "1941年3月2日"], "1941-03-02"),
        ("dialect", ["MinNan", "minnan"], "minnan"),
        ("category", [""], None),
        ("free_minutes", ["0"], 0),
        ("free_minutes", [""], None),
    ],
)
def test_accepted_spellings(db, column, cells, stored):
    rows = [{**RESIDENT, "phone": f"1380013800{i}", column: cell} for i, cell in enumerate(cells)]
    import_residents(db, csv_file(rows), today=TODAY)
    assert {row[column] for row in db.query("SELECT * FROM residents")} == {stored}


# -- bad contacts -------------------------------------------------------------------------


@pytest.fixture
def chen(db: sqlite_utils.Database) -> sqlite_utils.Database:
    """The database with one resident, 13800138000."""
    import_residents(db, csv_file([RESIDENT]), today=TODAY)
    return db


@pytest.mark.parametrize(
    ("column", "cell", "message"),
    [
        (
            "resident_phone",
            "13900000000",
            "resident_phone '13900000000' is not in the database (import residents first)",
        ),
        ("resident_phone", "abc", "resident_phone 'abc' is not a valid phone number"),
        ("slot", "0", "slot '0' is not a slot from 1 to 9"),
        ("slot", "10", "slot '10' is not a slot from 1 to 9"),
        ("slot", "abc", "slot 'abc' is not a slot from 1 to 9"),
        ("slot", "", "slot is empty"),
        ("phone", "123", "phone '123' is not a valid phone number"),
        ("emergency", "紧急", "emergency '紧急' is not yes or no"),
        ("name", "", "name is empty"),
    ],
)
def test_bad_contact_row_is_named_and_nothing_is_imported(chen, column, cell, message):
    rows = [CONTACT, {**CONTACT, "slot": "2", column: cell}]
    errors = rejected(import_contacts, chen, csv_file(rows))
    assert len(errors) == 1
    assert errors[0].startswith(f"line 3: {message}")
    assert counts(chen)["contacts"] == 0


def test_duplicate_resident_and_slot_names_both_lines(chen):
    rows = [CONTACT, {**CONTACT, "slot": "2"}, {**CONTACT, "resident_phone": "+8613800138000"}]
    assert rejected(import_contacts, chen, csv_file(rows)) == [
        "line 4: resident +8613800138000 slot 1 is also on line 2"
    ]


def test_foreign_contact_is_stored_with_a_warning(chen):
    rows = [CONTACT, {**CONTACT, "slot": "2", "phone": "+852 5123 4567", "emergency": ""}]
    result = import_contacts(chen, csv_file(rows))
    assert result.warnings == [
        RowError(3, "phone +85251234567 is outside mainland China: calls to it are refused")
    ]
    resident = residents.by_phone(chen, "+8613800138000")
    stored = residents.contact(chen, resident["id"], 2)
    assert (stored["phone"], stored["emergency"]) == ("+85251234567", 0)


def test_contact_columns_relation_and_emergency_are_optional(chen):
    result = import_contacts(chen, csv_file([CONTACT], ["resident_phone", "slot", "name", "phone"]))
    assert result.created == 1
    stored = residents.contact(chen, residents.by_phone(chen, "+8613800138000")["id"], 1)
    assert (stored["relation"], stored["emergency"]) == (None, 0)


# -- operators ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "skills"),
    [
        ("sos;fuzhou;service", ["fuzhou", "service", "sos"]),
        (" SOS ; Fuzhou;;sos; ", ["fuzhou", "sos"]),
        ("service；minnan", ["minnan", "service"]),
        ("", []),
    ],
)
def test_operator_skills(db, cell, skills):
    import_operators(db, csv_file([{**OPERATOR, "skills": cell}]))
    assert operators.all_operators(db)[0]["skills"] == skills


def test_bad_and_duplicate_operators(db):
    rows = [OPERATOR, {**OPERATOR, "id": "", "phone": "1"}, {**OPERATOR, "name": "陈晓"}]
    assert rejected(import_operators, db, csv_file(rows)) == [
        "line 3: id is empty",
        "line 3: phone '1' is not a valid phone number",
        "line 4: operator id 'op01' is also on line 2",
    ]
    assert counts(db)["operators"] == 0


# -- all or nothing, and re-imports -------------------------------------------------------


def test_one_bad_row_among_good_ones_changes_nothing(demo):
    before = snapshot(demo)
    text = (SAMPLES / "residents.csv").read_text(encoding="utf-8-sig")
    renamed = text.replace("陈国强", "陈国强改").replace("何光荣", "何光")
    bad = renamed + "13800138999,新人,男,1950-13-01,温泉社区,温泉路1号,,,,,\n"
    assert rejected(import_residents, demo, io.StringIO(bad), today=TODAY) == [
        "line 14: birth_date '1950-13-01' is not a real date"
    ]
    contacts = (SAMPLES / "contacts.csv").read_text(encoding="utf-8") + "13800138000,0,某,,1,\n"
    with pytest.raises(ImportRejected):
        import_contacts(demo, io.StringIO(contacts.replace("陈明", "陈小明")))
    assert snapshot(demo) == before


def test_reimport_updates_and_counts(demo):
    text = (SAMPLES / "residents.csv").read_text(encoding="utf-8-sig").replace("陈国强", "陈国华")
    text += "13800138999,新人,女,1950-01-01,温泉社区,温泉路1号,,,,,\n"
    result = import_residents(demo, io.StringIO(text), today=TODAY)
    assert (result.created, result.updated) == (1, 12)
    assert residents.by_phone(demo, "+8613800138000")["name"] == "陈国华"
    assert counts(demo)["residents"] == 13

    again = import_contacts(demo, SAMPLES / "contacts.csv")
    assert (again.created, again.updated) == (0, sample_rows("contacts.csv"))
    staff = (SAMPLES / "operators.csv").read_text(encoding="utf-8").replace("郑敏", "郑小敏")
    result = import_operators(demo, io.StringIO(staff + "op06,新员,13800138206,service\n"))
    assert (result.created, result.updated) == (1, 5)
    assert {o["id"]: o["name"] for o in operators.all_operators(demo)}["op05"] == "郑小敏"


def test_reimport_leaves_columns_absent_from_the_file_alone(db):
    import_residents(db, csv_file([RESIDENT]), today=TODAY)
    columns = [c for c in RESIDENT if c != "dialect"]
    import_residents(db, csv_file([{**RESIDENT, "medical_notes": ""}], columns), today=TODAY)
    stored = residents.by_phone(db, "+8613800138000")
    assert (stored["dialect"], stored["medical_notes"]) == ("fuzhou", None)


def test_a_write_error_rolls_back_every_row(demo):
    before = snapshot(demo)
    demo.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON residents WHEN NEW.name = '新人' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    text = (SAMPLES / "residents.csv").read_text(encoding="utf-8-sig").replace("陈国强", "陈国华")
    text += "13800138999,新人,女,1950-01-01,温泉社区,温泉路1号,,,,,\n"
    with pytest.raises(sqlite3.IntegrityError, match="refused"):
        import_residents(demo, io.StringIO(text), today=TODAY)
    assert snapshot(demo) == before
    assert not demo.conn.in_transaction


# -- property: one corruption anywhere rejects the whole file -----------------------------

CORRUPTIONS = {
    "phone": "12345",
    "name": "",
    "birth_date": "1950-02-30",
    "community": "",
    "gender": "x",
    "category": "五保户",
    "lives_alone": "maybe",
    "free_minutes": "-1",
}


def spelled(words: frozenset[str] | dict[str, str]) -> st.SearchStrategy[str]:
    """Any accepted spelling of one of ``words``, in any letter case."""
    return st.sampled_from(sorted(words)).flatmap(
        lambda w: st.sampled_from([w, w.upper(), w.capitalize()])
    )


@st.composite
def resident_rows(draw: st.DrawFn) -> list[dict[str, str]]:
    """Valid resident rows with distinct phones, in the spellings the importer accepts."""
    numbers = draw(st.lists(st.integers(0, 99_999_999), min_size=1, max_size=8, unique=True))
    rows = []
    for number in numbers:
        born = draw(st.dates(date(1930, 1, 1), date(1962, 12, 31)))
        style = draw(
            st.sampled_from(["{:%Y-%m-%d}", "{:%Y/%m/%d}", "{0.year}年{0.month}月{0.day}日"])
        )
        rows.append(
            {
                "phone": draw(st.sampled_from(["138{:08d}", "+86138{:08d}"])).format(number),
                "name": draw(st.text("陈林黄王张李国强秀英美华", min_size=2, max_size=4)),
                "birth_date": style.format(born),
                "community": "鼓楼区温泉街道温泉社区",
                "address": "福州市鼓楼区温泉路12号",
                "gender": draw(spelled(GENDERS) | st.just("")),
                "category": draw(st.sampled_from(("", *SUBSIDY_CATEGORIES))),
                "lives_alone": draw(spelled(YES | NO) | st.just("")),
                "free_minutes": draw(st.sampled_from(["", "0", "330", "500"])),
                "dialect": draw(st.sampled_from(["", "fuzhou", "MinNan"])),
            }
        )
    return rows


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite_utils.Database]:
    """One database with the samples, shared by every example (none may change it)."""
    conn = store.connect(tmp_path_factory.mktemp("property") / "t.db")
    store.migrate(conn)
    import_residents(conn, SAMPLES / "residents.csv", today=TODAY)
    yield conn
    conn.conn.close()


@pytest.mark.parametrize("kind", [*CORRUPTIONS, "duplicate"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=resident_rows(), data=st.data())
def test_any_single_corruption_rejects_the_whole_file(loaded, kind, rows, data):
    if kind == "duplicate":
        index = data.draw(st.integers(1, len(rows)), label="row")
        rows.insert(index, {**rows[index - 1], "name": "重复"})
    else:
        index = data.draw(st.integers(0, len(rows) - 1), label="row")
        rows[index][kind] = CORRUPTIONS[kind]
    before = snapshot(loaded)
    with pytest.raises(ImportRejected) as info:
        import_residents(loaded, csv_file(rows), today=TODAY)
    assert {error.line for error in info.value.errors} == {index + 2}
    assert snapshot(loaded) == before


@settings(max_examples=30, deadline=None)
@given(rows=resident_rows())
def test_any_valid_file_imports_whole_and_reimports_as_updates(tmp_path_factory, rows):
    conn = store.connect(tmp_path_factory.mktemp("valid") / "t.db")
    store.migrate(conn)
    first = import_residents(conn, csv_file(rows), today=TODAY)
    again = import_residents(conn, csv_file(rows), today=TODAY)
    conn.conn.close()
    assert (first.created, first.updated, again.created, again.updated) == (
        len(rows),
        0,
        0,
        len(rows),
    )


# -- the Flask CLI ------------------------------------------------------------------------


@pytest.fixture
def cli_app(tmp_path: Path) -> Flask:
    """A bare Flask app with only the database and these commands."""
    app = Flask(__name__)
    app.config["SETTINGS"] = ivr.settings.Settings(database_path=str(tmp_path / "x.db"))
    ivr.db.init_app(app)
    ivr.cli.register(app)
    return app


def stored(app: Flask) -> dict[str, int]:
    """Row counts of the app's database file, read with a connection of our own."""
    conn = store.connect(app.config["SETTINGS"].database_path)
    try:
        return counts(conn)
    finally:
        conn.conn.close()


def test_cli_init_db(cli_app):
    runner = cli_app.test_cli_runner()
    first = runner.invoke(args=["init-db"])
    assert first.exit_code == 0, first.output
    path = cli_app.config["SETTINGS"].database_path
    assert first.stdout.startswith(f"database: {path}\napplied migration 0001_foundation\n")
    second = runner.invoke(args=["init-db"])
    assert second.stdout.endswith("schema already up to date\n")


def test_cli_imports_samples_into_a_fresh_file(cli_app):
    runner = cli_app.test_cli_runner()
    n = sample_rows("contacts.csv")
    results = {
        noun: runner.invoke(args=[noun, "import", str(SAMPLES / f"{noun}.csv")])
        for noun in ("residents", "contacts", "operators")
    }
    assert {noun: (r.exit_code, r.stdout) for noun, r in results.items()} == {
        "residents": (0, "imported 12 residents (12 created, 0 updated)\n"),
        "contacts": (0, f"imported {n} contacts ({n} created, 0 updated)\n"),
        "operators": (0, "imported 5 operators (5 created, 0 updated)\n"),
    }
    assert results["contacts"].stderr == (
        "warning: line 11: phone +85251234567 is outside mainland China: calls to it are refused\n"
    )
    again = runner.invoke(args=["residents", "import", str(SAMPLES / "residents.csv")])
    assert again.stdout == "imported 12 residents (0 created, 12 updated)\n"
    assert stored(cli_app) == {"residents": 12, "contacts": n, "operators": 5}


def test_cli_rejection_lists_every_line_and_exits_1(cli_app):
    runner = cli_app.test_cli_runner()
    result = runner.invoke(args=["residents", "import", str(SAMPLES / "bad_residents.csv")])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [
        "line 3",
        "line 4",
        "line 5",
        "line 6",
        "line 7",
        "line 7",
    ]
    assert lines[0] == "line 3: phone '12345' is not a valid phone number"
    assert lines[-1] == "nothing imported"
    assert result.stdout == ""
    assert stored(cli_app)["residents"] == 0


def test_cli_contacts_before_residents_is_refused(cli_app):
    result = cli_app.test_cli_runner().invoke(
        args=["contacts", "import", str(SAMPLES / "contacts.csv")]
    )
    assert result.exit_code == 1
    assert "line 2: resident_phone '13800138000' is not in the database" in result.stderr
    assert stored(cli_app)["contacts"] == 0


def test_cli_skills_are_stored_as_json(cli_app):
    result = cli_app.test_cli_runner().invoke(
        args=["operators", "import", str(SAMPLES / "operators.csv")]
    )
    assert result.exit_code == 0
    conn = store.connect(cli_app.config["SETTINGS"].database_path)
    skills = conn.execute("SELECT skills FROM operators WHERE id = 'op01'").fetchone()[0]
    conn.conn.close()
    assert json.loads(skills) == ["fuzhou", "service", "sos"]


def test_cli_write_error_exits_1_with_nothing_imported(cli_app):
    conn = store.connect(cli_app.config["SETTINGS"].database_path)
    store.migrate(conn)
    conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON operators WHEN NEW.id = 'op05' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    conn.conn.close()
    result = cli_app.test_cli_runner().invoke(
        args=["operators", "import", str(SAMPLES / "operators.csv")]
    )
    assert result.exit_code == 1
    assert result.stderr == "database error: refused\nnothing imported\n"
    assert stored(cli_app)["operators"] == 0


@pytest.mark.parametrize(
    "content",
    [
        "",
        "a,b\n1,2\n",
        "phone,name,birth_date,community,address,birthdate\n",
        "phone,name\n13800138000,陈\n",
        "phone,name,birth_date,community,address\n12345,陈,1940-02-30,,x\n",
        "phone,name,birth_date,community,address\n13800138000,陈,2050-01-01,c,a\n"
        "13800138000,李,1940-01-01,c,a\n",
    ],
)
def test_every_rejection_is_also_said_in_chinese(db, content):
    with pytest.raises(ImportRejected) as rejected:
        import_residents(db, io.BytesIO(content.encode("utf-8")))
    for error in rejected.value.errors:
        assert error.zh and not error.zh.isascii(), error


def test_residents_care_schedule_column(db, tmp_path):
    path = tmp_path / "care.csv"
    path.write_text(
        "phone,name,birth_date,community,address,lives_alone,care\n"
        "13800138001,甲,1940-01-01,东关社区,东关路1号,1,\n"
        "13800138002,乙,1940-01-01,东关社区,东关路2号,0,周一;周四\n"
        "13800138003,丙,1940-01-01,东关社区,东关路3号,1,不打\n",
        encoding="utf-8",
    )
    import_residents(db, path, today=TODAY)
    care = {r["phone"][-1]: r["care"] for r in db.query("SELECT phone, care FROM residents")}
    assert care == {"1": "daily", "2": "mon;thu", "3": "none"}
    # Re-imported without the column's value: an existing resident keeps theirs.
    path.write_text(
        "phone,name,birth_date,community,address,care\n"
        "13800138002,乙,1940-01-01,东关社区,东关路2号,\n",
        encoding="utf-8",
    )
    import_residents(db, path, today=TODAY)
    assert residents.by_phone(db, "+8613800138002")["care"] == "mon;thu"
    path.write_text(
        "phone,name,birth_date,community,address,care\n"
        "13800138004,丁,1940-01-01,东关社区,东关路4号,sometimes\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as rejected:
        import_residents(db, path, today=TODAY)
    assert "line 2: care 'sometimes' is not a care schedule" in str(rejected.value)
