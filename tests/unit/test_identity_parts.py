"""The small parts of the identity service: forms, scopes, client credentials, CSRF, rate limits, settings."""

from __future__ import annotations

import asyncio
import base64

import pytest
import yaml
from starlette.requests import Request

from sevenleague.identity import IdentityError, IdentitySettings
from sevenleague.identity._forms import FormError, read_form
from sevenleague.identity._login_form import CsrfTokens, RateLimit, render_page
from sevenleague.identity._oauth import OAuthError, client_credentials
from sevenleague.identity._scopes import ScopeError, parse_scope, refused_for_user, user_may_have


def form_request(body: bytes, content_type: str = "application/x-www-form-urlencoded") -> Request:
    scope = {"type": "http", "method": "POST", "path": "/token", "query_string": b"",
             "headers": [(b"content-type", content_type.encode())]}
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


def read(body: bytes, content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
    return asyncio.run(read_form(form_request(body, content_type)))


def test_a_form_is_read_once_per_parameter():
    assert read(b"grant_type=client_credentials&scope=a.b+c.d&empty=") == {
        "grant_type": "client_credentials", "scope": "a.b c.d", "empty": ""}


@pytest.mark.parametrize(("body", "content_type", "message"), [
    (b"a=1", "application/json", "must be application/x-www-form-urlencoded"),
    (b"a=1&a=2", "application/x-www-form-urlencoded", "a is given more than once"),
    (b"\xff=1", "application/x-www-form-urlencoded", "not a readable form"),
    (b"a=%ff", "application/x-www-form-urlencoded", "not a readable form"),
    (b"a=%00", "application/x-www-form-urlencoded", "NUL"),
    (b"x" * 20000, "application/x-www-form-urlencoded", "larger than"),
    (b"&".join(b"p%d=1" % i for i in range(40)), "application/x-www-form-urlencoded", "not a readable form"),
])
def test_unreadable_forms_are_refused_without_quoting_them(body, content_type, message):
    with pytest.raises(FormError, match=message) as caught:
        read(body, content_type)
    assert "%ff" not in str(caught.value)


def test_scopes_are_words_of_service_and_action():
    assert parse_scope("hello.read  hello.read openid") == ("hello.read", "openid")
    assert parse_scope(None) == () and parse_scope(" ") == ()
    for bad in ("Hello.read", "hello.read'", "a" * 40, "a.b.c"):
        with pytest.raises(ScopeError):
            parse_scope(bad)


def test_roles_give_actions_on_every_service_and_only_admins_administer():
    assert user_may_have("openid", [])
    assert user_may_have("hello.read", ["viewer"]) and not user_may_have("hello.write", ["viewer"])
    assert user_may_have("ledger.write", ["developer"]) and not user_may_have("ledger.operate", ["developer"])
    assert not user_may_have("identity.admin", ["operator"]) and user_may_have("identity.admin", ["admin"])
    assert refused_for_user(["hello.read", "hello.admin", "bare"], ["developer"]) == ["hello.admin", "bare"]


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


def test_client_credentials_come_from_basic_or_the_body_but_not_both():
    found = client_credentials(basic(b"hello:s%3Acret"), {})
    assert found is not None and (found.client_id, found.secret, found.method) == \
        ("hello", "s:cret", "client_secret_basic")
    posted = client_credentials(None, {"client_id": "hello", "client_secret": "x"})
    assert posted is not None and posted.method == "client_secret_post"
    public = client_credentials(None, {"client_id": "league"})
    assert public is not None and public.secret is None and public.method == "none"
    assert client_credentials(None, {}) is None
    assert client_credentials("Bearer abc", {}) is None
    with pytest.raises(OAuthError, match="one client authentication method"):
        client_credentials(basic(b"hello:x"), {"client_secret": "y"})
    for garbage in ("Basic !!!", basic(b"no-colon"), basic(b"\xff:\xfe")):
        with pytest.raises(OAuthError) as caught:
            client_credentials(garbage, {})
        assert caught.value.error == "invalid_client" and caught.value.status == 401
        assert caught.value.challenge == 'Basic realm="identity"'


def test_a_csrf_token_is_only_good_with_the_cookie_it_was_made_for():
    csrf = CsrfTokens(secure=False)
    cookie, token = csrf.issue()
    other_cookie, other_token = csrf.issue()
    assert csrf.check(cookie, token)
    assert not csrf.check(other_cookie, token) and not csrf.check(cookie, other_token)
    assert not csrf.check(None, token) and not csrf.check(cookie, None) and not csrf.check("", "")
    assert not CsrfTokens(secure=False).check(cookie, token)  # another key: a restarted service
    header = csrf.cookie_header(cookie)
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Secure" not in header
    secure = CsrfTokens(secure=True)
    assert secure.cookie_name.startswith("__Host-") and secure.cookie_header("v").endswith("; Secure")


def test_the_rate_limit_slides_per_address():
    now = [0.0]
    limit = RateLimit(3, 60.0, clock=lambda: now[0])
    assert [limit.allow("a")[0] for _ in range(4)] == [True, True, True, False]
    assert limit.allow("b") == (True, 0)
    assert limit.allow("a") == (False, 60)
    now[0] = 60.5
    assert limit.allow("a") == (True, 0)


def test_the_page_escapes_what_it_shows():
    page = render_page(csrf_token='"><script>', user_code="<b>", message="<i>")
    assert "<script>" not in page and "&lt;b&gt;" in page and "&lt;i&gt;" in page


def test_settings_come_from_the_environment_and_bad_values_stop_the_start():
    settings = IdentitySettings.from_environment({
        "LEAGUE_OIDC_ISSUER": "https://id.example:9400", "LEAGUE_IDENTITY_LOGIN_RATE": "5/30",
        "LEAGUE_IDENTITY_LOCKOUT_FAILURES": "3"})
    assert settings.secure_cookies and settings.login_attempts == 5 and settings.login_window == 30
    assert settings.lockout_failures == 3 and settings.token_lifetime == 600
    for env in ({}, {"LEAGUE_OIDC_ISSUER": "http://x/"},
                {"LEAGUE_OIDC_ISSUER": "http://x", "LEAGUE_IDENTITY_LOGIN_RATE": "lots"},
                {"LEAGUE_OIDC_ISSUER": "http://x", "LEAGUE_IDENTITY_TOKEN_LIFETIME": "0"}):
        with pytest.raises(IdentityError):
            IdentitySettings.from_environment(env)


def test_every_route_documents_itself_in_openapi_yaml():
    from sevenleague.identity.service import ACCESS, routes, schemas

    document = schemas.get_schema(routes=routes)
    paths = set(document["paths"])
    assert {"/token", "/device_authorization", "/device", "/jwks.json", "/api/users"} <= paths
    for route in routes:
        if route.include_in_schema and route.endpoint.__doc__:
            assert isinstance(yaml.safe_load(route.endpoint.__doc__), dict), route.path
    assert ACCESS["/token"] is not ACCESS["/api/users"]
    assert ACCESS["/api/keys/rotate"] == "identity.admin"
