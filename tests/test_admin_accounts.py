"""Accounts and operators management: admins only, CSRF, validation, audit, switchboard."""

from __future__ import annotations

import html
import io
import json
import time

import pytest
import redis

from data import users
from ivr import queueing
from queue_workers.switchboard import OperatorState, Switchboard
from tests.conftest import SAMPLES
from tests.test_admin import login, token

NEW_PASSWORD = "a-new-secret-42"
GOOD_OPERATOR = {
    "id": "op09",
    "name": "张丽",
    "phone": "138 0013 8209",
    "skills": ["sos", "service"],
    "dialects": "Fuzhou; minnan",
}


def text(response) -> str:
    """The page as text, entities decoded."""
    return html.unescape(response.get_data(as_text=True))


def signed_in(client, name: str, address: str = "10.0.0.1") -> str:
    """Sign ``name`` in; return a CSRF token of the session."""
    assert login(client, name, address=address).status_code == 302
    return token(client.get("/account/password").get_data(as_text=True))


def audit_actions(db) -> list[str]:
    return [row["action"] for row in db["audit_log"].rows]


def snapshot(db) -> tuple:
    """Everything the pages can change."""
    return (
        list(db.query("SELECT * FROM users ORDER BY id")),
        list(db.query("SELECT * FROM operators ORDER BY id")),
    )


def account_id(db, name: str) -> int:
    return users.by_name(db, name)["id"]


def posts(db) -> list[tuple[str, dict]]:
    """Every POST route with a valid-looking body."""
    wang = account_id(db, "wang")
    good = {"name": "zhao", "role": "supervisor", "password": NEW_PASSWORD, "again": NEW_PASSWORD}
    return [
        ("/accounts", good),
        (f"/accounts/{wang}/role", {"role": "operator", "operator_id": "op02"}),
        (f"/accounts/{wang}/password", {"password": NEW_PASSWORD, "again": NEW_PASSWORD}),
        (f"/accounts/{wang}/deactivate", {}),
        (f"/accounts/{wang}/reactivate", {}),
        ("/operators/manage", GOOD_OPERATOR),
        ("/operators/manage/op01/edit", {**GOOD_OPERATOR, "name": "改名"}),
        ("/operators/manage/op01/deactivate", {}),
        ("/operators/manage/op01/reactivate", {}),
    ]


@pytest.mark.parametrize("name", ["li", "xiao"])
def test_only_admins_may_use_the_pages(client, staff, db, name):
    csrf = signed_in(client, name)
    for url in ("/accounts", "/operators/manage", "/operators/manage/op01/edit"):
        assert client.get(url).status_code == 403, url
    assert client.get("/operators/manage/import").status_code == 403
    before = snapshot(db)
    for url, data in posts(db):
        assert client.post(url, data={**data, "csrf_token": csrf}).status_code == 403, url
    upload = {"file": (io.BytesIO((SAMPLES / "operators.csv").read_bytes()), "ops.csv")}
    response = client.post("/operators/manage/import", data={**upload, "csrf_token": csrf})
    assert response.status_code == 403
    assert snapshot(db) == before
    assert "account_create" not in audit_actions(db)


def test_signed_out_visitors_are_sent_to_login(client, staff):
    assert client.get("/accounts").status_code == 302
    assert client.get("/operators/manage").status_code == 302


def test_posts_without_csrf_token_are_refused(client, staff, db):
    signed_in(client, "wang")
    before = snapshot(db)
    for url, data in posts(db):
        assert client.post(url, data=data).status_code == 400, url
    assert snapshot(db) == before


def test_admin_sees_accounts_in_chinese(client, staff):
    signed_in(client, "wang")
    page = text(client.get("/accounts"))
    assert "管理员" in page and "值班主管" in page and "接线员" in page
    assert "op01 陈晓燕" in page and "style=" not in page and "<script>" not in page


def test_create_account_then_it_can_log_in(client, app, staff, db):
    csrf = signed_in(client, "wang")
    data = {"name": "zhao", "role": "operator", "operator_id": "op02"}
    data |= {"password": NEW_PASSWORD, "again": NEW_PASSWORD, "csrf_token": csrf}
    response = client.post("/accounts", data=data)
    assert response.status_code == 303
    row = users.by_name(db, "zhao")
    assert row["role"] == "operator" and row["operator_id"] == "op02" and row["active"] == 1
    entry = db["audit_log"].rows_where("action = 'account_create'").__next__()
    assert entry["actor"] == "wang" and json.loads(entry["detail"])["name"] == "zhao"
    other = app.test_client()
    assert login(other, "zhao", NEW_PASSWORD, address="10.0.0.5").status_code == 302


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"password": "short", "again": "short"}, "密码至少需要10个字符。"),
        ({"again": "something-else"}, "两次输入的密码不一致。"),
        ({"name": "li"}, "用户名“li”已经有人用了。"),
        ({"operator_id": ""}, "接线员账号必须关联一位接线员。"),
        ({"operator_id": "op77"}, "没有这位接线员。"),
        ({"name": ""}, "请填写用户名。"),
    ],
)
def test_create_account_errors_in_chinese(client, staff, db, change, message):
    csrf = signed_in(client, "wang")
    data = {"name": "zhao", "role": "operator", "operator_id": "op02"}
    data |= {"password": NEW_PASSWORD, "again": NEW_PASSWORD, "csrf_token": csrf}
    before = snapshot(db)
    response = client.post("/accounts", data={**data, **change})
    assert response.status_code == 400
    assert message in text(response)
    assert snapshot(db) == before


def test_change_role_and_operator(client, staff, db):
    csrf = signed_in(client, "wang")
    li = account_id(db, "li")
    data = {"role": "operator", "operator_id": "op02", "csrf_token": csrf}
    assert client.post(f"/accounts/{li}/role", data=data).status_code == 303
    row = users.get(db, li)
    assert (row["role"], row["operator_id"]) == ("operator", "op02")
    assert "account_role" in audit_actions(db)
    bad = {"role": "operator", "operator_id": "", "csrf_token": csrf}
    response = client.post(f"/accounts/{li}/role", data=bad)
    assert response.status_code == 400 and "必须关联" in text(response)


def test_last_admin_keeps_the_role(client, staff, db):
    csrf = signed_in(client, "wang")
    wang = account_id(db, "wang")
    data = {"role": "supervisor", "csrf_token": csrf}
    response = client.post(f"/accounts/{wang}/role", data=data)
    assert response.status_code == 400 and "最后一个管理员" in text(response)
    assert users.get(db, wang)["role"] == "admin"


def test_reset_password_signs_the_user_out(client, app, staff, db, clock):
    xiao_client = app.test_client()
    signed_in(xiao_client, "xiao", address="10.0.0.3")
    assert xiao_client.get("/").status_code == 200
    csrf = signed_in(client, "wang")
    clock.advance(seconds=5)
    xiao = account_id(db, "xiao")
    mismatch = {"password": NEW_PASSWORD, "again": "nope-nope-nope", "csrf_token": csrf}
    assert client.post(f"/accounts/{xiao}/password", data=mismatch).status_code == 400
    assert xiao_client.get("/").status_code == 200
    data = {"password": NEW_PASSWORD, "again": NEW_PASSWORD, "csrf_token": csrf}
    assert client.post(f"/accounts/{xiao}/password", data=data).status_code == 303
    assert xiao_client.get("/").status_code == 302  # signed out
    assert login(xiao_client, "xiao", address="10.0.0.3").status_code == 401
    assert login(xiao_client, "xiao", NEW_PASSWORD, address="10.0.0.3").status_code == 302
    assert "account_password_reset" in audit_actions(db)
    assert client.get("/accounts").status_code == 200  # the admin is still signed in


def test_reset_own_password_keeps_the_session(client, staff, db, clock):
    csrf = signed_in(client, "wang")
    clock.advance(seconds=5)
    data = {"password": NEW_PASSWORD, "again": NEW_PASSWORD, "csrf_token": csrf}
    assert client.post(f"/accounts/{account_id(db, 'wang')}/password", data=data).status_code == 303
    assert client.get("/accounts").status_code == 200


def test_cannot_deactivate_self_or_last_admin(client, app, staff, db):
    csrf = signed_in(client, "wang")
    wang = account_id(db, "wang")
    response = client.post(f"/accounts/{wang}/deactivate", data={"csrf_token": csrf})
    assert response.status_code == 400 and "不能停用自己的账号" in text(response)
    # A second admin cannot take away the last active one either.
    li = account_id(db, "li")
    data = {"role": "admin", "csrf_token": csrf}
    assert client.post(f"/accounts/{li}/role", data=data).status_code == 303
    li_client = app.test_client()
    li_csrf = signed_in(li_client, "li", address="10.0.0.2")
    assert (
        li_client.post(f"/accounts/{wang}/deactivate", data={"csrf_token": li_csrf}).status_code
        == 303
    )
    assert users.get(db, wang)["active"] == 0
    assert client.get("/accounts").status_code == 302  # wang's session ended
    response = li_client.post(f"/accounts/{li}/deactivate", data={"csrf_token": li_csrf})
    assert response.status_code == 400
    assert users.get(db, li)["active"] == 1


def test_deactivated_account_cannot_log_in_until_reactivated(client, app, staff, db):
    csrf = signed_in(client, "wang")
    xiao = account_id(db, "xiao")
    assert client.post(f"/accounts/{xiao}/deactivate", data={"csrf_token": csrf}).status_code == 303
    other = app.test_client()
    assert login(other, "xiao", address="10.0.0.4").status_code == 401
    assert "已停用" in text(client.get("/accounts"))
    assert client.post(f"/accounts/{xiao}/reactivate", data={"csrf_token": csrf}).status_code == 303
    assert login(other, "xiao", address="10.0.0.4").status_code == 302
    assert {"account_deactivate", "account_reactivate"} <= set(audit_actions(db))


def operator_row(db, op_id: str) -> dict:
    return next(db.query("SELECT * FROM operators WHERE id = ?", [op_id]))


def test_add_edit_deactivate_operator(client, staff, db, redis_conn):
    csrf = signed_in(client, "wang")
    board = Switchboard(redis_conn, time.time)
    page = text(client.get("/operators/manage"))
    assert "op01" in page and "添加接线员" in page and "style=" not in page
    assert "导入接线员名单" in text(client.get("/operators/manage/import"))
    response = client.post("/operators/manage", data={**GOOD_OPERATOR, "csrf_token": csrf})
    assert response.status_code == 303
    row = operator_row(db, "op09")
    assert row["phone"] == "+8613800138209" and row["active"] == 1
    assert json.loads(row["skills"]) == ["fuzhou", "minnan", "service", "sos"]
    live = board.operator("op09")
    assert live["name"] == "张丽" and live["phone"] == "+8613800138209"
    assert live["skills"] == ",fuzhou,minnan,service,sos,"
    assert live["state"] == "offline"

    edit = {"name": "张丽华", "phone": "13900139209", "skills": ["supervisor"], "dialects": ""}
    assert "张丽" in text(client.get("/operators/manage/op09/edit"))
    response = client.post("/operators/manage/op09/edit", data={**edit, "csrf_token": csrf})
    assert response.status_code == 303
    row = operator_row(db, "op09")
    assert (row["name"], row["phone"], row["skills"]) == (
        "张丽华",
        "+8613900139209",
        '["supervisor"]',
    )
    assert board.operator("op09")["skills"] == ",supervisor,"
    assert board.operator("op09")["phone"] == "+8613900139209"

    assert (
        client.post("/operators/manage/op09/deactivate", data={"csrf_token": csrf}).status_code
        == 303
    )
    assert operator_row(db, "op09")["active"] == 0
    # Editing keeps the operator deactivated, and the switchboard is left alone.
    edit["name"] = "停用后改名"
    client.post("/operators/manage/op09/edit", data={**edit, "csrf_token": csrf})
    assert operator_row(db, "op09")["active"] == 0
    assert board.operator("op09")["name"] == "张丽华"
    assert (
        client.post("/operators/manage/op09/reactivate", data={"csrf_token": csrf}).status_code
        == 303
    )
    assert operator_row(db, "op09")["active"] == 1
    actions = audit_actions(db)
    for action in (
        "operator_create",
        "operator_edit",
        "operator_deactivate",
        "operator_reactivate",
    ):
        assert action in actions


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": "op01"}, "工号“op01”已经存在。"),
        ({"id": "op 9"}, "工号只能用字母、数字"),
        ({"phone": "12345"}, "电话号码“12345”无效"),
        ({"name": ""}, "请填写姓名。"),
        ({"dialects": "福州话"}, "方言请用拼音"),
    ],
)
def test_operator_errors_in_chinese(client, staff, db, redis_conn, change, message):
    csrf = signed_in(client, "wang")
    before = snapshot(db)
    response = client.post(
        "/operators/manage", data={**GOOD_OPERATOR, **change, "csrf_token": csrf}
    )
    assert response.status_code == 400 and message in text(response)
    assert snapshot(db) == before
    assert Switchboard(redis_conn, time.time).operator("op09") == {}


def test_unknown_operator_is_404(client, staff):
    csrf = signed_in(client, "wang")
    assert client.get("/operators/manage/op77/edit").status_code == 404
    assert (
        client.post("/operators/manage/op77/deactivate", data={"csrf_token": csrf}).status_code
        == 404
    )


def test_operator_csv_upload(client, staff, db, redis_conn):
    csrf = signed_in(client, "wang")
    upload = {"file": (io.BytesIO((SAMPLES / "operators.csv").read_bytes()), "operators.csv")}
    response = client.post("/operators/manage/import", data={**upload, "csrf_token": csrf})
    assert response.status_code == 200
    page = text(response)
    assert "导入成功" in page and "新增 <strong>3</strong> 位，更新 <strong>2</strong> 位" in page
    assert db["operators"].count == 5
    assert Switchboard(redis_conn, time.time).operator("op05")["skills"] == ",minnan,service,"
    assert "import" in audit_actions(db)


def test_operator_csv_upload_rejects_the_whole_file(client, staff, db, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "id,name,phone,skills\n"
        "op07,好人,13800138207,sos\n"
        "op08,坏号码,12345,sos\n"
        "op07,重复,13800138217,service\n",
        encoding="utf-8",
    )
    csrf = signed_in(client, "wang")
    before = snapshot(db)
    upload = {"file": (io.BytesIO(bad.read_bytes()), "bad.csv")}
    response = client.post("/operators/manage/import", data={**upload, "csrf_token": csrf})
    assert response.status_code == 400
    page = text(response)
    assert "没有导入" in page and "第3行：" in page and "第4行：" in page
    assert "第2行：" not in page
    assert snapshot(db) == before
    assert "import_rejected" in audit_actions(db)


def test_operator_changes_are_kept_when_redis_is_down(
    client, app, staff, db, tmp_path, monkeypatch
):
    ctx = app.extensions[queueing.EXTENSION]
    dead = redis.Redis(unix_socket_path=str(tmp_path / "nobody.sock"), socket_connect_timeout=1)
    monkeypatch.setattr(ctx, "redis", dead)
    csrf = signed_in(client, "wang")
    response = client.post("/operators/manage", data={**GOOD_OPERATOR, "csrf_token": csrf})
    assert response.status_code == 303
    assert operator_row(db, "op09")["name"] == "张丽"


def test_deactivating_an_available_operator_takes_them_offline(client, staff, db, redis_conn):
    board = Switchboard(redis_conn, time.time)
    board.register_operator("op02", name="林志强", phone="+8613800138202", skills=["sos"])
    board.set_state("op02", OperatorState.AVAILABLE)
    csrf = signed_in(client, "wang")
    response = client.post("/operators/manage/op02/deactivate", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert board.operator("op02")["state"] == "offline"
    assert "operator_state" in audit_actions(db)
