"""The receiver's landing zone: file names and lines as the loader reads them back."""

from __future__ import annotations

import os
from pathlib import Path

from messaging_assets.receiver import landing


def test_landing_names_and_lines_round_trip(tmp_path: Path):
    from datetime import datetime, timezone

    from messaging_assets.receiver.storage import LocalFolder

    written_at = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)
    name = landing.file_name(written_at, "00ff00ff_42", 7)
    lines = landing.event_line(written_at, "inbound_messages", b"\x00\xff", "not UTF-8 (byte 1)")
    lines += landing.event_line(written_at, "inbound_messages", '{"a": "\u2028"}'.encode(), None)

    LocalFolder(tmp_path, landing.ENDPOINTS).write("inbound_messages", name, lines)

    assert name == "20260301T100000.123456Z-00ff00ff_42-000007.jsonl"
    assert lines.isascii() and lines.count(b"\n") == 2
    (first, second) = landing.read(tmp_path, "inbound_messages")
    assert (first.body, first.readable, first.text) == (b"\x00\xff", False, None)
    assert (second.body, second.problem, second.received_at) == (
        '{"a": "\u2028"}'.encode(),
        None,
        written_at,
    )
    assert os.listdir(tmp_path / "inbound_messages") == [name]
