"""The admin pages through the Flask test client: accounts, roles, CSRF, call log, timeline."""

from __future__ import annotations

import re

from data import calls, users
from tests.conftest import PASSWORD, SOS


def token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "every form carries a CSRF token"
    return match.group(1)


def login(client, name: str, password: str = PASSWORD, address: str = "10.0.0.1"):
    page = client.get("/login")
    return client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token(page.get_data(as_text=True))},
        environ_base={"REMOTE_ADDR": address},
    )


def test_pages_need_a_login(client, staff):
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.get("/calls.csv").status_code == 302


def test_login_logout(client, staff, db):
    response = login(client, "wang")
    assert response.status_code == 302
    page = client.get("/")
    assert page.status_code == 200 and "通话记录" in page.get_data(as_text=True)
    assert "wang（管理员）" in page.get_data(as_text=True)
    out = client.post("/logout", data={"csrf_token": token(page.get_data(as_text=True))})
    assert out.status_code == 302
    assert client.get("/").status_code == 302
    actions = [r["action"] for r in db.query("SELECT action FROM audit_log")]
    assert actions == ["login", "logout"]


def test_wrong_password_and_throttling(client, staff):
    assert login(client, "wang", "nope").status_code == 401
    for _ in range(4):
        login(client, "wang", "nope")
    throttled = login(client, "wang")
    assert throttled.status_code == 429, "the right password is refused after 5 failures"
    assert "登录失败次数过多，请在10:15以后再试" in throttled.get_data(as_text=True)
    # only that account from that address: another account from there signs in
    assert login(client, "li").status_code == 302
    # and wang's owner from another address too
    assert login(client, "wang", address="10.0.0.2").status_code == 302


def test_forms_without_csrf_token_are_refused(client, staff, db):
    response = client.post("/login", data={"name": "wang", "password": PASSWORD})
    assert response.status_code == 400
    assert db["login_attempts"].count == 0
    login(client, "wang")
    assert client.post("/logout").status_code == 400


def test_session_cookie_flags_and_security_headers(client, staff):
    response = login(client, "wang")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    page = client.get("/")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in page.get_data(as_text=True)
    https = client.get("/login", base_url="https://localhost")
    answered = client.post(
        "/login",
        base_url="https://localhost",
        data={
            "name": "li",
            "password": PASSWORD,
            "csrf_token": token(https.get_data(as_text=True)),
        },
        headers={"Referer": "https://localhost/login"},
    )
    assert "Secure" in answered.headers["Set-Cookie"]


def test_changing_the_password_signs_out_other_sessions(app, staff):
    first, second = app.test_client(), app.test_client()
    login(first, "li")
    login(second, "li", address="10.0.0.9")
    form = first.get("/account/password").get_data(as_text=True)
    changed = first.post(
        "/account/password",
        data={
            "old": PASSWORD,
            "new": "new password 2",
            "again": "new password 2",
            "csrf_token": token(form),
        },
    )
    assert changed.status_code == 302
    assert first.get("/").status_code == 200
    assert second.get("/").status_code == 302, "the other session is signed out"
    assert login(app.test_client(), "li", "new password 2", "10.0.0.8").status_code == 302


def test_call_log_counts_filters_and_pages(client, staff, some_calls):
    login(client, "li")
    page = client.get("/").get_data(as_text=True)
    assert re.search(r"共 <strong>3</strong> 通", page)
    sos_only = client.get("/?line=sos").get_data(as_text=True)
    assert re.search(r"共 <strong>1</strong> 通", sos_only)
    by_name = client.get("/?who=陈国强").get_data(as_text=True)
    assert re.search(r"共 <strong>2</strong> 通", by_name)
    by_phone = client.get("/?who=18600000001").get_data(as_text=True)
    assert re.search(r"共 <strong>1</strong> 通", by_phone)
    refused = client.get("/?outcome=quota_refused").get_data(as_text=True)
    assert re.search(r"共 <strong>1</strong> 通", refused) and "亲情电话" in refused
    answered = client.get("/?operator=op01").get_data(as_text=True)
    assert re.search(r"共 <strong>1</strong> 通", answered)
    none = client.get("/?from=2026-11-17").get_data(as_text=True)
    assert re.search(r"共 <strong>0</strong> 通", none) and "没有符合条件的通话" in none
    day = client.get("/?from=2026-11-16&to=2026-11-16").get_data(as_text=True)
    assert re.search(r"共 <strong>3</strong> 通", day)
    assert client.get("/?page=abc&line=nonsense&from=bad").status_code == 200


def test_call_detail_timeline_and_resident_card(client, staff, some_calls):
    login(client, "li")
    sid = some_calls["hotline"].sid
    page = client.get(f"/calls/{sid}").get_data(as_text=True)
    assert "服务热线" in page and "菜单" in page and "按键" in page and "登记服务" in page
    assert "2026-11-16 10:00:00" in page, "Shanghai time to the second"
    sos = client.get(f"/calls/{some_calls['sos'].sid}").get_data(as_text=True)
    assert "陈国强" in sos and "高血压" in sos and "独居" in sos and "儿子 陈明" in sos
    assert client.get("/calls/CAnothing").status_code == 404


def test_operator_sees_only_their_own_calls(client, staff, some_calls):
    login(client, "xiao")
    page = client.get("/").get_data(as_text=True)
    assert re.search(r"共 <strong>1</strong> 通", page)
    assert client.get(f"/calls/{some_calls['sos'].sid}").status_code == 200
    assert client.get(f"/calls/{some_calls['hotline'].sid}").status_code == 403
    # an operator cannot widen the filter to someone else's calls
    other = client.get("/?operator=op02").get_data(as_text=True)
    assert re.search(r"共 <strong>1</strong> 通", other)


def test_csv_export_of_the_filtered_log(client, staff, some_calls):
    login(client, "li")
    response = client.get("/calls.csv?line=shortcut")
    body = response.get_data()
    assert response.mimetype == "text/csv"
    assert body.startswith(b"\xef\xbb\xbf"), "BOM so Excel reads UTF-8"
    lines = body.decode("utf-8-sig").strip().splitlines()
    assert lines[0].startswith("时间,线路,来电号码,老人")
    assert len(lines) == 2 and "亲情电话" in lines[1] and "陈国强" in lines[1]


def test_users_create_command(app, db):
    runner = app.test_cli_runner()
    made = runner.invoke(
        args=["users", "create", "zhao", "--role", "supervisor", "--password", "long enough 1"]
    )
    assert made.exit_code == 0, made.output
    assert users.by_name(db, "zhao")["role"] == "supervisor"
    again = runner.invoke(
        args=["users", "create", "zhao", "--role", "admin", "--password", "long enough 1"]
    )
    assert again.exit_code == 1
    short = runner.invoke(args=["users", "create", "q", "--role", "admin", "--password", "x"])
    assert short.exit_code == 1
    no_op = runner.invoke(
        args=["users", "create", "w", "--role", "operator", "--password", "long enough 1"]
    )
    assert no_op.exit_code == 1 and "--operator" in no_op.output


def test_webhooks_need_no_csrf_token(phone, staff, db):
    call = phone("+8618600000001", SOS)
    assert call.start().status == 200
    assert calls.get(db, call.sid)["line"] == "sos"
