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

# 2024-06-01T00:00:00Z: a fixed origin keeps messages' dates identical from run to run.
MESSAGE_EPOCH = 1_717_200_000

# The provider writes offsets without a colon (+0200); a mix of offsets makes clients that drop
# the offset, or parse only one of them, visibly wrong.
OFFSETS_MINUTES: tuple[int, ...] = (120, 0, -300, 60, 330)
_OFFSET_TEXT = {
    m: f"{'+' if m >= 0 else '-'}{abs(m) // 60:02d}{abs(m) % 60:02d}" for m in OFFSETS_MINUTES
}
_DAY_TEXT: dict[int, str] = {}
# Lookup tables instead of "%02d" formatting: every message state change formats timestamps.
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

    def records(self, start: int = 0, stop: int | None = None) -> list[bytes | memoryview]:
        """Records ``start`` to ``stop - 1`` of the list as it is now, as encoded runs of records.

        Each run is comma-joined JSON records; a comma goes between runs. Whole chunks are their
        blob as it is (no copy), partial ones a view into it.
        """
        stop = len(self) if stop is None else stop
        runs: list[bytes | memoryview] = []
        first = 0  # list position of the chunk's first present record
        for chunk in self._chunks:
            count = len(chunk.indices)
            lo, hi = max(start - first, 0), min(stop - first, count)
            first += count
            if lo >= hi:
                if first >= stop:
                    break
                continue
            if lo == 0 and hi == count:
                runs.append(chunk.blob)
            else:
                begin = chunk.ends[lo - 1] + 1 if lo else 0
                runs.append(memoryview(chunk.blob)[begin : chunk.ends[hi - 1]])
        return runs


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
_TITLES = (
    "Geschäftsführerin", "Head of Sales", "Einkauf", "CTO", "Office Manager", "Buchhaltung",
    "Customer Success Manager", "Directeur général", "Projektleiter", "Dr.",
)  # fmt: skip
_STREETS = (
    "Hauptstraße", "Bahnhofstraße", "Königsallee", "Friedrichstraße", "Mariahilfer Straße",
    "Rue de Rivoli", "Damrak", "Baker Street", "Bäckergasse", "Schloßplatz", "Market Street",
)  # fmt: skip
_CITIES = (
    "10115 Berlin, DE", "80331 München, DE", "20095 Hamburg, DE", "50667 Köln, DE",
    "1010 Wien, AT", "8001 Zürich, CH", "75001 Paris, FR", "1012 Amsterdam, NL",
    "London W1U 6SB, GB", "Kraków 31-001, PL",
)  # fmt: skip
_TIERS = ("platinum", "gold", "silver", "silver", "bronze", "bronze")
_REGIONS = ("DACH", "EMEA", "NORDICS", "NA", "APAC")
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.de")
_MOBILE_PREFIXES = ("+49151", "+49152", "+49157", "+49160", "+49170", "+49171", "+49176")
_TRANSLIT = str.maketrans({"ø": "o", "ł": "l", "Ł": "L", "ß": "ss", "'": ""})


def _slug(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name.translate(_TRANSLIT))
    return "".join(ch for ch in folded if ch.isascii() and ch.isalnum()).lower()


def _inner(text: str) -> str:
    """JSON string text without its quotes, so encoded pieces can be concatenated."""
    return json.dumps(text)[1:-1]


# Pre-encoded once: contact generation is string concatenation, not json.dumps per record.
_FIRST_JSON = tuple((_inner(n), _slug(n)) for n in _FIRST_NAMES)
_LAST_JSON = tuple((_inner(n), _inner(n[0]), _slug(n)) for n in _LAST_NAMES)
_COMPANY_JSON = tuple(_inner(c) for c in _COMPANIES)
_OPTIONAL_JSON = tuple(f',"contactTitle":"{_inner(t)}"' for t in _TITLES) + ("",) * 3
_STREET_JSON = tuple(_inner(s) for s in _STREETS)
_CITY_JSON = tuple(_inner(c) for c in _CITIES)
_TAGS_JSON = tuple(
    f',"tags":{{"tier":"{tier}","region":"{region}"}}' for tier in _TIERS for region in _REGIONS
)


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


def contact_fragments(n: int, seed: int, tags: bool = False) -> Iterator[str]:
    """JSON text of contacts 0..n-1 (ASCII), in order; ``tags`` adds a nested ``tags`` object
    without changing any other field."""
    rng = random.Random(f"{seed}:contacts")
    getrandbits = rng.getrandbits
    n_first, n_last, n_company = len(_FIRST_JSON), len(_LAST_JSON), len(_COMPANY_JSON)
    n_prefixes, n_domains, n_titles = len(_MOBILE_PREFIXES), len(_EMAIL_DOMAINS), len(_TITLES)
    n_streets, n_cities, n_tags = len(_STREET_JSON), len(_CITY_JSON), len(_TAGS_JSON)
    for i in range(n):
        # One 64-bit draw, split by mixed radix, replaces a dozen randrange() calls: randrange is
        # pure Python and would be most of the cost of a contact. The product of all radixes
        # (~2.1e13) is far below 2**64, so the bias is negligible.
        r = getrandbits(64)
        r, first = divmod(r, n_first)
        r, last = divmod(r, n_last)
        r, company_pick = divmod(r, n_company)
        r, is_private = divmod(r, 10)
        r, prefix_pick = divmod(r, n_prefixes)
        r, domain_pick = divmod(r, n_domains)
        r, title_pick = divmod(r, n_titles + 3)
        r, street_pick = divmod(r, n_streets)
        r, city_pick = divmod(r, n_cities)
        r, tags_pick = divmod(r, n_tags)
        house = r % 199 + 1
        first_json, first_slug = _FIRST_JSON[first]
        last_json, initial_json, last_slug = _LAST_JSON[last]
        number = i + 1
        head = (
            f'{{"contactId":"c-{number:06d}",'
            f'"contactName":"{first_json} {last_json}",'
            f'"contactEmail":"{first_slug}.{last_slug}{number}@{_EMAIL_DOMAINS[domain_pick]}",'
            f'"contactPhone":"{_MOBILE_PREFIXES[prefix_pick]}{_scramble(i):08d}",'
        )
        # Private people (3 in 10) have no company, and so no company fields and no job title.
        if is_private < 3:
            body = f'"friendlyName":"{first_json} {initial_json}."'
        else:
            company = _COMPANY_JSON[company_pick]
            body = (
                f'"friendlyName":"{first_json} ({company})","companyName":"{company}",'
                f'"companyAddress":"{_STREET_JSON[street_pick]} {house}, {_CITY_JSON[city_pick]}"'
                f"{_OPTIONAL_JSON[title_pick]}"
            )
        yield f"{head}{body}{_TAGS_JSON[tags_pick]}}}" if tags else f"{head}{body}}}"


def contact_store(n: int, seed: int, tags: bool = False) -> RecordStore:
    return RecordStore(contact_fragments(n, seed, tags))


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
_NUMBER_PURPOSES = (
    "Kundenservice", "Support", "Vertrieb", "Alerts", "Zentrale", "Notfall-Hotline",
    "Service après-vente", "Marketing", "Zwei-Faktor-Codes", "Lieferstatus",
)  # fmt: skip
PHONE_STATUSES = ("ACTIVE", "SUSPENDED")
REGISTRATION_STATUSES = ("PENDING", "APPROVED", "REJECTED")


def _accounts(seed: int) -> tuple[str, ...]:
    # A main account and two sub-accounts, shared by phones and registrations.
    rng = random.Random(f"{seed}:accounts")
    return tuple(f"acc-{rng.getrandbits(32):08x}" for _ in range(3))


def _phone_number(rng: random.Random, index: int) -> tuple[str, str]:
    country, mobile, landline, toll_free = _PHONE_COUNTRIES[rng.randrange(len(_PHONE_COUNTRIES))]
    prefix = rng.choices((mobile, landline, toll_free), weights=(70, 20, 10))[0]
    # The index part keeps numbers unique; the total stays within E.164's 15 digits.
    return f"{prefix}{_scramble(index) % 10_000_000:07d}", country


def _provisioning(rng: random.Random, accounts: Sequence[str], contacts: int) -> dict[str, Any]:
    """The fields phones and registrations share; the contact is one of the first ``contacts``,
    or none (1 in 8) for a number nobody in particular answers."""
    record = {
        "requestId": _uuid(rng),
        "accountId": accounts[rng.randrange(len(accounts))],
        "friendlyName": f"{rng.choice(_NUMBER_PURPOSES)} {rng.randrange(1, 20)}",
    }
    if contacts and rng.randrange(8):
        record["contactId"] = contact_id(rng.randrange(contacts))
    return record


def phone_records(n: int, seed: int, contacts: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(f"{seed}:phones")
    accounts = _accounts(seed)
    for i in range(n):
        number, country = _phone_number(rng, i)
        yield {
            "phoneNumber": number,
            "country": country,
            **_provisioning(rng, accounts, contacts),
            "status": PHONE_STATUSES[0] if rng.random() < 0.9 else PHONE_STATUSES[1],
        }


def registration_records(n: int, seed: int, contacts: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(f"{seed}:registrations")
    accounts = _accounts(seed)
    for _ in range(n):
        record = _provisioning(rng, accounts, contacts)
        record["status"] = rng.choices(REGISTRATION_STATUSES, weights=(30, 55, 15))[0]
        yield record


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------

FINAL_STATES = ("DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED")
_FINAL_WEIGHTS = (85, 7, 5, 3)
_FINAL_BY_PERCENT = tuple(
    s for s, w in zip(FINAL_STATES, _FINAL_WEIGHTS, strict=True) for _ in range(w)
)
_DISCOUNTS = (0, 0, 0, 5, 10)  # percent off the list price, per message
# GSM error codes are text in the provider's contract, never numbers.
_ERRORS = {
    "UNDELIVERABLE": (
        ("1", "Unknown subscriber"),
        ("27", "Absent subscriber"),
        ("9", "Illegal subscriber"),
    ),
    "EXPIRED": (("3", "Validity period expired"),),
    "REJECTED": (("10", "Rejected by operator"), ("11", "Destination blocked")),
}
# The dates from which the price lists apply (the message's and parts' priceEffective).
_PRICE_LISTS = ("2024-01-01T00:00:00+0100", "2024-04-01T00:00:00+0200", "2024-05-15T00:00:00+0200")
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
STATUS_TEXT_LENGTH = 20
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
    """A message and the outcome it is destined for; ``record`` is what the API answers.

    Fields not known yet (``sentDate`` before the message left, ``doneDate`` and ``errorCode``
    before it is final, a ``reference`` never given) are absent, not null: the provider's
    contract types them as strings.
    """

    record: dict[str, Any]
    final_status: str
    offset: int
    sent_at: int
    done_at: int
    price: int  # per part, in 1/10000 EUR; negative for a payout
    price_effective: str
    error: tuple[str, str] | None
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
            record["priceEffective"] = self.price_effective
            for part in record["parts"]:
                part[self.date_key] = sent
                part["price"] = money(self.price)
                part["priceEffective"] = self.price_effective
                part["deliveryState"] = "BUFFERED"
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
                if self.error is not None:
                    part["errorCode"] = self.error[0]


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
        # 64-bit draws split by mixed radix: randrange()/choice() are pure Python and this runs
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
        r = rng.getrandbits(32)
        r, ttid_as_number = divmod(r, 10)
        r, payout = divmod(r, 200)
        price_list = r % len(_PRICE_LISTS)
        final = _FINAL_BY_PERCENT[final_pick]
        errors = _ERRORS.get(final)
        offset = OFFSETS_MINUTES[offset_pick]
        submitted = MESSAGE_EPOCH + self._counter * 7 + submit_jitter
        sent = submitted + 1 + send_delay
        # Expired messages stay buffered for the whole validity period (48 h by default).
        done = sent + (2880 * 60 if final == "EXPIRED" else 2 + done_delay)
        price = price * (100 - _DISCOUNTS[discount_pick]) // 100
        record: dict[str, Any] = {
            "requestId": request_id,
            "status": "ACCEPTED",
            "submitDate": format_ts(submitted, offset),
            "from": sender,
            "to": to,
            "href": f"/messaging/v1/messages/{request_id}",
            "size": size,
            "mccmnc": networks[network_pick],
            # The spec's own example ttid is a number; most answers carry text.
            "ttid": ttid if ttid_as_number == 0 else str(ttid),
            "parts": [
                {
                    "partId": _uuid(rng),
                    "currency": "EUR",
                    "deliveryState": "ACCEPTED",
                    "statusText": text[k * PART_LENGTH : k * PART_LENGTH + STATUS_TEXT_LENGTH],
                }
                for k in range(size)
            ],
        }
        if reference is not None:
            record["reference"] = reference
        return StoredMessage(
            record=record,
            final_status=final,
            offset=offset,
            sent_at=sent,
            done_at=done,
            # A rare payout (a reverse-billed message) is a negative price.
            price=-(price // 4) if payout == 0 else price,
            price_effective=_PRICE_LISTS[price_list],
            error=errors[error_pick % len(errors)] if errors else None,
            date_key="sendDate" if old_spelling == 0 else "sentDate",
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


# --------------------------------------------------------------------------------------------
# Inbound messages
# --------------------------------------------------------------------------------------------

# Networks a message to the account's numbers comes from: MCC and MNCs. They look like numbers
# and are text: an MNC keeps its leading zero.
_ORIGIN_NETWORKS = (
    ("262", ("01", "02", "03", "07")),
    ("232", ("01", "03", "05")),
    ("260", ("02", "06", "09")),
)
_SENDERS = ("+4915112345678", "+4917098765432", "+436641234567", "+48601234567", "+4915790001234")
# Characters per part of a concatenated message (160 less the header that joins the parts).
INBOUND_PART_LENGTH = 153
# How the provider writes a part that did not arrive within 10 minutes.
MISSING_PART = "<...>"
INBOUND_PRICE_EFFECTIVE = "2018-06-01T00:00:00+0200"
# A part's price is a JSON number here (unlike outbound parts): mostly free, sometimes a payout.
_INBOUND_PRICES = (0.0, 0.0, 0.0, -0.005, 0.01)
# Each kind in turn: (parts sent, parts missing).
_INBOUND_KINDS = ((3, ()), (1, ()), (3, (2,)))


def inbound_messages(
    rng: random.Random, count: int, numbers: Sequence[str]
) -> list[dict[str, Any]]:
    """`count` messages to the account's `numbers`, as the provider posts them (`InboundMessage`),
    sent a few seconds apart up to now: in turn a message of three parts whose `contentList` is
    out of sequence order, a single part, and three parts of which the second never arrived
    (`missingParts`, `<...>` in its text). Timestamps carry `+0200`; prices are JSON numbers."""
    now = int(time.time())
    messages = []
    for n in range(count):
        size, missing = _INBOUND_KINDS[n % len(_INBOUND_KINDS)]
        sent = now - (count - n) * 7
        price = rng.choice(_INBOUND_PRICES)
        mcc, mncs = rng.choice(_ORIGIN_NETWORKS)
        start = rng.randrange(len(_FILLER) - INBOUND_PART_LENGTH * size)
        texts = [
            _FILLER[start + k * INBOUND_PART_LENGTH : start + (k + 1) * INBOUND_PART_LENGTH]
            for k in range(size)
        ]
        parts = [
            {
                "msgId": str(uuid.uuid4()),
                "sentDate": format_ts(sent + k, 120),
                "sequenceNumber": k + 1,
                "price": price,
                "currency": "EUR",
                "priceEffective": INBOUND_PRICE_EFFECTIVE,
            }
            for k in range(size)
            if k + 1 not in missing
        ]
        messages.append(
            {
                # Random, as the provider's: a restarted sandbox never repeats one.
                "requestId": str(uuid.uuid4()),
                "from": rng.choice(_SENDERS),
                "to": rng.choice(numbers),
                "message": "".join(
                    MISSING_PART if k + 1 in missing else text for k, text in enumerate(texts)
                ),
                "missingParts": bool(missing),
                # The last part first: the provider lists parts as they came in.
                "contentList": parts[::-1],
                "originMCC": mcc,
                "originMNC": rng.choice(mncs),
                "originTtId": f"{rng.randrange(100_000):05d}",
                "totalPrice": round(price * len(parts), 6),
                "size": size,
            }
        )
    return messages


def reply_message(sender: str, to: str, text: str) -> dict[str, Any]:
    """A one-part inbound message from `sender` saying `text`, sent now: a recipient's reply,
    such as STOP or START."""
    return {
        "requestId": str(uuid.uuid4()),
        "from": sender,
        "to": to,
        "message": text,
        "missingParts": False,
        "contentList": [
            {
                "msgId": str(uuid.uuid4()),
                "sentDate": format_ts(int(time.time()), 120),
                "sequenceNumber": 1,
                "price": 0.0,
                "currency": "EUR",
                "priceEffective": INBOUND_PRICE_EFFECTIVE,
            }
        ],
        "size": 1,
    }
