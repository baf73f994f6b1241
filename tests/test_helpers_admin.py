"""The helpers' roster (助老员): CSV import, the ``helpers import`` command, the admin pages."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlite_utils
from flask import Flask

import ivr.cli
import ivr.db
import ivr.settings
from admin import labels
from data import db as store
from data import helpers
from ivr import demo, importer
from ivr.importer import ImportRejected, import_helpers, import_residents
from tests.conftest import SAMPLES
from tests.test_admin_accounts import audit_actions, signed_in, text
from tests.test_labels import page_codes

TODAY = date(2026, 11, 16)
HEADER = ["id", "name", "phone", "communities", "skills"]
WENQUAN = "鼓楼区温泉街道温泉社区"
DONGMEN = "鼓楼区温泉街道东门社区"
HELPER = {
    "id": "h09",
    "name": "张秀兰",
    "phone": "137 0013 0109",
    "communities": f"{WENQUAN};{DONGMEN}",
    "skills": "life_care;emergency",
}
FORM = {**HELPER, "skills": ["life_care", "emergency"]}


@pytest.fixture
def fresh_db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    """A migrated database file of its own, without the app."""
    conn = store.connect(tmp_path / "roster.db")
    store.migrate(conn)
    yield conn
    conn.conn.close()


def csv_file(*rows: dict[str, str]) -> io.BytesIO:
    """An uploaded-looking helpers CSV."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows([row.get(column, "") for column in HEADER] for row in rows)
    return io.BytesIO(out.getvalue().encode())


def roster(db: sqlite_utils.Database) -> list[dict]:
    """Everything an import or a page can change about helpers."""
    return list(db.query("SELECT * FROM helpers ORDER BY id"))


def sample_communities() -> set[str]:
    with (SAMPLES / "residents.csv").open(encoding="utf-8-sig", newline="") as file:
        return {row["community"] for row in csv.DictReader(file)}


def sample_phones(name: str, *columns: str) -> set[str]:
    with (SAMPLES / name).open(encoding="utf-8-sig", newline="") as file:
        return {importer.parse_phone(row[c]) for row in csv.DictReader(file) for c in columns}


# -- the import -----------------------------------------------------------------------------


def test_the_sample_roster_covers_every_community_for_every_skill(fresh_db):
    import_residents(fresh_db, SAMPLES / "residents.csv", today=TODAY)
    result = import_helpers(fresh_db, SAMPLES / "helpers.csv")
    assert (result.created, result.updated, result.warnings) == (6, 0, [])
    for community in sample_communities():
        for skill in helpers.SKILLS:
            assert helpers.candidates(fresh_db, community, skill, set()), (community, skill)
    numbers = {h["phone"] for h in helpers.all_helpers(fresh_db)}
    assert all(phone.startswith("+861370013") for phone in numbers)
    others = (
        sample_phones("residents.csv", "phone")
        | sample_phones("contacts.csv", "resident_phone", "phone")
        | sample_phones("operators.csv", "phone")
        | set(demo.DEMO_NUMBERS.values())
    )
    assert not numbers & others


def test_the_demo_seed_loads_the_helpers(fresh_db):
    assert demo.seed(fresh_db)["helpers"].created == 6
    h01 = helpers.get(fresh_db, "h01")
    assert (h01["phone"], h01["skills"], h01["active"]) == (
        "+8613700130101",
        ["companionship", "life_care"],
        1,
    )
    assert WENQUAN in h01["communities"]


def test_reimport_updates_but_does_not_bring_back_a_deactivated_helper(fresh_db):
    import_helpers(fresh_db, SAMPLES / "helpers.csv")
    helpers.set_active(fresh_db, "h02", False, "2026-11-16T02:00:00.000Z")
    sample = (SAMPLES / "helpers.csv").read_text(encoding="utf-8")
    changed = sample.replace("陈建国", "陈建华").replace("housekeeping;emergency", "emergency")
    changed += f"h07,新来的,13700130107,{DONGMEN},聊天陪伴\n"
    result = import_helpers(fresh_db, io.StringIO(changed))
    assert (result.created, result.updated) == (1, 6)
    h02 = helpers.get(fresh_db, "h02")
    assert (h02["name"], h02["skills"], h02["active"]) == ("陈建华", ["emergency"], 0)
    assert helpers.get(fresh_db, "h07")["skills"] == ["companionship"]
    assert len(roster(fresh_db)) == 7


@pytest.mark.parametrize(
    ("communities", "skills", "stored_communities", "stored_skills"),
    [
        (
            f"{WENQUAN}；{DONGMEN};;{WENQUAN}; ",
            "Life_Care；紧急上门",
            [WENQUAN, DONGMEN],
            ["emergency", "life_care"],
        ),
        (
            WENQUAN,
            "生活照料;家政;聊天陪伴;紧急上门",
            [WENQUAN],
            ["companionship", "emergency", "housekeeping", "life_care"],
        ),
        (WENQUAN, "家政服务;housekeeping", [WENQUAN], ["housekeeping"]),
    ],
)
def test_list_spellings(fresh_db, communities, skills, stored_communities, stored_skills):
    import_helpers(fresh_db, csv_file({**HELPER, "communities": communities, "skills": skills}))
    stored = helpers.get(fresh_db, "h09")
    assert (stored["communities"], stored["skills"]) == (stored_communities, stored_skills)


def test_every_skill_name_on_the_pages_is_accepted_in_a_file():
    assert list(labels.HELPER_SKILLS) == list(helpers.SKILLS)
    names = ";".join(labels.HELPER_SKILLS.values())
    assert importer.parse_helper_skills(names) == helpers.SKILLS


def test_a_bad_file_names_every_bad_line_and_imports_nothing(fresh_db):
    helpers.upsert(
        fresh_db,
        {"id": "h01", "name": "林秀英", "phone": "+8613700130101", "communities": [WENQUAN]},
    )
    before = roster(fresh_db)
    rows = [
        HELPER,
        {**HELPER, "id": "h10", "phone": "12345"},
        {**HELPER, "id": "h11", "phone": "13700130111", "skills": "life_care;sos"},
        {**HELPER, "id": "h12", "phone": "13700130112", "communities": " ; "},
        {**HELPER, "id": "h13", "phone": "13700130113", "communities": f"{WENQUAN},{DONGMEN}"},
        {**HELPER, "phone": "13700130114"},
        {**HELPER, "id": "h15"},
        {**HELPER, "id": "h16", "phone": "13700130101"},
        {**HELPER, "id": "h 17", "phone": "13700130117", "skills": ""},
    ]
    with pytest.raises(ImportRejected) as info:
        import_helpers(fresh_db, csv_file(*rows))
    assert [str(error) for error in info.value.errors] == [
        "line 3: phone '12345' is not a valid phone number",
        "line 4: skills 'life_care;sos' has unknown skill 'sos' "
        "(use life_care, housekeeping, companionship, emergency or their names)",
        "line 5: communities ';' names nothing",
        f"line 6: communities '{WENQUAN},{DONGMEN}' has a comma: separate the entries with ;",
        "line 7: helper id 'h09' is also on line 2",
        "line 8: phone +8613700130109 is also on line 2",
        "line 9: phone +8613700130101 belongs to helper 'h01' in the database",
        "line 10: id 'h 17' may only hold letters, digits, - and _ (at most 32)",
        "line 10: skills is empty",
    ]
    zh = [error.zh for error in info.value.errors]
    assert (
        zh[1]
        == "技能“life_care;sos”里的“sos”不是技能（技能有：生活照料、家政、聊天陪伴、紧急上门）"
    )
    assert zh[6] == "电话+8613700130101已经是助老员h01的号码"
    assert roster(fresh_db) == before


# -- the command line ---------------------------------------------------------------------


@pytest.fixture
def cli_app(tmp_path: Path) -> Flask:
    """A bare Flask app with only the database and the commands."""
    app = Flask(__name__)
    app.config["SETTINGS"] = ivr.settings.Settings(database_path=str(tmp_path / "x.db"))
    ivr.db.init_app(app)
    ivr.cli.register(app)
    return app


def test_cli_helpers_import(cli_app, tmp_path):
    runner = cli_app.test_cli_runner()
    sample = str(SAMPLES / "helpers.csv")
    first = runner.invoke(args=["helpers", "import", sample])
    assert (first.exit_code, first.stdout) == (0, "imported 6 helpers (6 created, 0 updated)\n")
    again = runner.invoke(args=["helpers", "import", sample])
    assert again.stdout == "imported 6 helpers (0 created, 6 updated)\n"
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_file(HELPER, {**HELPER, "id": "h01"}).getvalue())
    refused = runner.invoke(args=["helpers", "import", str(bad)])
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.stderr == "line 3: phone +8613700130109 is also on line 2\nnothing imported\n"
    conn = store.connect(cli_app.config["SETTINGS"].database_path)
    try:
        assert conn["helpers"].count == 6
    finally:
        conn.conn.close()


# -- the pages ----------------------------------------------------------------------------


@pytest.fixture
def roster_db(db, staff):
    """The sample roster, and h01 busy with one accepted task."""
    import_helpers(db, SAMPLES / "helpers.csv")
    at = "2026-11-16T01:00:00.000Z"
    db["tasks"].insert(
        {
            "need": "life_care",
            "community": WENQUAN,
            "priority": "normal",
            "source": "operator",
            "state": "accepted",
            "helper_id": "h01",
            "created_at": at,
            "accept_by": at,
            "due_at": at,
            "updated_at": at,
        }
    )
    return db


def upload(client, csrf: str, content: bytes, name: str = "helpers.csv"):
    data = {"file": (io.BytesIO(content), name), "csrf_token": csrf}
    return client.post("/helpers/import", data=data)


def test_supervisors_see_the_roster_in_chinese_but_cannot_change_it(client, roster_db):
    csrf = signed_in(client, "li")
    assert page_codes(client, "/helpers", "li") == []
    page = text(client.get("/helpers"))
    row = page.split('id="helper-h01"')[1].split("</tr>")[0]
    assert "林秀英" in row and "生活照料、聊天陪伴" in row and "<td>1</td>" in row
    assert "家政、紧急上门" in page and "在岗" in page
    assert "添加助老员" not in page and "/helpers/h01/edit" not in page
    before = roster(roster_db)
    for url in ("/helpers/h01/edit", "/helpers/import"):
        assert client.get(url).status_code == 403, url
    for url, data in (
        ("/helpers", FORM),
        ("/helpers/h01/edit", {**FORM, "name": "改名"}),
        ("/helpers/h01/deactivate", {}),
        ("/helpers/h01/reactivate", {}),
    ):
        assert client.post(url, data={**data, "csrf_token": csrf}).status_code == 403, url
    response = upload(client, csrf, (SAMPLES / "helpers.csv").read_bytes())
    assert response.status_code == 403
    assert roster(roster_db) == before
    assert "import" not in audit_actions(roster_db)


def test_operators_and_visitors_do_not_see_the_roster(client, roster_db):
    assert client.get("/helpers").status_code == 302
    signed_in(client, "xiao")
    assert client.get("/helpers").status_code == 403


def test_admin_adds_edits_deactivates_and_reactivates_a_helper(client, roster_db):
    csrf = signed_in(client, "wang")
    assert page_codes(client, "/helpers", "wang") == []
    page = text(client.get("/helpers"))
    assert "添加助老员" in page and "助老员</a>" in page, "the form, and the menu link"
    response = client.post("/helpers", data={**FORM, "csrf_token": csrf})
    assert response.status_code == 303
    h09 = helpers.get(roster_db, "h09")
    assert (h09["phone"], h09["communities"], h09["skills"], h09["active"]) == (
        "+8613700130109",
        [WENQUAN, DONGMEN],
        ["emergency", "life_care"],
        1,
    )
    assert helpers.candidates(roster_db, DONGMEN, "emergency", set())

    assert page_codes(client, "/helpers/h09/edit", "wang") == []
    assert f"{WENQUAN};{DONGMEN}" in text(client.get("/helpers/h09/edit"))
    edit = {
        "name": "张秀华",
        "phone": "13700130119",
        "communities": DONGMEN,
        "skills": ["housekeeping"],
    }
    response = client.post("/helpers/h09/edit", data={**edit, "csrf_token": csrf})
    assert response.status_code == 303
    h09 = helpers.get(roster_db, "h09")
    assert (h09["name"], h09["phone"], h09["communities"], h09["skills"]) == (
        "张秀华",
        "+8613700130119",
        [DONGMEN],
        ["housekeeping"],
    )

    response = client.post("/helpers/h09/deactivate", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert "h09 张秀华：已停用，不再派给新任务。" in text(client.get("/helpers"))
    assert helpers.get(roster_db, "h09")["active"] == 0
    assert not helpers.candidates(roster_db, DONGMEN, "housekeeping", {"h02"})
    # Editing keeps a deactivated helper deactivated.
    client.post("/helpers/h09/edit", data={**edit, "name": "停用后改名", "csrf_token": csrf})
    assert helpers.get(roster_db, "h09")["active"] == 0
    response = client.post("/helpers/h09/reactivate", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert helpers.get(roster_db, "h09")["active"] == 1
    actions = audit_actions(roster_db)
    for action in ("helper_create", "helper_edit", "helper_deactivate", "helper_reactivate"):
        assert action in actions


def test_deactivating_a_busy_helper_says_their_tasks_are_still_open(client, roster_db):
    csrf = signed_in(client, "wang")
    client.post("/helpers/h01/deactivate", data={"csrf_token": csrf})
    page = text(client.get("/helpers"))
    assert "h01 林秀英：已停用，不再派给新任务；但还有 1 个未完成的任务，请另行安排。" in page
    assert helpers.by_phone(roster_db, "+8613700130101") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": "h01"}, "编号“h01”已经存在。"),
        ({"id": "h 9"}, "编号只能用字母、数字、-和_"),
        ({"phone": "12345"}, "电话号码“12345”无效"),
        ({"phone": "13700130102"}, "电话+8613700130102已经是助老员h02的号码。"),
        ({"name": ""}, "请填写姓名。"),
        ({"communities": " ; "}, "请填写服务社区"),
        ({"communities": f"{WENQUAN}，{DONGMEN}"}, "多个用;分隔"),
        ({"skills": ["sos"]}, "请至少选一项技能。"),
    ],
)
def test_helper_form_errors_in_chinese(client, roster_db, change, message):
    csrf = signed_in(client, "wang")
    before = roster(roster_db)
    response = client.post("/helpers", data={**FORM, **change, "csrf_token": csrf})
    assert response.status_code == 400 and message in text(response)
    assert roster(roster_db) == before


def test_editing_to_another_helpers_phone_is_refused(client, roster_db):
    csrf = signed_in(client, "wang")
    data = {**FORM, "phone": "13700130102", "csrf_token": csrf}
    response = client.post("/helpers/h01/edit", data=data)
    assert response.status_code == 400
    assert "电话+8613700130102已经是助老员h02的号码。" in text(response)
    keep = {**FORM, "phone": "13700130101", "csrf_token": csrf}
    assert client.post("/helpers/h01/edit", data=keep).status_code == 303


def test_unknown_helper_is_404(client, roster_db):
    csrf = signed_in(client, "wang")
    assert client.get("/helpers/h77/edit").status_code == 404
    assert client.post("/helpers/h77/deactivate", data={"csrf_token": csrf}).status_code == 404


def test_csv_upload(client, roster_db):
    csrf = signed_in(client, "wang")
    assert "导入助老员名单" in text(client.get("/helpers/import"))
    content = (
        SAMPLES / "helpers.csv"
    ).read_bytes() + "h07,新来的,13700130107,东门社区,家政\n".encode()
    response = upload(client, csrf, content)
    assert response.status_code == 200
    assert "新增 <strong>1</strong> 位，更新 <strong>6</strong> 位" in text(response)
    assert helpers.get(roster_db, "h07")["skills"] == ["housekeeping"]
    assert "import" in audit_actions(roster_db)


def test_csv_upload_rejects_the_whole_file_in_chinese(client, roster_db):
    csrf = signed_in(client, "wang")
    before = roster(roster_db)
    bad = csv_file(
        {**HELPER, "name": "好人"},
        {**HELPER, "id": "h10", "phone": "13700130110", "skills": "做饭"},
        {**HELPER, "id": "h11", "phone": "13700130101"},
    )
    response = upload(client, csrf, bad.getvalue())
    assert response.status_code == 400
    page = text(response)
    assert "没有导入：文件中有 2 处错误" in page
    assert (
        "第3行：技能“做饭”里的“做饭”不是技能（技能有：生活照料、家政、聊天陪伴、紧急上门）" in page
    )
    assert "第4行：电话+8613700130101已经是助老员h01的号码" in page
    assert "第2行" not in page
    assert roster(roster_db) == before
    assert "import_rejected" in audit_actions(roster_db)
    assert upload(client, csrf, b"", name="").status_code == 400


def test_posts_without_csrf_token_are_refused(client, roster_db):
    signed_in(client, "wang")
    before = roster(roster_db)
    for url, data in (
        ("/helpers", FORM),
        ("/helpers/h01/edit", {**FORM, "name": "改名"}),
        ("/helpers/h01/deactivate", {}),
    ):
        assert client.post(url, data=data).status_code == 400, url
    content = (SAMPLES / "helpers.csv").read_bytes().replace("林秀英".encode(), "改名".encode())
    files = {"file": (io.BytesIO(content), "helpers.csv")}
    assert client.post("/helpers/import", data=files).status_code == 400
    assert roster(roster_db) == before


def test_a_skill_without_a_chinese_name_reads_as_unknown(client, roster_db):
    helpers.upsert(
        roster_db,
        {"id": "h20", "name": "某人", "phone": "+8613700130120", "skills": ["cooking"]},
    )
    signed_in(client, "li")
    with pytest.warns(labels.UnlabelledCode):
        page = text(client.get("/helpers"))
    assert "未知技能" in page.split('id="helper-h20"')[1].split("</tr>")[0]
