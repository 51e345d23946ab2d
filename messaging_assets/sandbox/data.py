"""Deterministic synthetic records for the sandbox API.

Every generator draws from its own ``random.Random`` seeded with a string (``"<seed>:contacts"``),
because string seeds are hashed with SHA-512 and therefore stable across processes, unlike
``hash()``. Records are generated sequentially from one stream, so the first k records are the
same whatever the total count.
"""

from __future__ import annotations

import json
import math
import random
import time
import unicodedata
import uuid
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

# 2024-01-01T00:00:00Z: a fixed origin keeps records identical from run to run.
BASE_EPOCH = 1_704_067_200
# Messages start later than contacts so that their dates look "recent" next to the contact book.
MESSAGE_EPOCH = 1_717_200_000

# The provider writes offsets without a colon (+0200); a mix of offsets makes clients that drop
# the offset, or parse only one of them, visibly wrong.
OFFSETS_MINUTES: tuple[int, ...] = (120, 0, -300, 60, 330)
_OFFSET_TEXT = {
    m: f"{'+' if m >= 0 else '-'}{abs(m) // 60:02d}{abs(m) % 60:02d}" for m in OFFSETS_MINUTES
}
_DAY_TEXT: dict[int, str] = {}
# Lookup tables instead of "%02d" formatting: timestamps are a third of contact generation time.
_HH_MM = tuple(f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60))
_SS = tuple(f"{s:02d}" for s in range(60))


def format_ts(epoch: int, offset_minutes: int = 0) -> str:
    """Format epoch seconds as the provider does: ``2019-07-02T16:47:39+0200``."""
    day, sec = divmod(epoch + offset_minutes * 60, 86_400)
    day_text = _DAY_TEXT.get(day)
    if day_text is None:
        day_text = time.strftime("%Y-%m-%dT", time.gmtime(day * 86_400))
        _DAY_TEXT[day] = day_text
    minute, second = divmod(sec, 60)
    offset = _OFFSET_TEXT.get(offset_minutes)
    if offset is None:
        sign = "+" if offset_minutes >= 0 else "-"
        offset = f"{sign}{abs(offset_minutes) // 60:02d}{abs(offset_minutes) % 60:02d}"
    return f"{day_text}{_HH_MM[minute]}{_SS[second]}{offset}"


def now_ts() -> str:
    return format_ts(int(time.time()), 0)


def money(ten_thousandths: int) -> str:
    """Decimal string with 4 places, as the provider sends prices ("0.0450")."""
    sign = "-" if ten_thousandths < 0 else ""
    whole, frac = divmod(abs(ten_thousandths), 10_000)
    return f"{sign}{whole}.{frac:04d}"


_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)


def _uuid(rng: random.Random) -> str:
    # Same text as str(uuid.UUID(int=..., version=4)) at a tenth of the cost: message creation
    # draws one per message and one per part.
    h = f"{(rng.getrandbits(128) & _UUID_CLEAR) | _UUID_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# --------------------------------------------------------------------------------------------
# Encoded record storage
# --------------------------------------------------------------------------------------------

CHUNK_RECORDS = 4096


@dataclass
class _Chunk:
    blob: bytes  # records joined with b","
    indices: array  # record index of each record still present, ascending
    ends: array  # end offset (exclusive) of each record inside blob


class RecordStore:
    """A list of records kept only in encoded (JSON) form, in chunks.

    Serving a list is then a matter of writing the chunks, with no encoding and no copy, and a
    million contacts cost about as much memory as their JSON text. Removing a record rewrites only
    its chunk.
    """

    def __init__(self, fragments: Iterable[str], chunk_records: int = CHUNK_RECORDS) -> None:
        self._chunks: list[_Chunk] = []
        self._chunk_records = chunk_records
        self._count = 0
        batch: list[str] = []
        for fragment in fragments:
            batch.append(fragment)
            if len(batch) == chunk_records:
                self._add_chunk(batch)
                batch = []
        if batch:
            self._add_chunk(batch)

    def _add_chunk(self, batch: list[str]) -> None:
        first = self._count
        ends = array("q")
        pos = -1
        for fragment in batch:
            pos += len(fragment) + 1
            ends.append(pos)
        # Fragments are ASCII (non-ASCII is \u-escaped), so character offsets are byte offsets.
        blob = ",".join(batch).encode("ascii")
        self._chunks.append(_Chunk(blob, array("q", range(first, first + len(batch))), ends))
        self._count += len(batch)

    def __len__(self) -> int:
        return sum(len(c.indices) for c in self._chunks)

    def remove(self, index: int) -> bool:
        """Remove the record generated at position ``index``; False if it is not present."""
        chunk_no = index // self._chunk_records
        if index < 0 or chunk_no >= len(self._chunks):
            return False
        chunk = self._chunks[chunk_no]
        # Indices are ascending, so a bisect would do; chunks are small enough for a scan in C.
        try:
            k = chunk.indices.index(index)
        except ValueError:
            return False
        start = chunk.ends[k - 1] + 1 if k else 0
        end = chunk.ends[k]
        if k + 1 < len(chunk.indices):
            new_blob = chunk.blob[:start] + chunk.blob[end + 1 :]
        else:
            new_blob = chunk.blob[: max(start - 1, 0)]
        removed = len(chunk.blob) - len(new_blob)
        del chunk.indices[k]
        del chunk.ends[k]
        for j in range(k, len(chunk.ends)):
            chunk.ends[j] -= removed
        chunk.blob = new_blob
        return True

    def body(self, prefix: bytes = b'{"data":[', suffix: bytes = b"]}") -> list[bytes]:
        """The encoded list as chunks to write in order (their concatenation is the JSON text)."""
        parts = [prefix]
        for chunk in self._chunks:
            if not chunk.blob:
                continue
            if len(parts) > 1:
                parts.append(b",")
            parts.append(chunk.blob)
        parts.append(suffix)
        return parts


def store_from_records(records: Iterable[dict[str, Any]]) -> RecordStore:
    return RecordStore(json.dumps(r, separators=(",", ":")) for r in records)


# --------------------------------------------------------------------------------------------
# Contacts
# --------------------------------------------------------------------------------------------

_FIRST_NAMES = (
    "Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannah", "Jonas", "Lena",
    "Lukas", "Marie", "Noah", "Paul", "Sophie", "Tom", "Jürgen", "Zoë", "José", "Björn",
    "Søren", "François", "Łukasz", "Aylin", "Mehmet", "Priya", "Wei", "Olivia", "Liam", "Chloé",
)  # fmt: skip
_LAST_NAMES = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
    "Hoffmann", "Koch", "Richter", "Wolf", "Neumann", "Schwarz", "O'Brien", "García", "Nguyen",
    "Smith", "Dubois", "Jansen", "Kowalski", "Özdemir", "Rossi", "Novák", "Larsen", "Brown",
)  # fmt: skip
_COMPANIES = (
    "Acme GmbH", "Globex AG", "Initech Ltd", "Umbrella Corp", "Stark Industries", "Wayne & Co",
    "Müller Logistik", "Bäckerei Sonnenschein", "Hooli", "Vandelay Industries", 'Café "Zentral"',
)  # fmt: skip
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.de")
_MOBILE_PREFIXES = ("+49151", "+49152", "+49157", "+49160", "+49170", "+49171", "+49176")
_TRANSLIT = str.maketrans({"ø": "o", "ł": "l", "Ł": "L", "ß": "ss", "'": ""})


def _slug(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name.translate(_TRANSLIT))
    return "".join(ch for ch in folded if ch.isascii() and ch.isalnum()).lower()


# Pre-encoded once: contact generation is string concatenation, not json.dumps per record.
_FIRST_JSON = tuple((json.dumps(n), _slug(n)) for n in _FIRST_NAMES)
_LAST_JSON = tuple((json.dumps(n), _slug(n)) for n in _LAST_NAMES)
_COMPANY_JSON = tuple(json.dumps(c) for c in _COMPANIES)


def contact_id(index: int) -> str:
    return f"c-{index + 1:06d}"


def contact_index(contact_id_: str) -> int | None:
    """Position of a contact id in generation order, or None if it is not one of ours."""
    if not contact_id_.startswith("c-") or not contact_id_[2:].isdigit():
        return None
    index = int(contact_id_[2:]) - 1
    return index if index >= 0 and contact_id(index) == contact_id_ else None


def _scramble(index: int) -> int:
    # Multiplying by an odd number not divisible by 5 is a bijection modulo 10**8, so numbers are
    # unique (for fewer than 10**8 contacts) without looking sequential.
    return (index * 2_654_435_761 + 12_345_678) % 100_000_000


def contact_fragments(n: int, seed: int) -> Iterator[str]:
    """JSON text of contacts 0..n-1 (ASCII), in order."""
    rng = random.Random(f"{seed}:contacts")
    getrandbits = rng.getrandbits
    n_first, n_last, n_company = len(_FIRST_JSON), len(_LAST_JSON), len(_COMPANY_JSON)
    n_offsets, n_prefixes, n_domains = (
        len(OFFSETS_MINUTES),
        len(_MOBILE_PREFIXES),
        len(_EMAIL_DOMAINS),
    )
    created = BASE_EPOCH
    for i in range(n):
        # One 64-bit draw, split by mixed radix, replaces nine randrange() calls: randrange is
        # pure Python and was half the cost of generating a contact. The product of all radixes
        # (~1.7e17) is far below 2**64, so the bias is negligible.
        r = getrandbits(64)
        r, first = divmod(r, n_first)
        r, last = divmod(r, n_last)
        r, company_pick = divmod(r, n_company)
        r, has_company = divmod(r, 10)
        r, offset_pick = divmod(r, n_offsets)
        r, prefix_pick = divmod(r, n_prefixes)
        r, domain_pick = divmod(r, n_domains)
        r, step = divmod(r, 599)
        r, was_updated = divmod(r, 3)
        update_delta = r % (90 * 86_400)
        first_json, first_slug = _FIRST_JSON[first]
        last_json, last_slug = _LAST_JSON[last]
        company = _COMPANY_JSON[company_pick] if has_company >= 3 else "null"
        offset = OFFSETS_MINUTES[offset_pick]
        created += step + 1
        created_text = format_ts(created, offset)
        updated_text = (
            format_ts(created + update_delta + 1, offset) if was_updated == 0 else created_text
        )
        yield (
            f'{{"contactId":"c-{i + 1:06d}","firstName":{first_json},"lastName":{last_json},'
            f'"phoneNumber":"{_MOBILE_PREFIXES[prefix_pick]}{_scramble(i):08d}",'
            f'"email":"{first_slug}.{last_slug}{i + 1}@{_EMAIL_DOMAINS[domain_pick]}",'
            f'"company":{company},"createdAt":"{created_text}","updatedAt":"{updated_text}"}}'
        )


def contact_store(n: int, seed: int) -> RecordStore:
    return RecordStore(contact_fragments(n, seed))


# --------------------------------------------------------------------------------------------
# Phone numbers and provisioning requests
# --------------------------------------------------------------------------------------------

# country, E.164 prefix for mobile, landline and toll-free numbers
_PHONE_COUNTRIES = (
    ("DE", "+49151", "+4930", "+49800"),
    ("AT", "+43664", "+431", "+43800"),
    ("CH", "+4179", "+4144", "+41800"),
    ("GB", "+447700", "+4420", "+44800"),
    ("FR", "+336", "+331", "+33800"),
    ("NL", "+316", "+3120", "+31800"),
    ("US", "+1415", "+1212", "+1800"),
)
_CAPABILITIES = {
    "MOBILE": (["SMS", "VOICE"], ["SMS", "VOICE", "MMS"], ["SMS"]),
    "LANDLINE": (["VOICE"], ["VOICE", "FAX"], ["SMS", "VOICE"]),
    "TOLL_FREE": (["VOICE"],),
}


def _phone_number(rng: random.Random, index: int) -> tuple[str, str, str]:
    country, mobile, landline, toll_free = _PHONE_COUNTRIES[rng.randrange(len(_PHONE_COUNTRIES))]
    kind = rng.choices(("MOBILE", "LANDLINE", "TOLL_FREE"), weights=(70, 20, 10))[0]
    prefix = {"MOBILE": mobile, "LANDLINE": landline, "TOLL_FREE": toll_free}[kind]
    # The index part keeps numbers unique; the total stays within E.164's 15 digits.
    return f"{prefix}{_scramble(index) % 10_000_000:07d}", country, kind


def phone_records(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(f"{seed}:phones")
    created = BASE_EPOCH
    records = []
    for i in range(n):
        number, country, kind = _phone_number(rng, i)
        created += rng.randrange(3600, 7 * 86_400)
        records.append(
            {
                "phoneNumber": number,
                "country": country,
                "type": kind,
                "capabilities": list(rng.choice(_CAPABILITIES[kind])),
                "status": "ACTIVE" if rng.random() < 0.9 else "SUSPENDED",
                "createdAt": format_ts(created, rng.choice(OFFSETS_MINUTES)),
            }
        )
    return records


_REJECTION_REASONS = (
    "Proof of address missing",
    "Number not portable",
    "Business registration could not be verified",
    "Number already provisioned by another account",
)


def registration_records(
    n: int, seed: int, phone_numbers: Sequence[str] = ()
) -> list[dict[str, Any]]:
    rng = random.Random(f"{seed}:registrations")
    created = BASE_EPOCH
    records = []
    for i in range(n):
        status = rng.choices(("PENDING", "APPROVED", "REJECTED"), weights=(30, 55, 15))[0]
        if status == "APPROVED" and phone_numbers:
            # An approved request is for a number that is now in the phone book.
            number = phone_numbers[rng.randrange(len(phone_numbers))]
        else:
            number = _phone_number(rng, 50_000_000 + i)[0]
        created += rng.randrange(3600, 10 * 86_400)
        updated = created if status == "PENDING" else created + rng.randrange(600, 5 * 86_400)
        offset = rng.choice(OFFSETS_MINUTES)
        records.append(
            {
                "requestId": _uuid(rng),
                "phoneNumber": number,
                "status": status,
                "createdAt": format_ts(created, offset),
                "updatedAt": format_ts(updated, offset),
                "rejectionReason": rng.choice(_REJECTION_REASONS) if status == "REJECTED" else None,
            }
        )
    return records


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------

FINAL_STATES = ("DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED")
_FINAL_WEIGHTS = (85, 7, 5, 3)
_FINAL_BY_PERCENT = tuple(
    s for s, w in zip(FINAL_STATES, _FINAL_WEIGHTS, strict=True) for _ in range(w)
)
_DISCOUNTS = (0, 0, 0, 5, 10)  # percent off the list price, per message
_ERRORS = {
    "UNDELIVERABLE": (
        (1, "Unknown subscriber"),
        (27, "Absent subscriber"),
        (9, "Illegal subscriber"),
    ),
    "EXPIRED": ((3, "Validity period expired"),),
    "REJECTED": ((10, "Rejected by operator"), (11, "Destination blocked")),
}
_STATUS_TEXT = {
    "ACCEPTED": "Accepted by gateway",
    "BUFFERED": "Buffered, delivery will be retried",
    "DELIVERED": "Delivered to handset",
}
# E.164 country code -> (mobile network codes, price per part in 1/10000 EUR)
_NETWORKS = (
    ("49", ("26201", "26202", "26203"), 450),
    ("43", ("23201", "23203", "23205"), 590),
    ("41", ("22801", "22802"), 520),
    ("44", ("23410", "23415", "23420"), 380),
    ("33", ("20801", "20810", "20820"), 610),
    ("31", ("20404", "20408", "20416"), 710),
    ("1", ("310260", "310410", "311480"), 95),
)
_DEFAULT_NETWORK = (("90101",), 800)
PART_LENGTH = 160
MAX_PARTS = 3
_WORDS = (
    "your", "order", "has", "shipped", "today", "please", "confirm", "appointment", "tomorrow",
    "code", "verification", "reminder", "invoice", "payment", "received", "thank", "you", "for",
    "delivery", "window", "between", "and", "pm", "am", "reply", "STOP", "to", "opt", "out",
    "Grüße", "Überweisung", "eingegangen",
)  # fmt: skip
# Texts are slices of one long shuffled filler: cheap, varied, and long enough for three parts.
_FILLER = " ".join(random.Random("filler").choices(_WORDS, k=400))


def _network(to: str) -> tuple[tuple[str, ...], int]:
    digits = to.lstrip("+0")
    for prefix, networks, price in _NETWORKS:
        if digits.startswith(prefix):
            return networks, price
    return _DEFAULT_NETWORK


@dataclass
class StoredMessage:
    """A message and the outcome it is destined for; ``record`` is what the API answers."""

    record: dict[str, Any]
    final_status: str
    offset: int
    sent_at: int
    done_at: int
    price: int
    price_effective: int
    error: tuple[int, str] | None
    date_key: str  # "sentDate", or "sendDate" as an older client spells it
    expired: bool = False

    def advance(self) -> None:
        """Move one step along ACCEPTED -> BUFFERED -> final; final states never change."""
        record = self.record
        status = record["status"]
        if status == "ACCEPTED":
            sent = format_ts(self.sent_at, self.offset)
            record["status"] = "BUFFERED"
            record["sentDate"] = sent
            record["overallPrice"] = money(self.price * record["size"])
            record["priceEffective"] = money(self.price_effective * record["size"])
            for part in record["parts"]:
                part[self.date_key] = sent
                part["price"] = money(self.price)
                part["priceEffective"] = money(self.price_effective)
                part["deliveryState"] = "BUFFERED"
                part["statusText"] = _STATUS_TEXT["BUFFERED"]
        elif status == "BUFFERED":
            final = self.final_status
            done = format_ts(self.done_at, self.offset)
            record["status"] = final
            record["doneDate"] = done
            if self.error is not None:
                record["errorCode"], record["errorReason"] = self.error
            for part in record["parts"]:
                part["doneDate"] = done
                part["deliveryState"] = final
                part["errorCode"] = self.error[0] if self.error else None
                part["statusText"] = self.error[1] if self.error else _STATUS_TEXT[final]


class MessageFactory:
    """Creates messages. Outcomes come from one seeded stream, in creation order; requestIds are
    random, as the provider's are, so that a restarted sandbox never reuses one already stored."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"{seed}:messages")
        self._counter = 0

    def create(self, to: str, sender: str, text: str, reference: str | None) -> StoredMessage:
        rng = self._rng
        self._counter += 1
        request_id = str(uuid.uuid4())
        networks, price = _network(to)
        size = min(max(1, math.ceil(len(text) / PART_LENGTH)), MAX_PARTS)
        # One 64-bit draw split by mixed radix: randrange()/choice() are pure Python and this runs
        # for every send and every pre-created message.
        r = rng.getrandbits(64)
        r, final_pick = divmod(r, 100)
        r, error_pick = divmod(r, 6)
        r, offset_pick = divmod(r, len(OFFSETS_MINUTES))
        r, submit_jitter = divmod(r, 7)
        r, send_delay = divmod(r, 4)
        r, done_delay = divmod(r, 298)
        r, old_spelling = divmod(r, 10)
        r, discount_pick = divmod(r, len(_DISCOUNTS))
        r, network_pick = divmod(r, len(networks))
        ttid = 10_000_000 + r % 90_000_000
        final = _FINAL_BY_PERCENT[final_pick]
        errors = _ERRORS.get(final)
        error = errors[error_pick % len(errors)] if errors else None
        offset = OFFSETS_MINUTES[offset_pick]
        submitted = MESSAGE_EPOCH + self._counter * 7 + submit_jitter
        sent = submitted + 1 + send_delay
        # Expired messages stay buffered for the whole validity period (48 h by default).
        done = sent + (2880 * 60 if final == "EXPIRED" else 2 + done_delay)
        date_key = "sendDate" if old_spelling == 0 else "sentDate"
        price_effective = price * (100 - _DISCOUNTS[discount_pick]) // 100
        parts = [
            {
                "partId": _uuid(rng),
                "currency": "EUR",
                "price": None,
                "priceEffective": None,
                date_key: None,
                "doneDate": None,
                "deliveryState": "ACCEPTED",
                "errorCode": None,
                "statusText": _STATUS_TEXT["ACCEPTED"],
            }
            for _ in range(size)
        ]
        record = {
            "requestId": request_id,
            "doneDate": None,
            "errorCode": None,
            "errorReason": None,
            "from": sender,
            "href": f"/messaging/v1/messages/{request_id}",
            "mccmnc": networks[network_pick],
            "overallPrice": None,
            "parts": parts,
            "priceEffective": None,
            "reference": reference,
            "sentDate": None,
            "size": size,
            "status": "ACCEPTED",
            "submitDate": format_ts(submitted, offset),
            "to": to,
            "ttid": str(ttid),
        }
        return StoredMessage(
            record=record,
            final_status=final,
            offset=offset,
            sent_at=sent,
            done_at=done,
            price=price,
            price_effective=price_effective,
            error=error,
            date_key=date_key,
        )

    def random_send(self) -> tuple[str, str, str]:
        """Recipient, sender and text for a message sent by 'another system'."""
        rng = self._rng
        prefix = rng.choice(("+49151", "+49170", "+43664", "+447700", "+336", "+1415"))
        to = f"{prefix}{rng.randrange(10_000_000):07d}"
        sender = rng.choice(("SandboxCo", "+4915100000001", "Alerts", "+14155550100"))
        length = rng.randrange(10, PART_LENGTH * MAX_PARTS)
        start = rng.randrange(len(_FILLER) - length)
        return to, sender, _FILLER[start : start + length].strip() or "Hello"
