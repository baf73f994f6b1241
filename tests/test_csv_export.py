"""CSV exports never hand Excel a formula: every export, through the real app and CLI."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from data import csv_export, ledger, residents
from tests.conftest import CHEN, HOTLINE
from tests.test_admin import login

# Written out here rather than imported, so the tests check the rule, not the module's copy.
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
HOSTILE = (
    '=HYPERLINK("http://evil","点我")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\t=1+1",
    "\r=1+1",
)
CALLS_HEADER = ["时间", "线路", "来电号码", "老人", "接线员", "结果", "状态", "时长(秒)", "CallSid"]
REPORT_HEADER = ["电话", "姓名", "月份", "免费(分钟)", "已用(分钟)", "预留(分钟)", "剩余(分钟)"]
CLI_HEADER = ["phone", "name", "month", "free_minutes", "used_minutes", "reserved_minutes"]


def parse(text: str) -> list[list[str]]:
    """Rows as a spreadsheet would split them (a CR inside a quoted cell stays in the cell)."""
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_safe(rows: list[list[str]], figures: range) -> None:
    """Text cells never start a formula; figures (a negative one too) are plain numbers."""
    for row in rows[1:]:
        for column, cell in enumerate(row):
            if column in figures and cell:
                assert not cell.startswith("'"), f"{cell!r} in {row}"
                float(cell)
            else:
                assert not cell.startswith(DANGEROUS), f"{cell!r} in {row}"


@pytest.fixture
def hostile(db) -> list[dict]:
    """One resident per dangerous first character: name, community, address, a contact."""
    made = []
    for n, text in enumerate(HOSTILE):
        resident_id = residents.upsert(
            db,
            {
                **CHEN,
                "phone": f"+86138001380{n + 10}",
                "name": text,
                "community": text + "社区",
                "address": text + "路1号",
            },
        )
        residents.upsert_contact(
            db,
            resident_id,
            {"slot": 1, "name": text + "儿子", "relation": "儿子", "phone": "+8613900139001"},
        )
        made.append(residents.get(db, resident_id))
    return made


# -- safe_cell and the writers ----------------------------------------------------------


@pytest.mark.parametrize("text", [*HOSTILE, "=1+1", "+8613800138000", "-5", "@", "\t", "\r"])
def test_text_that_would_start_a_formula_gets_a_quote(text):
    assert csv_export.safe_cell(text) == "'" + text


@pytest.mark.parametrize(
    "text", ["陈国强", "福州市鼓楼区温泉路12号", "陈=1+1", " =1+1", "'=1+1", "", "13800138000"]
)
def test_other_text_is_unchanged(text):
    assert csv_export.safe_cell(text) == text


@pytest.mark.parametrize("number", [0, 42, -5, -30, 12.5, -0.5, True])
def test_numbers_stay_numbers(number):
    assert csv_export.safe_cell(number) is number


def test_none_is_an_empty_cell_and_other_values_are_checked_as_text():
    assert csv_export.safe_cell(None) == ""
    assert csv_export.safe_cell(date(2026, 11, 16)) == "2026-11-16"

    class Sneaky:
        def __str__(self) -> str:
            return "=1+1"

    assert csv_export.safe_cell(Sneaky()) == "'=1+1"


def test_writer_neutralises_every_cell_of_every_row():
    out = io.StringIO()
    writer = csv_export.writer(out)
    writer.writerow(["=1+1", -5, None, "陈国强"])
    writer.writerows([["@SUM(A1)", 2.5], ["-2", "\t=1"]])
    assert parse(out.getvalue()) == [
        ["'=1+1", "-5", "", "陈国强"],
        ["'@SUM(A1)", "2.5"],
        ["'-2", "'\t=1"],
    ]


def test_dict_writer_neutralises_rows_and_restval_and_keeps_its_options():
    out = io.StringIO()
    writer = csv_export.dict_writer(out, ["name", "minutes"], restval="-", extrasaction="ignore")
    writer.writeheader()
    writer.writerow({"name": "+1+1", "minutes": -30, "extra": "=ignored"})
    writer.writerows([{"name": "陈国强"}, {"name": "\r=1", "minutes": 0}])
    assert parse(out.getvalue()) == [
        ["name", "minutes"],
        ["'+1+1", "-30"],
        ["陈国强", "'-"],
        ["'\r=1", "0"],
    ]
    with pytest.raises(ValueError, match="extra"):
        csv_export.dict_writer(io.StringIO(), ["name"]).writerow({"name": "x", "extra": 1})


# -- every export -------------------------------------------------------------------------


def test_call_log_csv(client, staff, some_calls, hostile, phone):
    for resident in hostile:
        call = phone(resident["phone"], HOTLINE)
        call.start()
        call.status("completed", CallDuration="42")
    login(client, "li")
    response = client.get("/calls.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.data.startswith(b"\xef\xbb\xbf"), "BOM for Excel"
    rows = parse(response.data.decode("utf-8-sig"))
    assert rows[0] == CALLS_HEADER
    assert len(rows) == 1 + 3 + len(HOSTILE)
    assert_safe(rows, figures=range(7, 8))
    names = [row[3] for row in rows[1:]]
    assert {"'" + text for text in HOSTILE} <= set(names) and "陈国强" in names
    assert "'+8613800138000" in [row[2] for row in rows[1:]]
    durations = [row[7] for row in rows[1:] if row[7]]
    assert durations == ["42"] * len(HOSTILE)


def test_quota_report_csv(client, staff, chen, hostile, db):
    ledger.adjust(
        db,
        resident_id=hostile[2]["id"],
        month="2026-11",
        seconds=-400 * 60,
        actor="wang",
        reason="更正",
        at="2026-11-16T01:00:00.000Z",
    )
    login(client, "li")
    response = client.get("/quota/report.csv?month=2026-11")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.data.startswith(b"\xef\xbb\xbf"), "BOM for Excel"
    rows = parse(response.data.decode("utf-8-sig"))
    assert rows[0] == [*REPORT_HEADER, "通话次数"]
    assert_safe(rows, figures=range(3, 8))
    by_name = {row[1]: row for row in rows[1:]}
    assert set(by_name) == {"陈国强", *("'" + text for text in HOSTILE)}
    assert by_name["'-2+3"][2:] == ["2026-11", "-70", "0", "0", "0", "0"]
    assert by_name["陈国强"][2:] == ["2026-11", "330", "0", "0", "330", "0"]
    assert all(row[0].startswith("'+86") for row in rows[1:])


def test_quota_report_cli_csv(app, chen, hostile, db, tmp_path):
    ledger.adjust(
        db,
        resident_id=hostile[2]["id"],
        month="2026-11",
        seconds=-400 * 60,
        actor="wang",
        reason="更正",
        at="2026-11-16T01:00:00.000Z",
    )
    out = tmp_path / "report.csv"
    args = ["quota", "report", "--month", "2026-11", "--csv", str(out)]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\xef\xbb\xbf"), "BOM for Excel"
    rows = parse(out.read_bytes().decode("utf-8-sig"))
    assert rows[0] == [*CLI_HEADER, "remaining_minutes", "calls"]
    assert_safe(rows, figures=range(3, 8))
    by_name = {row[1]: row for row in rows[1:]}
    assert set(by_name) == {"陈国强", *("'" + text for text in HOSTILE)}
    assert [float(cell) for cell in by_name["'-2+3"][3:]] == [-70, 0, 0, 0, 0]
    assert all(row[0].startswith("'+86") for row in rows[1:])
