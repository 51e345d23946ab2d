"""Opt-outs from replies: inbound messages landed as the receiver lands them, loaded into a real
warehouse through Dagster, and `messaging.opt_outs` read back as a user reads it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from messaging_assets.receiver.landing import INBOUND_MESSAGES
from messaging_assets.settings import SettingError
from messaging_assets.source.opt_outs import Keywords, e164, masked
from messaging_assets_tests.conftest import Landing, Warehouse, both_destinations, metadata_of

NUMBER = "+491701234567"
SENT = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
CURRENT = (
    "SELECT phone_number, opted_out, keyword, request_id FROM messaging.opt_outs "
    "WHERE _dlt_valid_to IS NULL ORDER BY phone_number"
)


def reply(request_id: str, text: str, minutes: int, sender: str = NUMBER) -> dict:
    """An inbound message as the provider pushes it, sent `minutes` after SENT."""
    sent = (SENT + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S%z")
    return {
        "requestId": request_id,
        "from": sender,
        "to": "+4915112345678",
        "message": text,
        "missingParts": False,
        "contentList": [{"msgId": f"m-{request_id}", "sentDate": sent, "sequenceNumber": 1}],
    }


STOP_1, START_2, STOP_3 = (
    reply("stop-1", "STOP", 1),
    reply("start-2", "start", 2),
    reply("stop-3", "Stop.", 3),
)


@both_destinations
@pytest.mark.parametrize(
    ("first_load", "second_load", "versions"),
    [
        pytest.param([STOP_1, START_2], [STOP_3], 2, id="in-order"),
        pytest.param([STOP_3, START_2], [STOP_1], 1, id="out-of-order"),
    ],
)
def test_the_latest_reply_by_sent_time_decides_whatever_order_they_arrive_in(
    run, landed: Landing, warehouse: Warehouse, first_load, second_load, versions
):
    for replies in (first_load, second_load):
        for body in replies:
            landed.land(INBOUND_MESSAGES, body)
        run("inbound_messages", "opt_outs")

    assert warehouse.rows(CURRENT) == [(NUMBER, True, "STOP", "stop-3")]
    # Each change of decision is a version (scd2); an older reply arriving late changes nothing.
    assert warehouse.scalar("SELECT count(*) FROM messaging.opt_outs") == versions


def test_the_asset_shows_how_many_numbers_are_opted_out_to_plot_over_time(run, landed: Landing):
    landed.land(
        INBOUND_MESSAGES,
        reply("a", "STOP", 1, sender="+4915111111111"),
        reply("b", "STOP", 1, sender="+4915122222222"),
        reply("c", "START", 1, sender="+4915133333333"),
    )

    result = run("inbound_messages", "opt_outs")

    assert metadata_of(result, "opt_outs")["opted_out_numbers"] == 2


def test_a_number_written_three_ways_is_one_number(run, landed: Landing, warehouse: Warehouse):
    landed.land(
        INBOUND_MESSAGES,
        reply("a", "STOP", 1, sender="+49 170 1234567"),
        reply("b", "START", 2, sender="0049 170 1234567"),
        reply("c", "STOP", 3, sender="491701234567"),
    )

    run("inbound_messages", "opt_outs")

    assert warehouse.rows(CURRENT) == [(NUMBER, True, "STOP", "c")]


@both_destinations
def test_a_keyword_after_a_line_break_or_in_punctuation_counts(
    run, landed: Landing, warehouse: Warehouse
):
    landed.land(
        INBOUND_MESSAGES,
        reply("a", "(STOP)", 1, sender="+4915111111111"),
        reply("b", "\n\t'stop' please", 1, sender="+4915122222222"),
    )

    run("inbound_messages", "opt_outs")

    assert warehouse.rows(CURRENT) == [
        ("+4915111111111", True, "STOP", "a"),
        ("+4915122222222", True, "STOP", "b"),
    ]


@pytest.mark.parametrize(
    ("text", "decision"),
    [
        ("STOP", ("STOP", True)),
        ("stop it!", ("STOP", True)),
        ("  Unsubscribe me please", ("UNSUBSCRIBE", True)),
        ("Yes", ("YES", False)),
        ("UNSTOP", ("UNSTOP", False)),
        ("Stopp", None),
        ("please STOP sending these", None),
        ("Don't stop", None),
        ("", None),
    ],
)
def test_a_keyword_counts_as_the_whole_message_or_its_first_word_only(text, decision):
    assert (
        Keywords(frozenset({"STOP", "UNSUBSCRIBE"}), frozenset({"YES", "UNSTOP"})).decision(text)
        == decision
    )


def test_a_setting_adds_opt_out_words(
    run, landed: Landing, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SOURCES__MESSAGING__OPT_OUTS__OPT_OUT_KEYWORDS", "halt, Abmelden")
    landed.land(
        INBOUND_MESSAGES,
        reply("a", "Abmelden bitte", 1, sender="+4915111111111"),
        reply("b", "HALT", 1, sender="+4915122222222"),
    )

    run("inbound_messages", "opt_outs")

    assert warehouse.rows(CURRENT) == [
        ("+4915111111111", True, "ABMELDEN", "a"),
        ("+4915122222222", True, "HALT", "b"),
    ]


def test_a_keyword_setting_that_is_not_words_is_refused_naming_it(monkeypatch):
    monkeypatch.setenv("SOURCES__MESSAGING__OPT_OUTS__OPT_IN_KEYWORDS", "START%")

    with pytest.raises(SettingError, match="SOURCES__MESSAGING__OPT_OUTS__OPT_IN_KEYWORDS="):
        Keywords.configured()


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("+49 170 1234567", NUMBER),
        ("0049 (170) 123-4567", NUMBER),
        ("491701234567", NUMBER),
        ("ACME", "ACME"),
        ("12345", "12345"),
    ],
)
def test_numbers_are_compared_in_e164_and_other_senders_as_they_came(written, normalised):
    assert e164(written) == normalised


def test_a_masked_number_keeps_its_country_prefix_and_last_digits():
    assert masked(NUMBER) == "+49170****567"
