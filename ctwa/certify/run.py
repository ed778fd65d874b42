"""The certification run: each criterion of the spec's "Partner Acceptance Criteria" and "Test
Partner Integration" as a named check against the partner's real endpoint, with what it saw.

Interactive steps (the tester's phone: write first, reply, tap) wait for the events they need,
with a countdown; nothing waits for a key press, so a simulated user (the sandbox's) completes
them unattended.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ctwa.certify.checks import (
    ATTESTED,
    COMPONENT_KINDS,
    FAIL,
    MANUAL_CRITERIA,
    NOT_ATTESTED,
    NOT_TESTED,
    PASS,
    Check,
    component_kinds,
    url_buttons,
)
from ctwa.certify.evidence import Exchanges
from ctwa.infra.errors import InputError
from ctwa.roundtrip.diagnose import line as diagnosis_line
from ctwa.roundtrip.record import message_kind, send_record
from ctwa.store.db import Store
from ctwa.wire.callbacks import INBOUND_TYPES

FREEFORM_KINDS = ("text", "image", "audio", "video", "file")
SAMPLE_MEDIA = {"image": "https://upload.wikimedia.org/wikipedia/commons/a/a9/Example.jpg",
                "audio": "https://upload.wikimedia.org/wikipedia/commons/c/c8/Example.ogg",
                "video": "https://upload.wikimedia.org/wikipedia/commons/transcoded/c/c0/"
                         "Big_Buck_Bunny_4K.webm/Big_Buck_Bunny_4K.webm.360p.webm",
                "file": "https://upload.wikimedia.org/wikipedia/commons/2/20/Example.pdf"}
#: A well-formed number no one can have: country code 999 is not assigned.
DEFAULT_INVALID_TO = "99912345678"


@dataclass
class CertifyOptions:
    to: str
    waba: str
    endpoint: Any  # ctwa.send.endpoint.Endpoint
    library: Any  # ctwa.templates.library.TemplateLibrary
    templates: list[str] | None = None  # None: every approved, sendable one
    listen: str = "127.0.0.1:8787"
    public_url: str | None = None
    scale: int | None = None
    scale_numbers: tuple[str, ...] = ()
    interactive: bool = True
    attest: Path | None = None
    invalid_to: str = DEFAULT_INVALID_TO
    callback_timeout: float = 60.0
    interactive_timeout: float = 300.0
    deadline: float = 1.0
    timeout: float = 10.0
    expectations: Any = None  # ctwa.certify.scale.Expectations


@dataclass
class Certification:
    checks: list[Check]
    started: float
    ended: float
    interrupted: bool = False
    warnings: list[str] = field(default_factory=list)
    scale_report: Any = None

    @property
    def verdict(self) -> Any:
        """The run's verdict: one criterion per check (manual ones attested or not)."""
        from ctwa.report.verdict import Criterion, Verdict

        return Verdict(tuple(Criterion(c.name, c.status, c.detail or c.title,
                                       c.evidence.get("measured"), c.evidence.get("threshold"))
                             for c in self.checks), self.interrupted, tuple(self.warnings))


class Certifier:
    def __init__(self, options: CertifyOptions, exchanges: Exchanges,
                 say: Callable[[str], None], confirm_scale: Callable[[int], bool]) -> None:
        self.o = options
        self.exchanges = exchanges
        self.say = say
        self.confirm_scale = confirm_scale
        names = [("validation", "validation payload answered within 1 s"),
                 ("templates", "templates accepted within 1 s"),
                 ("freeform", "freeform text and media accepted inside the 24-hour window"),
                 ("errors", "errors categorised: impossible number, wrong credentials"),
                 ("callbacks", "DLRs for every accepted message, valid and in order"),
                 ("inbound", "inbound replies of every kind, with context"),
                 ("clicks", "clicked for tracked URL buttons"),
                 ("scale", "1500 concurrent requests, p99 under 1 s, DLRs complete, errors "
                  "per expectation and categorised correctly"),
                 ("platform counts", "sent, delivered and viewed counts match your platform "
                  "count")]
        self.checks = {name: Check(name, title) for name, title in names}
        self.sent_at: dict[str, float] = {}  # accepted msgIds of templates and freeform
        self.kinds: dict[str, str] = {}  # msgId -> template, text, image, ... (as sent)
        self.templates_sent: dict[str, dict[str, Any]] = {}  # msgId -> template
        self.started = time.time()
        self.client: Any = None
        self.store: Store | None = None
        self.scale_report: Any = None
        from ctwa.send.msgid import MsgIdFactory

        self.ids = MsgIdFactory()  # one campaign's msgIds for every message of the run

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> Certification:
        from ctwa.http import make_client
        from ctwa.roundtrip.waiting import listener_for
        from ctwa.store.db import store_path

        interrupted = False
        endpoint = self.o.endpoint
        steps = [self._validation, self._templates, self._errors, self._freeform,
                 self._callbacks, self._inbound, self._clicks, self._scale]
        try:
            with listener_for(self.o.listen, store_path(), self.say), Store() as store, \
                    make_client(auth=endpoint.auth, headers=endpoint.headers,
                                timeout=self.o.timeout, origin=endpoint.url) as client:
                self.store, self.client = store, client
                for step in steps:
                    step()
        except KeyboardInterrupt:
            interrupted = True
            for check in self.checks.values():
                if check.status == NOT_TESTED and not check.detail:
                    check.detail = "the run was interrupted before this check"
        checks = [*self.checks.values(), *self._manual()]
        warnings = self._warnings(checks)
        return Certification(checks, self.started, time.time(), interrupted, warnings,
                             self.scale_report)

    # --- sending ---------------------------------------------------------------------------

    def _send(self, step: str, payload: dict[str, Any], endpoint: Any = None,
              client: Any = None) -> tuple[Any, float]:
        """Deliver one payload, log the exchange and keep it in the store; (result, when)."""
        from ctwa.send.messaging import deliver

        at = time.time()
        result = deliver(endpoint or self.o.endpoint, payload, timeout=self.o.timeout,
                         deadline=self.o.deadline, client=client or self.client)
        self.exchanges.add(step, {"at": at, **result.as_dict()})
        if isinstance(payload.get("msgId"), str):
            self.kinds[payload["msgId"]] = message_kind(payload)
        record = send_record(result, at)
        if self.store is not None and record is not None:
            self.store.add_sends([record])
        return result, at

    def _msg_id(self) -> str:
        return str(self.ids.next())

    # --- 1. validation ---------------------------------------------------------------------

    def _validation(self) -> None:
        from ctwa.wire.outbound import validation_payload

        check = self.checks["validation"]
        payload = validation_payload(to=self.o.to, waba=self.o.waba,
                                     msg_id="0|0|0|0").to_wire()
        result, _ = self._send("validation", payload)
        verdict = result.verdict
        if verdict.outcome in ("unreachable", "timeout"):  # nothing else can run: exit 3
            from ctwa.infra.errors import RemoteUnreachable

            raise RemoteUnreachable(verdict.summary,
                                    hint="check --endpoint (or the profile's) and the network")
        check.done(PASS if verdict.accepted else FAIL, verdict.describe(),
                   latency_ms=verdict.latency_ms, http_status=result.response_status)
        self.say(f"validation: {check.status.upper()} ({check.detail})")

    # --- 2. templates ----------------------------------------------------------------------

    def _chosen_templates(self) -> list[dict[str, Any]]:
        return chosen_templates(self.o)

    def _templates(self) -> None:
        from ctwa.send.build import build_template_payload
        from ctwa.send.params import TemplateParams

        check = self.checks["templates"]
        sent, refused, unbuilt = [], [], []
        covered: set[str] = set()
        available: set[str] = set()
        for template in self._chosen_templates():
            label = f"{template.get('name')} ({template.get('language')})"
            kinds = component_kinds(template)
            available |= kinds
            try:
                built, _ = build_template_payload(template, TemplateParams(), to=self.o.to,
                                                  waba=self.o.waba, msg_id=self._msg_id(),
                                                  use_examples=True)
            except InputError as exc:
                unbuilt.append(f"{label}: {exc}")
                continue
            payload = built.to_wire()
            result, at = self._send("templates", payload)
            row = {"template": label, "outcome": result.verdict.outcome,
                   "latency_ms": result.verdict.latency_ms, "msgId": payload["msgId"],
                   "components": sorted(kinds)}
            if result.verdict.accepted:
                sent.append(row)
                covered |= kinds
                self.sent_at[payload["msgId"]] = at
                self.templates_sent[payload["msgId"]] = template
            else:
                refused.append({**row, "why": result.verdict.summary})
        missing = [k for k in COMPONENT_KINDS if k not in available]
        evidence = {"sent": sent, "refused": refused, "not_built": unbuilt,
                    "components_exercised": sorted(covered),
                    "components_not_in_library": missing}
        skipped = (f"; {len(unbuilt)} not built from their examples: "
                   + "; ".join(unbuilt[:3]) + (" ..." if len(unbuilt) > 3 else "")
                   if unbuilt else "")
        if refused or not sent:
            why = "; ".join(f"{r['template']}: {r['why']}" for r in refused[:5]) or \
                "no template could be sent"
            if len(refused) > 5:
                why += f" (the first 5 of {len(refused)}; each is in results.json)"
            check.done(FAIL, f"{len(refused)} of {len(sent) + len(refused)} refused or too "
                       f"slow: {why}{skipped}", **evidence)
        else:
            check.done(PASS, f"{len(sent)} template(s) accepted within "
                       f"{self.o.deadline:g} s; components exercised: "
                       f"{', '.join(sorted(covered)) or 'none'}"
                       + (f"; not in the library: {', '.join(missing)}" if missing else "")
                       + skipped, **evidence)
        self.say(f"templates: {check.status.upper()} ({check.detail})")
        for line in unbuilt:
            self.say(f"  not built from its examples: {line}")

    # --- 4. errors -------------------------------------------------------------------------

    def _errors(self) -> None:
        from ctwa.send.freeform import build_freeform
        from ctwa.wire.codes import CALLBACK_ERRORS, MESSAGING_ERRORS

        check = self.checks["errors"]
        payload = build_freeform("text", to=self.o.invalid_to, waba=self.o.waba,
                                 msg_id=self._msg_id(), text="ctwa certify: invalid number"
                                 ).to_wire()
        result, at = self._send("errors", payload)
        verdict = result.verdict
        number_ok, number_detail = False, ""
        if verdict.outcome == "rejected" and verdict.error_code in MESSAGING_ERRORS:
            number_ok = True
            number_detail = f"refused with {verdict.error_code} at once"
        elif verdict.accepted:
            codes = self._failed_codes(payload["msgId"], at)
            if codes is None:
                number_detail = (f"accepted, and no failed status within "
                                 f"{self.o.callback_timeout:g} s")
            elif all(code in CALLBACK_ERRORS for code in codes):
                number_ok = True
                number_detail = f"accepted, then failed with {', '.join(map(str, codes))}"
            else:
                number_detail = ("accepted, then failed with code(s) "
                                 f"{', '.join(map(str, codes))}, outside 1000-1010")
        else:
            number_detail = verdict.describe()
        creds_ok, creds_detail = self._wrong_credentials()
        status = PASS if number_ok and creds_ok is not False else FAIL
        check.done(status, f"impossible number {self.o.invalid_to}: {number_detail}; wrong "
                   f"credentials: {creds_detail}", invalid_number_ok=number_ok,
                   wrong_credentials_ok=creds_ok)
        self.say(f"errors: {check.status.upper()} ({check.detail})")

    def _failed_codes(self, msg_id: str, sent_at: float) -> list[int] | None:
        assert self.store is not None
        deadline = time.monotonic() + self.o.callback_timeout
        while time.monotonic() < deadline:
            rows = [r for r in self.store.callbacks_for(msg_id) if r["status"] == "failed"]
            if rows:
                return [r["code"] for r in rows if r["code"] is not None] or [0]
            time.sleep(0.2)
        return None

    def _wrong_credentials(self) -> tuple[bool | None, str]:
        from ctwa.http import Auth, make_client
        from ctwa.send.freeform import build_freeform

        auth = self.o.endpoint.auth
        if auth.kind == "none":
            return None, "not tested (the endpoint is called without credentials)"
        wrong = replace(auth, secret=(auth.secret or "") + "-ctwa-wrong")
        if auth.kind == "basic":
            wrong = Auth("basic", auth.username, "ctwa-wrong-password")
        endpoint = replace(self.o.endpoint, auth=wrong)
        payload = build_freeform("text", to=self.o.to, waba=self.o.waba,
                                 msg_id=self._msg_id(), text="ctwa certify: wrong credentials"
                                 ).to_wire()
        with make_client(auth=wrong, headers=endpoint.headers, timeout=self.o.timeout,
                         origin=endpoint.url) as client:
            result, _ = self._send("errors", payload, endpoint, client)
        verdict = result.verdict
        if result.response_status in (401, 403) or verdict.error_code == 2000:
            return True, f"refused as the spec asks ({verdict.summary})"
        if verdict.accepted:
            return False, ("ACCEPTED with wrong credentials: the endpoint does not check "
                           "them, so anyone who knows its URL can send on this account -> "
                           "refuse them with HTTP 401 (or failure code 2000)")
        return False, f"not the spec's authentication failure: {verdict.summary}"

    # --- 3. freeform -----------------------------------------------------------------------

    def _freeform(self) -> None:
        from ctwa.send.freeform import build_freeform

        check = self.checks["freeform"]
        if not self.o.interactive:
            check.done(NOT_TESTED, "needs the 24-hour window, which only the tester's phone "
                       "opens (run with --interactive)")
            return
        self.say(f"freeform: from the phone {self.o.to}, send any message to "
                 f"{self.o.waba} (it opens the 24-hour window)")
        if self._wait_inbound(lambda rows: bool(rows), "a message from the test phone") is None:
            check.done(NOT_TESTED, f"no message from {self.o.to} within "
                       f"{self.o.interactive_timeout:g} s: the window never opened")
            return
        results = []
        for kind in FREEFORM_KINDS:
            media = SAMPLE_MEDIA.get(kind)
            payload = build_freeform(kind, to=self.o.to, waba=self.o.waba,
                                     msg_id=self._msg_id(),
                                     text="ctwa certify: freeform text" if kind == "text"
                                     else None, media_url=media,
                                     filename="example.pdf" if kind == "file" else None
                                     ).to_wire()
            result, at = self._send("freeform", payload)
            results.append({"type": kind, "outcome": result.verdict.outcome,
                            "latency_ms": result.verdict.latency_ms,
                            "msgId": payload["msgId"]})
            if result.verdict.accepted:
                self.sent_at[payload["msgId"]] = at
        failed = [r for r in results if r["outcome"] != "accepted"]
        check.done(FAIL if failed else PASS,
                   ", ".join(f"{r['type']} {r['outcome']}" for r in results), sent=results)
        self.say(f"freeform: {check.status.upper()} ({check.detail})")

    def _inbound_rows(self) -> list[dict[str, Any]]:
        """Inbound callbacks from the test number since the run started."""
        assert self.store is not None
        rows = []
        for row in self.store.callbacks_between(self.started, time.time() + 1):
            if row["kind"] != "inbound":
                continue
            try:
                sender = str(json.loads(row["body"] or "{}").get("from", "")).lstrip("+")
            except ValueError:
                continue
            if sender == self.o.to.lstrip("+"):
                rows.append(row)
        return rows

    def _wait_inbound(self, done: Callable[[list[dict[str, Any]]], bool],
                      what: str) -> list[dict[str, Any]] | None:
        """Poll until ``done(rows)``, with a countdown every 15 s."""
        deadline = time.monotonic() + self.o.interactive_timeout
        shown = time.monotonic()
        while True:
            rows = self._inbound_rows()
            if done(rows):
                return rows
            now = time.monotonic()
            if now >= deadline:
                return None
            if now - shown >= 15:
                shown = now
                self.say(f"  waiting for {what}: {deadline - now:.0f} s left")
            time.sleep(0.2)

    # --- 5. callbacks ----------------------------------------------------------------------

    def _callbacks(self) -> None:
        from ctwa.roundtrip.waiting import round_trip, wait_for

        assert self.store is not None
        check = self.checks["callbacks"]
        if not self.sent_at:
            check.done(NOT_TESTED, "no message was accepted, so none can have callbacks")
            return
        until = "read" if self.o.interactive else "delivered"
        if self.o.interactive:
            self.say(f"callbacks: open the messages on {self.o.to} (read receipts on); "
                     f"waiting up to {self.o.callback_timeout:g} s")
        ids = list(self.sent_at)
        wait_for(self.store, until, self.o.callback_timeout, msg_ids=ids, expected=len(ids))
        where = self.o.public_url or f"http://{self.o.listen}"
        trip = round_trip(self.store, self.sent_at, until, self.started, time.time(),
                          kinds=self.kinds, where=where)
        evidence = {"round_trip": trip.as_dict()}
        causes = "; ".join(diagnosis_line(d) for d in trip.diagnoses
                           if d["cause"] != "warning")
        if trip.diagnoses and trip.diagnoses[0]["cause"] == "nothing":
            check.done(FAIL, f"no callback arrived within {self.o.callback_timeout:g} s: "
                       + diagnosis_line(trip.diagnoses[0]), **evidence)
        elif trip.complete < trip.accepted or trip.problems:
            anomalies = ", ".join(f"{k} {v}" for k, v in trip.anomalies.items())
            check.done(FAIL, f"{trip.complete} of {trip.accepted} reached {until}"
                       + (f"; anomalies: {anomalies}" if anomalies else "")
                       + (f"; diagnosis: {causes}" if causes else
                          f"; e.g. {_first_example(trip.examples)}" if trip.examples else ""),
                       **evidence)
        else:
            check.done(PASS, f"all {trip.accepted} reached {until} in order, in CleverTap's "
                       "format", **evidence)
        self.say(f"callbacks: {check.status.upper()} ({check.detail})")
        for diagnosis in trip.diagnoses:
            self.say(f"  diagnosis: {diagnosis_line(diagnosis)}")

    # --- 6. inbound ------------------------------------------------------------------------

    def _inbound(self) -> None:
        check = self.checks["inbound"]
        if not self.o.interactive:
            check.done(NOT_TESTED, "needs the tester to reply from the phone (--interactive)")
            return
        ours = set(self.templates_sent)
        self.say(f"inbound: reply from {self.o.to} to one of the templates (swipe to reply) "
                 f"with a text, an image, a document, a location, audio and a video")

        def every_kind(rows: list[dict[str, Any]]) -> bool:
            return set(INBOUND_TYPES) <= {r["status"] for r in rows if r["msg_id"] in ours}

        rows = self._wait_inbound(every_kind, "a reply of every kind") or self._inbound_rows()
        replies = [r for r in rows if r["msg_id"] in ours and r["valid"]]
        kinds = {r["status"] for r in replies}
        no_context = [r for r in rows if r["msg_id"] is None]
        invalid = [r for r in rows if not r["valid"]]
        missing = [k for k in INBOUND_TYPES if k not in kinds]
        evidence = {"kinds": sorted(kinds), "without_context": len(no_context),
                    "invalid": len(invalid)}
        if missing or invalid:
            detail = (f"missing with context: {', '.join(missing)}" if missing else "")
            if no_context:
                detail += f"; {len(no_context)} replies without context"
            if invalid:
                detail += f"; {len(invalid)} in the wrong format"
            check.done(FAIL, detail.strip("; "), **evidence)
        else:
            check.done(PASS, f"every kind arrived with context: {', '.join(INBOUND_TYPES)}",
                       **evidence)
        self.say(f"inbound: {check.status.upper()} ({check.detail})")

    # --- 7. clicks -------------------------------------------------------------------------

    def _clicks(self) -> None:
        assert self.store is not None
        check = self.checks["clicks"]
        with_buttons = {m: t for m, t in self.templates_sent.items() if url_buttons(t)}
        if not self.templates_sent:
            check.done(NOT_TESTED, "no template was accepted (see templates), so there was "
                       "no URL button to tap")
            return
        if not with_buttons:
            check.done(NOT_TESTED, f"none of the {len(self.templates_sent)} accepted "
                       "template(s) has a URL button; choose one that has (--templates)")
            return
        if not self.o.interactive:
            check.done(NOT_TESTED, "needs the tester to tap a URL button (--interactive)")
            return
        names = ", ".join(sorted({t["name"] for t in with_buttons.values()}))
        self.say(f"clicks: on {self.o.to}, tap the link button of: {names}")
        deadline = time.monotonic() + self.o.interactive_timeout
        clicked: set[str] = set()
        while time.monotonic() < deadline:
            clicked = {m for m in with_buttons if any(
                r["status"] == "clicked" and r["valid"] for r in self.store.callbacks_for(m))}
            if clicked == set(with_buttons):
                break
            time.sleep(0.2)
        if clicked == set(with_buttons):
            check.done(PASS, f"clicked arrived for {len(clicked)} message(s) with a URL button",
                       clicked=sorted(clicked))
        else:
            check.done(FAIL, f"clicked arrived for {len(clicked)} of {len(with_buttons)} "
                       "message(s) with a URL button", clicked=sorted(clicked))
        self.say(f"clicks: {check.status.upper()} ({check.detail})")

    # --- 8. scale --------------------------------------------------------------------------

    def _scale(self) -> None:
        check = self.checks["scale"]
        n = self.o.scale
        platform = self.checks["platform counts"]
        if not n:
            check.done(NOT_TESTED, "run with --scale N --to-file NUMBERS (real messages: "
                       "they cost money)")
            platform.done(NOT_TESTED, "needs the scale run (--scale N --to-file NUMBERS)")
            return
        if not self.confirm_scale(n):
            check.done(NOT_TESTED, f"not confirmed: {n:,} real messages were not sent")
            platform.done(NOT_TESTED, "needs the scale run, which was not confirmed")
            return
        check.done(*self._run_scale(n))
        self.say(f"scale: {check.status.upper()} ({check.detail})")

    def _run_scale(self, n: int) -> tuple[str, str]:
        """The scale run as the send commands run theirs: one SendJob (load mode, the
        callbacks awaited) through :func:`ctwa.send.job.run_job`, so every message is
        classified and the run judged by the same rules; then the spec's scale criterion
        (errors per expectation, DLRs complete) on top of the runner's verdict."""
        from ctwa.load.plan import CAMPAIGN_CONCURRENCY
        from ctwa.report.verdict import FAIL as CRITERION_FAILED
        from ctwa.report.verdict import NOT_TESTED as CRITERION_NOT_TESTED
        from ctwa.send.freeform import build_freeform
        from ctwa.send.job import AwaitSettings, Hooks, LoadSettings, SendJob, run_job

        numbers = self.o.scale_numbers or (self.o.to,)
        if self.templates_sent:
            template = next(iter(self.templates_sent.values()))
            from ctwa.send.build import build_template_payload
            from ctwa.send.params import TemplateParams

            built, _ = build_template_payload(template, TemplateParams(), to=numbers[0],
                                              waba=self.o.waba, msg_id="x", use_examples=True)
            payload = built.to_wire()
        else:
            payload = build_freeform("text", to=numbers[0], waba=self.o.waba, msg_id="x",
                                     text="ctwa certify: scale").to_wire()
        job = SendJob(payload, self.o.endpoint, recipients=numbers, timeout=self.o.timeout,
                      deadline=self.o.deadline,
                      load=LoadSettings(count=n, concurrency=min(n, CAMPAIGN_CONCURRENCY),
                                        workers=1 if n < 500 else 2),
                      awaiting=AwaitSettings(until="delivered",
                                             timeout=self.o.callback_timeout,
                                             listen=self.o.listen),
                      run_name="certify")
        hooks = Hooks(say=self.say, on_start=lambda plan: self.say(
            f"scale: {n:,} messages, {plan.concurrency} in flight"))
        done = run_job(job, hooks)
        report = done.result
        self.scale_report = report
        self.exchanges.add("scale", {"report": report.as_dict(),
                                     "verdict": done.verdict.as_dict()})
        if done.interrupted:  # Ctrl-C: the run stops here, this check not judged
            raise KeyboardInterrupt
        p99 = report.latency_ms.get("p99", 0.0)
        from ctwa.certify.scale import (
            Expectations,
            expected_text,
            judge_errors,
            judge_platform,
            platform_view,
        )

        expectations = self.o.expectations or Expectations()
        trip = done.trip
        trip_data = report.round_trip or {}
        expected = expectations.codes(numbers, report.sent)
        runner = {c.name: c for c in done.verdict.criteria}
        problems = []
        # the runner's criteria of the run itself; its "failures" is judged here instead,
        # by code against the expected errors (an expected, correctly coded refusal passes)
        for name in ("run complete", "credentials", "concurrency", "deadline"):
            criterion = runner.get(name)
            if criterion is None:
                continue
            if criterion.status == CRITERION_FAILED or (
                    name == "run complete" and criterion.status == CRITERION_NOT_TESTED):
                problems.append(criterion.reason)
        concurrency = runner.get("concurrency")
        if concurrency is not None and concurrency.status == CRITERION_NOT_TESTED and \
                report.sent and report.peak_in_flight < min(n, CAMPAIGN_CONCURRENCY):
            problems.append(f"only {report.peak_in_flight} in flight")  # fewer than 1500 sent
        deadline = runner.get("deadline")
        if p99 >= self.o.deadline * 1000 and not (
                deadline is not None and deadline.status == CRITERION_FAILED):
            problems.append(f"p99 {p99:g} ms")
        problems += judge_errors(report, trip_data, expected)
        problems += self._misdirected(report, numbers, expectations)
        if trip is None:
            problems.append("DLRs: the run kept no outcomes, so its callbacks could not be "
                            "awaited")
            return FAIL, "; ".join(problems)
        if trip.complete < trip.accepted or trip.problems:
            causes = "; ".join(diagnosis_line(d) for d in trip.diagnoses
                               if d["cause"] != "warning")
            problems.append(f"DLRs: {trip.complete:,} of {trip.accepted:,} delivered or failed"
                            + (", " + ", ".join(f"{k} {v}" for k, v in trip.anomalies.items())
                               if trip.anomalies else "")
                            + (f" (diagnosis: {causes})" if causes else ""))
        counts = ", ".join(f"{k} {v:,}" for k, v in trip.furthest.items())
        detail = (f"{report.sent:,} sent, {report.peak_in_flight} in flight, p99 {p99:g} ms, "
                  f"{expected_text(report, trip_data, expected)}; per status: {counts}")
        platform = self.checks["platform counts"]
        ours = platform_view(trip_data)
        shown = ", ".join(f"{k} {v:,}" for k, v in ours.items())
        if expectations.platform is None:
            platform.done(NOT_TESTED, f"the callbacks said {shown}: give the BSP "
                          "dashboard's counts with --platform-counts sent=N,delivered=N,"
                          "read=N to compare", measured=ours)
        else:
            wrong = judge_platform(trip_data, expectations.platform)
            platform.done(FAIL if wrong else PASS, "; ".join(wrong) if wrong else
                          f"the platform's counts match the callbacks: {shown}",
                          measured=ours, threshold=expectations.platform)
        return (FAIL, f"{'; '.join(problems)} ({detail})") if problems else (PASS, detail)

    @staticmethod
    def _misdirected(report: Any, numbers: tuple[str, ...], expectations: Any) -> list[str]:
        """With codes beside the numbers: refusals of messages to numbers not expected to
        fail (the counts per code could match while the wrong numbers fail)."""
        from ctwa.load.run import V_REJECTED

        outcomes = report.outcomes
        if not expectations.per_number or outcomes is None:
            return []
        wrong = [numbers[i % len(numbers)] for i, verdict in enumerate(outcomes.verdicts)
                 if verdict == V_REJECTED and numbers[i % len(numbers)]
                 not in expectations.per_number]
        if not wrong:
            return []
        return [f"{len(wrong):,} refusal(s) to numbers not expected to fail, e.g. {wrong[0]}"]

    # --- 9. manual -------------------------------------------------------------------------

    def _manual(self) -> list[Check]:
        attested = _read_attestations(self.o.attest) if self.o.attest else {}
        checks = []
        for name, title in MANUAL_CRITERIA.items():
            check = Check(f"manual: {name}", title)
            entry = attested.get(name)
            if entry:
                check.done(ATTESTED, f"attested by {entry['who']}: {entry['what']}"
                           + (f" ({entry['where']})" if entry.get("where") else ""), **entry)
            else:
                check.done(NOT_ATTESTED, "no one attested it (--attest FILE)")
            checks.append(check)
        return checks

    def _warnings(self, checks: list[Check]) -> list[str]:
        warnings = []
        automated = [c for c in checks if not c.name.startswith("manual:")]
        if all(c.status != PASS for c in automated):
            warnings.append("no automated check passed")
        validation = self.checks["validation"]
        callbacks = self.checks["callbacks"]
        diagnoses = callbacks.evidence.get("round_trip", {}).get("diagnoses") or [{}]
        if validation.status == PASS and callbacks.status == FAIL and \
                diagnoses[0].get("cause") == "nothing":
            warnings.append("messages were accepted but no callback came back: a pass on "
                            "sending alone proves little")
        return warnings


def _first_example(examples: dict[str, list[str]]) -> str:
    for kind, found in examples.items():
        if found:
            return f"{kind}: {found[0]}"
    return ""


def _read_attestations(path: Path) -> dict[str, dict[str, str]]:
    """--attest FILE: a YAML list (or mapping by criterion) of who attests what, where."""
    from ctwa.infra.textfiles import load_yaml, read_text

    data = load_yaml(read_text(path), str(path)) or {}
    entries = data if isinstance(data, list) else [
        {"criterion": k, **(v if isinstance(v, dict) else {})} for k, v in data.items()
    ] if isinstance(data, dict) else None
    if entries is None:
        raise InputError(f"{path}: expected a list of attestations",
                         hint="each: {criterion: ..., who: ..., what: ..., where: ...}")
    found: dict[str, dict[str, str]] = {}
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise InputError(f"{path}: entry {number} is not a mapping")
        criterion = str(entry.get("criterion", ""))
        if criterion not in MANUAL_CRITERIA:
            raise InputError(f"{path}: entry {number}: unknown criterion {criterion!r}",
                             hint="one of " + ", ".join(MANUAL_CRITERIA))
        for key in ("who", "what"):
            if not str(entry.get(key, "")).strip():
                raise InputError(f"{path}: entry {number} ({criterion}): `{key}` is missing")
        found[criterion] = {k: str(v) for k, v in entry.items() if k != "criterion"}
    return found


def chosen_templates(options: CertifyOptions) -> list[dict[str, Any]]:
    """The templates to certify with: the ones named, or every sendable one in the library;
    exit 2 with how to import them when there is none (checked before anything is sent)."""
    index = options.library.index()
    if options.templates:
        return [options.library.get(name) for name in options.templates]
    from ctwa.wire.outbound import VALIDATION_NAMESPACE

    # the validation payload's own template is checked by the validation step; a BSP
    # need not deliver it (CleverTap sends it only to save the provider)
    chosen = [options.library.get(e.name, e.language) for e in index.values()
              if e.can_send and e.name != VALIDATION_NAMESPACE]
    if not chosen:
        raise InputError(f"no approved, sendable template in the library "
                         f"{options.library.root}",
                         hint="import them first: `ctwa import-templates`, then "
                         "`ctwa templates list --sendable`")
    return chosen
