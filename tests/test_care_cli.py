"""``flask care plan|run-now|report`` on the centre's app (test clock, REST stand-in)."""

from __future__ import annotations

import csv

import pytest

from data import care as care_store
from data import residents
from queue_workers import care
from tests.conftest import CHEN


@pytest.fixture
def centre_settings():
    return {"care_call_window": "10:30-11:00"}  # the test clock says 10:00 in Shanghai


def test_plan_prints_the_day_and_run_now_places_the_call_and_report_counts_it(centre, tmp_path):
    residents.upsert(centre.ctx.db, CHEN)  # lives alone: daily
    runner = centre.app.test_cli_runner()
    planned = runner.invoke(args=["care", "plan"])
    assert planned.exit_code == 0, planned.output
    assert "1 residents due, 1 newly planned" in planned.output
    assert "10:30:00  +8613800138000" in planned.output and "陈国强" in planned.output
    again = runner.invoke(args=["care", "plan"])
    assert "0 newly planned" in again.output
    now = runner.invoke(args=["care", "run-now", "--resident", "13800138000"])
    assert now.exit_code == 0 and "1 care call(s) queued" in now.output
    centre.work()
    assert [c["to"] for c in centre.standin.created_calls()] == [CHEN["phone"]]
    nobody = runner.invoke(args=["care", "run-now", "--resident", "13900000000"])
    assert nobody.exit_code == 1 and "no care call due today" in nobody.output
    day = care.today(centre.ctx).isoformat()
    (row,) = care_store.for_day(centre.ctx.db, day)
    assert row["state"] == "calling"
    out = tmp_path / "care.csv"
    report = runner.invoke(args=["care", "report", "--month", day[:7], "--csv", str(out)])
    assert report.exit_code == 0, report.output
    assert CHEN["community"] in report.output
    with out.open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    # a leading + is neutralised for spreadsheets, as in every export
    assert [(r["phone"], r["state"]) for r in rows] == [("'" + CHEN["phone"], "calling")]


def test_plan_warns_when_the_calls_cannot_fit_the_window(centre):
    db = centre.ctx.db
    for i in range(5):
        residents.upsert(db, {**CHEN, "phone": f"+86138001380{i:02d}"})
    runner = centre.app.test_cli_runner()
    tomorrow = "2026-11-17"
    centre.app.config["SETTINGS"] = centre.ctx.settings.with_overrides(
        care_call_window="09:00-09:00:02"
    )
    planned = runner.invoke(args=["care", "plan", "--date", tomorrow])
    assert planned.exit_code == 0, planned.output
    assert "past the window's end" in planned.output


@pytest.mark.parametrize(
    "args",
    [["care", "plan", "--date", "tomorrow"], ["care", "report", "--month", "2026/11"]],
)
def test_bad_arguments_are_refused_clearly(centre, args):
    result = centre.app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 2 and "is not a" in result.output
