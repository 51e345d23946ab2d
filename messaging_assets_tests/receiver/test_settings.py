"""What the receiver's settings tell the sends: with PUBLIC_URL set, the delivery-report URL every
send carries (the token in it, never shown); plain http only for a loopback host."""

from __future__ import annotations

import secrets

import pytest

from messaging_assets.receiver.settings import report_callback, reports_pushed
from messaging_assets.settings import SettingError

TOKEN = secrets.token_urlsafe(32)
RECEIVER = "SOURCES__MESSAGING__RECEIVER__"


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(RECEIVER + "TOKEN", TOKEN)
    return TOKEN


def test_without_public_url_sends_carry_no_callback(token):
    assert reports_pushed() is False
    assert report_callback() is None


@pytest.mark.parametrize(
    "public_url",
    [
        "https://hooks.example.com/sms/",
        "http://127.0.0.1:8787",
        "http://localhost:8787/hooks",
        "http://[::1]:8787",
    ],
)
def test_the_callback_is_the_delivery_report_url_over_https_or_loopback_http(
    monkeypatch, token, public_url
):
    monkeypatch.setenv(RECEIVER + "PUBLIC_URL", public_url)

    callback = report_callback()

    assert reports_pushed() is True
    assert callback is not None
    assert callback.url == f"{public_url.rstrip('/')}/{TOKEN}/delivery-reports"
    assert callback.token == TOKEN
    assert TOKEN not in repr(callback)


@pytest.mark.parametrize(
    "public_url",
    ["http://hooks.example.com", "http://127.0.0.1.example.com:8787", "http://10.0.0.5:8787"],
)
def test_plain_http_elsewhere_than_loopback_is_refused_in_one_line(monkeypatch, token, public_url):
    monkeypatch.setenv(RECEIVER + "PUBLIC_URL", public_url)

    with pytest.raises(SettingError) as refused:
        report_callback()

    said = str(refused.value)
    assert said.startswith(f"{RECEIVER}PUBLIC_URL={public_url!r}: expected an https address")
    assert "accepted only for a loopback host, 127.0.0.1, localhost, ::1" in said
    assert "\n" not in said and TOKEN not in said


def test_public_url_without_a_token_is_refused_naming_the_token(monkeypatch):
    monkeypatch.setenv(RECEIVER + "PUBLIC_URL", "https://hooks.example.com")

    with pytest.raises(SettingError) as refused:
        report_callback()

    assert str(refused.value).startswith(f"{RECEIVER}TOKEN is not set")


def test_the_callback_needs_only_the_settings_it_uses(monkeypatch, token):
    # A receiver limit is the receiver's business: it does not stop the sends.
    monkeypatch.setenv(RECEIVER + "PUBLIC_URL", "https://hooks.example.com")
    monkeypatch.setenv(RECEIVER + "MAX_BODY_BYTES", "0")

    assert report_callback() is not None
