"""The password rule, and every place a password is set keeps to it: CLI, accounts, own page."""

from __future__ import annotations

import pytest

from data import passwords, users
from tests.conftest import PASSWORD
from tests.test_admin_accounts import account_id, signed_in, snapshot, text

SHORT = "密码至少需要10个字符。"
NAME = "密码不能包含用户名。"
COMMON = "这个密码太常见，很容易被猜到，请换一个。"
# Passwords that break one part of the rule each ({name}: the account's name).
REFUSED = [("kx7#Lp2q", SHORT), ("{name}-keeps-watch", NAME), ("Woaini1314", COMMON)]
REASONS = ["short", "name", "common"]


@pytest.mark.parametrize("password", [PASSWORD, "a-new-secret-42", "桂花树下的老茶馆喝早茶"])
def test_good_passwords_pass(password):
    assert passwords.problems(password, name="wang") == []


def test_too_short():
    assert passwords.problems("kx7#Lp2q", name="wang") == [SHORT]
    assert passwords.problems("", name="wang") == [SHORT]


@pytest.mark.parametrize(
    ("password", "name"),
    [
        ("wangwangwang", "wang"),
        ("my-Wang-is-long", "wang"),
        ("xx-zhao-9981q", "ZHAO"),
        ("wang123456", "Wang"),
        ("li12345678", "li"),
        ("Li@2024-06-01", "li"),
        ("xiao", "xiao"),
    ],
)
def test_the_account_name_is_refused(password, name):
    assert NAME in passwords.problems(password, name=name)


@pytest.mark.parametrize(
    ("password", "name"), [("calligraphy-42", "li"), ("correct horse 1", "wu"), ("x" * 12, "")]
)
def test_a_short_name_only_counts_alone(password, name):
    assert passwords.problems(password, name=name) == []


@pytest.mark.parametrize(
    "password",
    ["woaini1314", "123456789a", "QWERTYUIOP", "1qaz2wsx3edc", "aa123456789", "Password123"],
)
def test_common_passwords_are_refused_whatever_the_case(password):
    assert passwords.problems(password, name="zhao") == [COMMON]


def test_several_problems_are_all_said():
    assert passwords.problems("wang", name="wang") == [SHORT, NAME]
    assert passwords.problems("wang123456", name="wang") == [NAME, COMMON]


def test_the_shipped_list():
    lines = passwords.COMMON_FILE.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# "), "the first line says where the list comes from"
    entries = lines[1:]
    assert len(entries) >= 1000 and len(set(entries)) == len(entries)
    assert all(entry == entry.strip().casefold() and entry for entry in entries)
    assert passwords.common() == set(entries)


@pytest.mark.parametrize(("password", "message"), REFUSED, ids=REASONS)
def test_cli_refuses_a_weak_password(app, db, password, message):
    password = password.format(name="zhao")
    result = app.test_cli_runner().invoke(
        args=["users", "create", "zhao", "--role", "admin", "--password", password]
    )
    assert result.exit_code != 0
    assert message in result.output
    assert users.by_name(db, "zhao") is None


def test_cli_accepts_a_good_password(app, db):
    result = app.test_cli_runner().invoke(
        args=["users", "create", "zhao", "--role", "admin", "--password", PASSWORD]
    )
    assert result.exit_code == 0, result.output
    assert users.by_name(db, "zhao")["role"] == "admin"


@pytest.mark.parametrize(("password", "message"), REFUSED, ids=REASONS)
def test_accounts_page_refuses_a_weak_password_for_a_new_account(
    client, staff, db, password, message
):
    password = password.format(name="zhao")
    csrf = signed_in(client, "wang")
    before = snapshot(db)
    data = {"name": "zhao", "role": "supervisor", "csrf_token": csrf}
    response = client.post("/accounts", data={**data, "password": password, "again": password})
    assert response.status_code == 400
    assert message in text(response)
    assert snapshot(db) == before
    assert "account_create" not in [row["action"] for row in db["audit_log"].rows]


@pytest.mark.parametrize(("password", "message"), REFUSED, ids=REASONS)
def test_accounts_page_refuses_a_weak_password_on_reset(client, staff, db, password, message):
    password = password.format(name="xiao")
    csrf = signed_in(client, "wang")
    before = snapshot(db)
    data = {"password": password, "again": password, "csrf_token": csrf}
    response = client.post(f"/accounts/{account_id(db, 'xiao')}/password", data=data)
    assert response.status_code == 400
    assert f"xiao：{message}" in text(response)
    assert snapshot(db) == before


def test_accounts_page_states_the_rule(client, staff):
    signed_in(client, "wang")
    page = text(client.get("/accounts"))
    assert passwords.RULE in page and 'minlength="10"' in page


@pytest.mark.parametrize(("password", "message"), REFUSED, ids=REASONS)
def test_change_password_page_refuses_a_weak_password(app, staff, db, password, message):
    password = password.format(name="wang")
    own, other = app.test_client(), app.test_client()
    csrf = signed_in(own, "wang")
    signed_in(other, "wang", address="10.0.0.2")
    before = snapshot(db)
    data = {"old": PASSWORD, "new": password, "again": password, "csrf_token": csrf}
    response = own.post("/account/password", data=data)
    assert response.status_code == 400
    assert message in text(response)
    assert snapshot(db) == before
    assert other.get("/").status_code == 200, "no session ended"


def test_change_password_page_states_the_rule(client, staff):
    signed_in(client, "wang")
    assert passwords.RULE in text(client.get("/account/password"))
