"""Security behind a real proxy: client addresses, HTTPS, lockouts, redirects, sessions,
auth-token rotation, headers."""

from __future__ import annotations

import pytest

from app import create_app
from ivr.db import close_all
from tests.conftest import AUTH_TOKEN, BASE_URL, PASSWORD, SOS, sign
from tests.test_admin import login, token

ATTACKER, OWNER = "203.0.113.66", "198.51.100.7"


@pytest.fixture
def proxied(settings, clock, redis_conn, staff):
    """The app behind one trusted proxy (TRUSTED_PROXIES=1), on the staff's database."""
    app = create_app(settings.with_overrides(trusted_proxies=1), clock=clock)
    yield app
    close_all(app)


def via_proxy(client, name: str, address: str, password: str = PASSWORD, proto: str = "https"):
    """A login as nginx forwards it: the proxy connects from 127.0.0.1 and says who called."""
    headers = {
        "X-Forwarded-For": address,
        "X-Forwarded-Proto": proto,
        "X-Forwarded-Host": "cc.example.org",
    }
    page = client.get("/login", headers=headers)
    return client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token(page.get_data(as_text=True))},
        headers={**headers, "Referer": "https://cc.example.org/login"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )


def test_behind_a_proxy_cookies_are_secure_and_addresses_are_the_clients(proxied, db):
    client = proxied.test_client()
    answered = via_proxy(client, "li", OWNER)
    assert answered.status_code == 302
    assert "Secure" in answered.headers["Set-Cookie"], "the original request was HTTPS"
    assert answered.headers["Location"] == "/", "a path of this app, never another host"
    logged = [r["detail"] for r in db.query("SELECT detail FROM audit_log WHERE action='login'")]
    assert OWNER in logged[-1]


def test_an_attacker_behind_the_proxy_locks_only_their_own_address(proxied, db):
    attacker, owner = proxied.test_client(), proxied.test_client()
    for _ in range(5):
        assert via_proxy(attacker, "wang", ATTACKER, "guess-0000").status_code == 401
    assert via_proxy(attacker, "wang", ATTACKER).status_code == 429, "locked from that address"
    assert via_proxy(owner, "wang", OWNER).status_code == 302, "the owner still signs in"
    actions = [r["action"] for r in db.query("SELECT action FROM audit_log")]
    assert actions.count("login_failed") == 5 and actions.count("login_locked") == 1


def test_without_trusted_proxies_forwarded_headers_are_ignored(client, staff):
    # a client cannot dodge the lock by claiming another address in X-Forwarded-For
    for i in range(5):
        spoofed = {"X-Forwarded-For": f"192.0.2.{i}"}
        page = client.get("/login")
        client.post(
            "/login",
            data={
                "name": "wang",
                "password": "wrong",
                "csrf_token": token(page.get_data(as_text=True)),
            },
            headers=spoofed,
            environ_base={"REMOTE_ADDR": ATTACKER},
        )
    assert login(client, "wang", address=ATTACKER).status_code == 429
    https = via_proxy(client, "li", OWNER)
    assert "Secure" not in https.headers["Set-Cookie"], "X-Forwarded-Proto is not trusted"


def test_one_address_trying_many_accounts_is_locked_and_the_lock_ends(client, staff, clock):
    for i in range(20):
        login(client, f"user{i}", "wrong", address=ATTACKER)
    refused = login(client, "li", address=ATTACKER)
    assert refused.status_code == 429 and "10:15以后再试" in refused.get_data(as_text=True)
    assert login(client, "li", address=OWNER).status_code == 302
    clock.advance(minutes=15, seconds=1)
    assert login(client, "li", address=ATTACKER).status_code == 302, "the lock has ended"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "/\\evil.example",
        "/%09/evil.example",
        "/\t/evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "http:/evil.example",
        "/no-such-page",
        "",
    ],
)
def test_redirects_after_login_stay_on_this_app(client, staff, target):
    page = client.get("/login")
    answered = client.post(
        "/login",
        query_string={"next": target},
        data={"name": "li", "password": PASSWORD, "csrf_token": token(page.get_data(as_text=True))},
    )
    assert answered.status_code == 302
    assert answered.headers["Location"] == "/", target


def test_a_redirect_to_a_page_of_this_app_is_kept(client, staff):
    page = client.get("/login")
    answered = client.post(
        "/login?next=/residents%3Fq%3D%E9%99%88",
        data={"name": "li", "password": PASSWORD, "csrf_token": token(page.get_data(as_text=True))},
    )
    assert answered.headers["Location"] == "/residents?q=%E9%99%88"


def test_sessions_end_after_the_idle_time_and_the_maximum_lifetime(client, staff, clock, db):
    login(client, "li")
    clock.advance(minutes=479)
    assert client.get("/").status_code == 200, "used within the idle time"
    clock.advance(minutes=481)
    expired = client.get("/board")
    assert expired.status_code == 302 and "/login?next=/board" in expired.headers["Location"]
    assert client.get("/").status_code == 302, "signed out"
    login(client, "li")
    for _ in range(24):  # busy all day: still over after SESSION_MAX_HOURS
        clock.advance(minutes=59)
        assert client.get("/").status_code == 200
    clock.advance(minutes=40)
    assert client.get("/").status_code == 302
    assert "session_expired" in [r["action"] for r in db.query("SELECT action FROM audit_log")]


def test_a_csrf_token_dies_with_its_session(client, staff, clock):
    login(client, "li")
    form = client.get("/account/password").get_data(as_text=True)
    clock.advance(hours=9)
    late = client.post("/logout", data={"csrf_token": token(form)})
    assert late.status_code == 302 and "/login" in late.headers["Location"]
    assert client.get("/").status_code == 302


def test_security_headers(client, staff):
    page = client.get("/login")
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert "camera=()" in page.headers["Permissions-Policy"]
    assert "microphone=()" in page.headers["Permissions-Policy"]


def test_rotating_the_auth_token_both_tokens_are_accepted_a_third_is_not(
    settings, clock, redis_conn
):
    new = "new-auth-token-fedcba9876543210"
    app = create_app(
        settings.with_overrides(twilio_auth_token=new, twilio_auth_token_secondary=AUTH_TOKEN),
        clock=clock,
    )
    client = app.test_client()
    params = {"CallSid": "CA" + "1" * 32, "From": "+8618600000001", "To": SOS}
    url = BASE_URL + "/twilio/voice"
    try:
        for token_ in (new, AUTH_TOKEN):
            signed = {"X-Twilio-Signature": sign(url, params, token_)}
            assert client.post("/twilio/voice", data=params, headers=signed).status_code == 200
        third = {"X-Twilio-Signature": sign(url, params, "some-other-token-0000000000")}
        assert client.post("/twilio/voice", data=params, headers=third).status_code == 403
    finally:
        close_all(app)


def test_a_provider_webhook_opens_no_session_and_sets_no_cookie(client):
    params = {"CallSid": "CA" + "c" * 32, "From": "+8618612345678", "To": SOS}
    url = BASE_URL + "/twilio/voice"
    reply = client.post(
        "/twilio/voice", data=params, headers={"X-Twilio-Signature": sign(url, params)}
    )
    assert reply.status_code == 200
    assert "Set-Cookie" not in reply.headers
    assert "Content-Security-Policy" not in reply.headers, "no browser reads a webhook"
    login = client.get("/login")
    assert "Content-Security-Policy" in login.headers and "Set-Cookie" in login.headers
