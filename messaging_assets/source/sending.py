"""Sending an SMS: billed, so at most once, and never lost once the API accepted it.

Every send goes through the send journal (journal.py), before its request leaves and the moment
its answer arrives. So a send whose run fails after the answer (parsing, normalize, load, a killed
process) is stored by the next materialization of `messaging/sms`; one whose answer never came (a
5xx, a timeout, an interrupt) is stored with outcome `unknown` and the reference to ask the
provider about. The reference comes from the Dagster run (the root run of a re-execution), so
re-executing a run never sends again.

With SOURCES__MESSAGING__RECEIVER__PUBLIC_URL set, a send asks the provider to post its delivery
reports to the receiver (`callbackUrl`, `callbackMethod=POST`). That URL holds the receiver's
token, a secret redacted from errors and logs as the key is.

A send to a number that opted out (`messaging.opt_outs`, opt_outs.py) is refused before it is
journaled, unless the run config says `send_to_opted_out`; the opt-out it overrode is then
recorded with the send (`opt_out_override`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timezone
from typing import Any

import dlt
from dlt.extract.resource import DltResource
from requests import Response
from requests.exceptions import RequestException

from messaging_assets.receiver.settings import ReportCallback, report_callback
from messaging_assets.registry import SEND
from messaging_assets.source.answers import Answers, ApiError, Redactor, explanation
from messaging_assets.source.api import Api
from messaging_assets.source.journal import ACCEPTED, UNKNOWN, Journal, as_stored
from messaging_assets.source.opt_outs import OptOut, current_opt_out, masked
from messaging_assets.source.sessions import certainly_not_sent
from messaging_assets.warehouse.connection import connect

log = logging.getLogger(__name__)

NO_BODY = "accepted without an answer body: no requestId, so no status can be looked up"
# The one logger that writes a request's URL (at DEBUG): a send's URL carries the callback's token.
URL_LOGGER = logging.getLogger("urllib3.connectionpool")


@dataclass(frozen=True)
class SendRequest:
    to: str
    sender: str
    message: str
    # The client reference sent with the SMS and echoed back: the one id every send has.
    reference: str
    run_id: str
    # Send even if `to` opted out (a message the law allows, such as confirming the opt-out).
    send_to_opted_out: bool = False


def reference_for(run_id: str, root_run_id: str | None) -> str:
    """A run's send reference; a re-execution shares its root run's, so it never sends again."""
    return f"messaging-assets-{root_run_id or run_id}"


class _Redacting(logging.Filter):
    """Writes a record's message with the secrets redacted."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.redact(record.getMessage()), None
        return True


@contextlib.contextmanager
def urls_redacted(redact: Redactor) -> Iterator[None]:
    """While a send's request is out: urllib3's DEBUG line with its URL is written redacted."""
    redacting = _Redacting(redact)
    URL_LOGGER.addFilter(redacting)
    try:
        yield
    finally:
        URL_LOGGER.removeFilter(redacting)


def without_secrets(error: RequestException, redact: Redactor) -> RequestException:
    """The same error, its message redacted (a connection error quotes the URL, query and all),
    to be raised where nothing chains the original: dlt's trace records chained exceptions."""
    return type(error)(redact(str(error)))


OVERRIDE_FIELD = "send_to_opted_out"


class OptedOut(RuntimeError):
    """A send to a number that opted out, refused before anything was sent."""

    def __init__(self, opt_out: OptOut) -> None:
        super().__init__(
            f"messaging/sms: {masked(opt_out.number)} opted out: {opted_out_by(opt_out)}. "
            f"Nothing was sent. To send a message the law allows anyway (such as confirming the "
            f"opt-out), set `{OVERRIDE_FIELD}: true` in the run config "
            f"(ops.messaging_sms.config); the send then records the opt-out it overrode."
        )


def opted_out_by(opt_out: OptOut) -> str:
    sent = opt_out.decided_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f"it replied {opt_out.keyword} at {sent} (inbound message {opt_out.request_id}, "
        f"messaging.opt_outs)"
    )


class SendOutcomeUnknown(RuntimeError):
    """A send that may have reached the API, and so may have been billed: never repeated."""

    def __init__(self, reference: str, what: str) -> None:
        super().__init__(
            f"messaging/sms: the send may or may not have reached the API ({what}). It was not "
            f"retried, to avoid sending and billing it twice; the next materialization of "
            f"messaging/sms stores it with outcome 'unknown'. Ask the provider for reference "
            f"`{reference}` before sending again."
        )


def send_resource(api: Api, request: SendRequest | None) -> DltResource:
    """`sms` as a dlt resource: this run's send, if configured, and every journaled send not
    stored yet."""
    url = api.base_url.rstrip("/") + SEND.path

    def send(
        journal: Journal,
        request: SendRequest,
        callback: ReportCallback | None,
        send_api: Api,
        answers: Answers,
    ) -> None:
        earlier = journal.entry(request.reference)
        if earlier:
            log.warning(
                "messaging/sms: run %s already sent `%s` (%s); not sending it again.",
                earlier["run_id"],
                request.reference,
                earlier["state"],
            )
            return
        # Before the journal and the request: a refused send leaves no trace and bills nothing.
        opt_out = current_opt_out(journal.warehouse, request.to)
        override = None
        if opt_out is not None:
            if not request.send_to_opted_out:
                raise OptedOut(opt_out)
            override = f"{OVERRIDE_FIELD}: {opted_out_by(opt_out)}"
            log.warning("messaging/sms: sending to an opted-out number: %s.", override)
        journal.add(request.reference, request.run_id, request.to, request.sender, override)
        params = {
            "to": request.to,
            "from": request.sender,
            "message": request.message,
            "reference": request.reference,
        }
        if callback:
            # The provider then posts each status change there (POST is also its default).
            params |= {"callbackUrl": callback.url, "callbackMethod": "POST"}
        failure: RequestException | None = None
        try:
            with urls_redacted(send_api.redact):
                response = send_api.send_session().get(url, params=params, auth=send_api.auth)
        except RequestException as error:
            # Raised below, outside this handler, so that no error chains this one.
            failure = error
        except BaseException as interrupt:
            # Ctrl-C or SIGTERM (Dagster raises them here) after the request left: the send may
            # have been billed, and the user must learn its reference now.
            what = "interrupted while waiting for the answer"
            journal.settle(request.reference, UNKNOWN, what)
            raise SendOutcomeUnknown(request.reference, what) from interrupt
        if failure is not None:
            if certainly_not_sent(None, failure):
                journal.forget(request.reference)
                raise without_secrets(failure, send_api.redact)
            journal.settle(request.reference, UNKNOWN, f"no answer: {type(failure).__name__}")
            raise SendOutcomeUnknown(request.reference, type(failure).__name__)
        settle(journal, request.reference, response, answers)

    def settle(journal: Journal, reference: str, response: Response, answers: Answers) -> None:
        status = response.status_code
        if 400 <= status < 500:
            # Refused (a 429 too, once retries are spent): not billed, free to be sent again.
            journal.forget(reference)
            answers.check(response)
        if status >= 500:
            said = explanation(response, answers.redact)
            journal.settle(reference, UNKNOWN, f"answered {status}: {said}".rstrip(": "))
            raise SendOutcomeUnknown(reference, f"answered {status}")
        if not response.content:
            journal.settle(reference, ACCEPTED, NO_BODY)
            return
        try:
            answer = answers.record(response, answers.json(response))
        except ApiError as error:
            journal.settle(reference, ACCEPTED, f"accepted; the answer was not understood: {error}")
            return
        journal.settle(reference, ACCEPTED, None if answer.get("requestId") else NO_BODY, answer)

    def sms() -> Iterator[list[dict[str, Any]]]:
        with connect(dlt.current.pipeline()) as warehouse:
            journal = Journal(warehouse)
            journal.create()
            if request:
                # Read in the run, as the resource settings are, and before anything is sent: a
                # mistake fails only sends, and sends nothing.
                callback = report_callback()
                send_api = api.redacting(callback.token) if callback else api
                answers = send_api.answers(SEND, send_api.settings(SEND))
                send(journal, request, callback, send_api, answers)
            unstored = journal.unstored()
        for entry in unstored:
            if entry["state"] != ACCEPTED:
                log.warning(
                    "messaging/sms: the send with reference `%s` (run %s) got no answer; stored "
                    "with outcome 'unknown': ask the provider before sending again.",
                    entry["reference"],
                    entry["run_id"],
                )
        yield [as_stored(entry) for entry in unstored]

    return dlt.resource(sms, **SEND.merge_hints())()
