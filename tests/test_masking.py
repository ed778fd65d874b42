from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from ctwa.infra import masking


def test_headers_are_redacted_keeping_the_scheme() -> None:
    masking.register_secret_header("Token")
    headers = {"Authorization": "Bearer abc123", "X-CleverTap-Passcode": "pc",
               "token": "t", "Content-Type": "application/json"}
    assert masking.redact_headers(headers) == {
        "Authorization": "Bearer ****", "X-CleverTap-Passcode": "****", "token": "****",
        "Content-Type": "application/json"}


def test_url_passwords_are_masked() -> None:
    assert masking.redact_url("https://bob:hunter22@example.com:8443/x?a=1") == (
        "https://bob:****@example.com:8443/x?a=1")
    assert masking.scrub("see http://bob:hunter22@h/x now") == "see http://bob:****@h/x now"


def test_basic_credentials_are_masked_in_plain_and_base64_form() -> None:
    masking.register_basic_auth("bob", "pw-CANARY-7f3a")
    encoded = base64.b64encode(b"bob:pw-CANARY-7f3a").decode()
    text = f"pw-CANARY-7f3a and Basic {encoded}"
    assert masking.scrub(text) == "**** and Basic ****"


def test_short_values_are_not_registered() -> None:
    masking.register_secret("ab")
    assert masking.scrub("about") == "about"


@given(st.text(min_size=3, max_size=30).filter(  # a secret inside the mask ("***") is not
           lambda s: s.strip() == s and s and s not in masking.MASK),  # a leak
       st.text(max_size=30), st.text(max_size=30))
def test_a_registered_secret_never_survives_scrub(secret: str, before: str, after: str) -> None:
    masking.forget_all()
    masking.register_secret(secret)
    assert secret not in masking.scrub(before + secret + after)


def test_credentials_in_query_strings_are_masked() -> None:
    from ctwa.infra.masking import redact_url

    link = ("https://graph.facebook.com/v21.0/1/message_templates?access_token=EAAGm0PX4ZCps"
            "&limit=25&after=QVFIU")
    shown = redact_url(link)
    assert "EAAGm0PX4ZCps" not in shown and "limit=25&after=QVFIU" in shown
    assert "api_key=****" in masking.scrub('see "https://x.example/?api_key=abc123"')


def test_escaped_and_percent_encoded_forms_are_masked() -> None:
    secret = 'pw-CANARY-7f3a/"q&x'
    masking.register_secret(secret)
    for form in ('{"password": "pw-CANARY-7f3a/\\"q&x"}', "pass=pw-CANARY-7f3a%2F%22q%26x",
                 "pass=pw-CANARY-7f3a%2F%22q%26x&x=1".replace("%2F", "%2F")):
        assert "pw-CANARY-7f3a" not in masking.scrub(form), form


def test_the_sandboxs_published_password_is_no_secret() -> None:
    from ctwa.sandbox.bsp import BspSettings

    assert BspSettings().password in masking.PUBLIC_CREDENTIALS  # the two stay in step
    masking.register_basic_auth("ctwa", "sandbox")
    masking.register_secret("sandbox")
    masking.register_secret("sandbox-passcode")  # long and unique: still masked
    assert masking.scrub("profile sandbox, passcode sandbox-passcode") == (
        "profile sandbox, passcode ****")


def test_the_sandbox_profile_is_named_in_output(cli, monkeypatch) -> None:
    added = cli("profile", "add", "sandbox", "--endpoint", "http://127.0.0.1:9/bsp/messages",
                "--auth", "basic", "--username", "ctwa", "--use")
    assert added.exit_code == 0, added.stderr
    monkeypatch.setenv("CTWA_PASSWORD", "sandbox")
    shown = cli("profile", "show", "sandbox")
    assert shown.exit_code == 0, shown.stderr
    assert "profile sandbox" in shown.stdout and "profile ****" not in shown.stdout
    monkeypatch.setenv("CTWA_PASSWORD", "pw-CANARY-7f3a")  # a real password is still masked
    shown = cli("--json", "profile", "show", "sandbox")
    assert "pw-CANARY-7f3a" not in shown.stdout + shown.stderr
