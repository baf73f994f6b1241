"""The residents and service-request pages: roles, CSRF, editing, contacts, CSV import."""

from __future__ import annotations

import html
import io
import json
import re

import pytest

from data import residents, service_requests
from ivr import importer
from tests.browser import screenshot
from tests.conftest import CHEN, SAMPLES, SHORTCUT
from tests.test_admin import login, token
from tests.test_admin_browser import sign_in

CARD_LINK = re.compile(r'href="/residents/[0-9]+"')
GOOD_EDIT = {
    "name": "陈国强",
    "gender": "M",
    "birth_date": "1941-03-02",
    "community": "鼓楼区温泉街道",
    "address": "福州市鼓楼区温泉路14号1栋101",
    "category": "低保对象",
    "medical_notes": "高血压、糖尿病",
    "dialect": "Fuzhou",
    "lives_alone": "1",
    "free_minutes": "300",
}


def text(response) -> str:
    """The page as text, entities decoded (the importer's messages quote cells)."""
    return html.unescape(response.get_data(as_text=True))


def signed_in(client, name: str) -> str:
    """Sign ``name`` in; return a CSRF token of the session."""
    login(client, name)
    return token(client.get("/").get_data(as_text=True))


def actions(db) -> list[str]:
    return [row["action"] for row in db.query("SELECT action FROM audit_log ORDER BY id")]


def audited(db, action: str) -> list[dict]:
    sql = "SELECT detail FROM audit_log WHERE action = ? ORDER BY id"
    return [json.loads(row["detail"]) for row in db.query(sql, [action])]


def upload(client, csrf: str, kind: str, name: str, content: bytes | None = None):
    data = content if content is not None else (SAMPLES / name).read_bytes()
    form = {"kind": kind, "file": (io.BytesIO(data), name), "csrf_token": csrf}
    return client.post("/residents/import", data=form, content_type="multipart/form-data")


def snapshot(db) -> tuple:
    """Everything the write routes could change."""
    return (
        list(db.query("SELECT * FROM residents ORDER BY id")),
        list(db.query("SELECT * FROM contacts ORDER BY id")),
        list(db.query("SELECT * FROM service_requests ORDER BY id")),
    )


def write_requests(rid: int, request_id: int, csrf: str) -> list[tuple[str, dict]]:
    """Every write route of the two blueprints with a valid form."""
    contact = {"name": "陈刚", "relation": "侄子", "phone": "13900139009", "csrf_token": csrf}
    return [
        (f"/residents/{rid}/edit", {**GOOD_EDIT, "csrf_token": csrf}),
        (f"/residents/{rid}/contacts/3", contact),
        (f"/residents/{rid}/contacts/1", {"name": "", "phone": "", "csrf_token": csrf}),
        (f"/residents/{rid}/deactivate", {"csrf_token": csrf}),
        (f"/residents/{rid}/reactivate", {"csrf_token": csrf}),
        (f"/requests/{request_id}/status", {"status": "done", "csrf_token": csrf}),
    ]


@pytest.fixture
def request_id(db, chen) -> int:
    """A life-care request of 陈国强's, taken on no particular call."""
    return service_requests.create(
        db, kind="life_care", call_sid=None, resident_id=chen["id"], phone=chen["phone"]
    )


def test_pages_need_a_login(client, staff, chen):
    for url in ("/residents", f"/residents/{chen['id']}", "/residents/import", "/requests"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_operators_get_403_and_change_nothing(client, staff, chen, request_id, db):
    csrf = signed_in(client, "xiao")
    rid = chen["id"]
    for url in ("/residents", f"/residents/{rid}", f"/residents/{rid}/edit", "/requests"):
        assert client.get(url).status_code == 403, url
    assert client.get("/residents/import").status_code == 403
    before = snapshot(db)
    for url, form in write_requests(rid, request_id, csrf):
        assert client.post(url, data=form).status_code == 403, url
    assert upload(client, csrf, "residents", "residents.csv").status_code == 403
    assert snapshot(db) == before
    assert actions(db) == ["login"]


def test_supervisors_view_but_do_not_edit_residents(client, staff, chen, request_id, db):
    csrf = signed_in(client, "li")
    rid = chen["id"]
    index = client.get("/residents")
    assert index.status_code == 200 and "陈国强" in text(index)
    card = client.get(f"/residents/{rid}")
    assert card.status_code == 200 and "福州市鼓楼区温泉路12号3栋201" in text(card)
    assert "编辑资料" not in text(card) and "停用服务" not in text(card)
    assert client.get("/requests").status_code == 200
    assert client.get(f"/residents/{rid}/edit").status_code == 403
    assert client.get("/residents/import").status_code == 403
    before = snapshot(db)
    resident_writes = [w for w in write_requests(rid, request_id, csrf) if "/residents" in w[0]]
    for url, form in resident_writes:
        assert client.post(url, data=form).status_code == 403, url
    assert upload(client, csrf, "residents", "residents.csv").status_code == 403
    assert snapshot(db) == before


def test_admins_can_do_everything(client, staff, chen, request_id, db):
    csrf = signed_in(client, "wang")
    rid = chen["id"]
    for url in ("/residents", f"/residents/{rid}", f"/residents/{rid}/edit", "/requests"):
        assert client.get(url).status_code == 200, url
    assert client.get("/residents/import").status_code == 200
    for url, form in write_requests(rid, request_id, csrf):
        assert client.post(url, data=form).status_code == 302, url
    assert residents.get(db, rid)["address"] == GOOD_EDIT["address"]
    assert residents.contact(db, rid, 3)["phone"] == "+8613900139009"
    assert residents.contact(db, rid, 1) is None
    assert service_requests.get(db, request_id)["status"] == "done"
    assert actions(db)[1:] == [
        "resident_edit",
        "contact_set",
        "contact_clear",
        "resident_deactivate",
        "resident_reactivate",
        "service_request_status",
    ]


def test_forms_without_csrf_token_are_refused(client, staff, chen, request_id, db):
    csrf = signed_in(client, "wang")
    before = snapshot(db)
    for url, form in write_requests(chen["id"], request_id, csrf):
        form.pop("csrf_token")
        assert client.post(url, data=form).status_code == 400, url
    assert upload(client, "", "residents", "residents.csv").status_code == 400
    assert snapshot(db) == before
    assert actions(db) == ["login"]


def test_search_by_name_phone_or_community_in_pages_of_50(client, staff, chen, db):
    for n in range(60):
        residents.upsert(
            db,
            {
                "phone": f"+86150001{n:05d}",
                "name": f"测试老人{n:02d}",
                "birth_date": "1950-01-01",
                "community": "仓山区测试社区",
                "address": "福州市仓山区测试路1号",
            },
        )
    login(client, "li")
    by_name = text(client.get("/residents?q=陈国强"))
    assert "共 <strong>1</strong> 位老人" in by_name and "鼓楼区温泉街道" in by_name
    by_phone = text(client.get("/residents?q=138 0013 8000"))
    assert "共 <strong>1</strong> 位老人" in by_phone and "陈国强" in by_phone
    by_community = text(client.get("/residents?q=测试社区"))
    assert "共 <strong>60</strong> 位老人" in by_community and "第 1 / 2 页" in by_community
    assert len(CARD_LINK.findall(by_community)) == 50 and "陈国强" not in by_community
    next_link = re.search(
        r'href="([^"]+)">下一页', client.get("/residents?q=测试社区").get_data(as_text=True)
    )
    assert next_link and "page=2" in next_link.group(1) and "q=" in next_link.group(1)
    second = text(client.get("/residents?q=测试社区&page=2"))
    assert len(CARD_LINK.findall(second)) == 10 and "测试老人59" in second
    nothing = text(client.get("/residents?q=没有这个人"))
    assert "没有找到符合条件的老人" in nothing
    assert client.get("/residents?page=abc").status_code == 200


def test_the_card_shows_everything_about_a_resident(client, staff, some_calls, request_id, db):
    login(client, "li")
    chen = residents.by_phone(db, CHEN["phone"])
    card = text(client.get(f"/residents/{chen['id']}"))
    for value in ("陈国强", "男", "1941-03-02（85岁）", "+8613800138000", "鼓楼区温泉街道"):
        assert value in card, value
    assert "福州市鼓楼区温泉路12号3栋201" in card and "高血压" in card and "<dd>福州话</dd>" in card
    # contacts by key, the son marked as emergency contact
    assert '儿子 陈明 <span class="badge emergency">紧急联系人</span>' in card
    assert "+85291234567" in card
    # his two calls (SOS and shortcut) link to their timelines; the hotline caller is someone else
    assert f'href="/calls/{some_calls["sos"].sid}"' in card
    assert f'href="/calls/{some_calls["shortcut"].sid}"' in card
    assert some_calls["hotline"].sid not in card
    assert "<td>生活照料</td>" in card and "新登记" in card
    assert client.get("/residents/99999").status_code == 404


def test_editing_saves_every_field_and_audits_the_changes(client, staff, chen, db):
    csrf = signed_in(client, "wang")
    form = {**GOOD_EDIT, "phone": "+8613999999999", "csrf_token": csrf}
    response = client.post(f"/residents/{chen['id']}/edit", data=form)
    assert response.status_code == 302
    saved = residents.get(db, chen["id"])
    assert saved["phone"] == CHEN["phone"], "the phone is not editable here"
    assert saved["address"] == GOOD_EDIT["address"] and saved["category"] == "低保对象"
    assert saved["dialect"] == "fuzhou" and saved["free_minutes"] == 300
    assert saved["medical_notes"] == "高血压、糖尿病" and saved["lives_alone"] == 1
    [entry] = audited(db, "resident_edit")
    assert entry["resident_id"] == chen["id"]
    assert entry["changes"]["address"] == [CHEN["address"], GOOD_EDIT["address"]]
    assert "name" not in entry["changes"]
    assert "已保存" in text(client.get(response.headers["Location"]))
    # an empty free-minutes box goes back to the default; unticked means not alone
    form["free_minutes"] = ""
    del form["lives_alone"]
    client.post(f"/residents/{chen['id']}/edit", data=form)
    saved = residents.get(db, chen["id"])
    assert saved["free_minutes"] is None and saved["lives_alone"] == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("birth_date", "1941-02-30", "出生日期不是有效的日期"),
        ("birth_date", "昨天", "出生日期不是有效的日期"),
        ("birth_date", "2030-01-01", "出生日期不能晚于今天"),
        ("birth_date", "", "请填写出生日期"),
        ("free_minutes", "-5", "免费分钟数只能留空"),
        ("free_minutes", "ten", "免费分钟数只能留空"),
        ("name", "  ", "请填写姓名"),
        ("address", "", "请填写地址"),
        ("category", "五保户", "请从列表中选择补贴类别"),
        ("gender", "X", "性别只能是男或女"),
    ],
)
def test_edit_errors_are_shown_in_chinese_and_nothing_is_saved(
    client, staff, chen, db, field, value, message
):
    csrf = signed_in(client, "wang")
    form = {**GOOD_EDIT, field: value, "csrf_token": csrf}
    response = client.post(f"/residents/{chen['id']}/edit", data=form)
    assert response.status_code == 400
    page = text(response)
    assert message in page and f'id="error-{field}"' in page
    assert GOOD_EDIT["address"] in page or field == "address", "the form keeps what was typed"
    assert residents.get(db, chen["id"]) == chen
    assert "resident_edit" not in actions(db)


def test_contact_slots_are_set_checked_and_cleared(client, staff, chen, db):
    csrf = signed_in(client, "wang")
    url = f"/residents/{chen['id']}/contacts"
    saved = client.post(
        f"{url}/3",
        data={
            "name": "陈刚",
            "relation": "侄子",
            "phone": "139 0013 9003",
            "emergency": "1",
            "csrf_token": csrf,
        },
    )
    assert saved.status_code == 302 and saved.headers["Location"].endswith("/edit#slot-3")
    contact = residents.contact(db, chen["id"], 3)
    assert (contact["name"], contact["phone"], contact["emergency"]) == (
        "陈刚",
        "+8613900139003",
        1,
    )
    # saving slot 1 again without the tick clears its emergency flag
    client.post(f"{url}/1", data={"name": "陈明", "phone": "13900139001", "csrf_token": csrf})
    assert residents.contact(db, chen["id"], 1)["emergency"] == 0
    before = residents.contacts(db, chen["id"])
    bad = client.post(f"{url}/2", data={"name": "陈丽", "phone": "12345", "csrf_token": csrf})
    assert bad.status_code == 400 and "电话号码“12345”无效" in text(bad)
    half = client.post(f"{url}/4", data={"name": "", "phone": "13900139004", "csrf_token": csrf})
    assert half.status_code == 400 and "姓名和电话都要填写" in text(half)
    assert client.post(f"{url}/10", data={"csrf_token": csrf}).status_code == 404
    assert residents.contacts(db, chen["id"]) == before
    cleared = client.post(f"{url}/2", data={"name": "", "phone": "", "csrf_token": csrf})
    assert cleared.status_code == 302
    assert [c["slot"] for c in residents.contacts(db, chen["id"])] == [1, 3, 5]
    assert audited(db, "contact_clear") == [{"resident_id": chen["id"], "slot": 2}]
    assert [e["slot"] for e in audited(db, "contact_set")] == [3, 1]


def test_a_deactivated_resident_is_not_recognised_on_the_shortcut_line(
    client, staff, chen, phone, db
):
    csrf = signed_in(client, "wang")
    assert "还没有开通" not in phone(CHEN["phone"], SHORTCUT).start().said
    client.post(f"/residents/{chen['id']}/deactivate", data={"csrf_token": csrf})
    assert residents.get(db, chen["id"])["active"] == 0
    assert "还没有开通" in phone(CHEN["phone"], SHORTCUT).start().said
    assert "已停用" in text(client.get(f"/residents/{chen['id']}"))
    client.post(f"/residents/{chen['id']}/reactivate", data={"csrf_token": csrf})
    assert "还没有开通" not in phone(CHEN["phone"], SHORTCUT).start().said
    assert audited(db, "resident_deactivate") == [
        {"resident_id": chen["id"], "phone": CHEN["phone"]}
    ]


def test_uploading_good_files_imports_them(client, staff, chen, db):
    csrf = signed_in(client, "wang")
    done = upload(client, csrf, "residents", "residents.csv")
    assert done.status_code == 200
    assert "新增 <strong>11</strong> 条，更新 <strong>1</strong> 条" in text(done)
    assert db["residents"].count == 12
    contacts = upload(client, csrf, "contacts", "contacts.csv")
    page = text(contacts)
    assert contacts.status_code == 200 and db["contacts"].count == 28
    # 黄伟's number in Hong Kong is accepted with a warning on its line
    assert "第11行：电话+85251234567不是大陆号码" in page
    assert [(e["kind"], e["created"], e["updated"]) for e in audited(db, "import")] == [
        ("residents", 11, 1),
        ("contacts", 25, 2),
    ]


def test_a_bad_file_lists_every_bad_line_and_imports_nothing(client, staff, chen, db):
    csrf = signed_in(client, "wang")
    before = snapshot(db)
    rejected = upload(client, csrf, "residents", "bad_residents.csv")
    assert rejected.status_code == 400
    page = text(rejected)
    with pytest.raises(importer.ImportRejected) as expected:
        importer.import_residents(db, SAMPLES / "bad_residents.csv")
    assert len(expected.value.errors) >= 5
    for error in expected.value.errors:
        assert error.zh, "every error is said in Chinese on the page"
        assert f"第{error.line}行：{error.zh}" in page
    assert f"文件中有 {len(expected.value.errors)} 处错误" in page
    assert snapshot(db) == before
    assert audited(db, "import_rejected")[0]["errors"] == len(expected.value.errors)
    # not UTF-8, and no file at all
    gbk = upload(client, csrf, "residents", "gbk.csv", "phone,name\n1,陈\n".encode("gbk"))
    assert gbk.status_code == 400 and "第2行：文件不是UTF-8编码" in text(gbk)
    form = {"kind": "residents", "csrf_token": csrf}
    empty = client.post("/residents/import", data=form, content_type="multipart/form-data")
    assert empty.status_code == 400 and "请选择导入类型和CSV文件" in text(empty)
    assert snapshot(db) == before


def test_service_requests_list_filter_and_status_changes(client, staff, some_calls, request_id, db):
    hotline = some_calls["hotline"]
    csrf = signed_in(client, "li")
    page = text(client.get("/requests"))
    assert "共 <strong>2</strong> 条" in page
    assert "陈国强" in page and "+8618600000001" in page and "未登记" in page
    assert f'href="/calls/{hotline.sid}"' in page and "2026-11-16 10:00:00" in page
    assert "<td>生活照料</td>" in page and "新登记" in page
    assert "共 <strong>0</strong> 条" in text(client.get("/requests?type=housekeeping"))
    assert "共 <strong>2</strong> 条" in text(client.get("/requests?status=new&type=life_care"))
    changed = client.post(
        f"/requests/{request_id}/status",
        data={
            "status": "assigned",
            "note": "派给温泉社区家政站",
            "next": "/requests?status=new",
            "csrf_token": csrf,
        },
    )
    assert changed.status_code == 302 and changed.headers["Location"] == "/requests?status=new"
    row = service_requests.get(db, request_id)
    assert (row["status"], row["handled_by"], row["note"]) == (
        "assigned",
        "li",
        "派给温泉社区家政站",
    )
    assert row["handled_at"] == "2026-11-16T02:00:00.000Z"
    assert "共 <strong>1</strong> 条" in text(client.get("/requests?status=new"))
    listed = text(client.get("/requests?status=assigned"))
    assert "已派单" in listed and "派给温泉社区家政站" in listed
    # an admin finishes it; the dispatch note stays
    client.post("/logout", data={"csrf_token": csrf})
    csrf = signed_in(client, "wang")
    client.post(f"/requests/{request_id}/status", data={"status": "done", "csrf_token": csrf})
    row = service_requests.get(db, request_id)
    assert (row["status"], row["handled_by"], row["note"]) == ("done", "wang", "派给温泉社区家政站")
    assert audited(db, "service_request_status") == [
        {"request_id": request_id, "old": "new", "new": "assigned", "note": "派给温泉社区家政站"},
        {"request_id": request_id, "old": "assigned", "new": "done", "note": None},
    ]
    bad = client.post(f"/requests/{request_id}/status", data={"status": "x", "csrf_token": csrf})
    assert bad.status_code == 302 and service_requests.get(db, request_id)["status"] == "done"
    away = client.post(
        f"/requests/{request_id}/status",
        data={"status": "new", "next": "https://evil.example/", "csrf_token": csrf},
    )
    assert away.headers["Location"] == "/requests"
    assert client.post("/requests/9999/status", data={"csrf_token": csrf}).status_code == 404


def test_an_admin_finds_a_resident_and_edits_the_address(browser_page, staff, chen, db):
    page = browser_page
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    sign_in(page, "wang")
    page.goto("/residents")
    page.get_by_label("姓名、电话或社区").fill("陈国强")
    page.get_by_role("button", name="查找").click()
    assert page.locator("#total").inner_text().startswith("共 1 位老人")
    page.get_by_role("link", name="陈国强").click()
    assert "1941-03-02（85岁）" in page.locator("#card").inner_text()
    assert "陈明" in page.locator("#contacts").inner_text()
    page.get_by_role("link", name="编辑资料和亲情号码").click()
    page.get_by_label("地址").fill("福州市鼓楼区温泉路14号1栋101")
    page.get_by_role("button", name="保存资料").click()
    assert "已保存" in page.locator("[role=alert]").inner_text()
    assert page.locator("#address").inner_text() == "福州市鼓楼区温泉路14号1栋101"
    screenshot(page, "resident-card-edited")
    assert residents.get(db, chen["id"])["address"] == "福州市鼓楼区温泉路14号1栋101"
    assert problems == [], "the CSP blocks nothing the pages use"
