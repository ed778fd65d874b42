"""``ctwa demo``: the whole integration against the embedded sandbox, in well under a minute.

Each step runs a real ctwa command (in this process, against the sandbox on 127.0.0.1, with a
throwaway profile in a temporary folder) and checks what it reported; the demo fails, naming the
step, when a command does not behave as expected.
"""

import json
import os
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from ctwa.cli.context import of
from ctwa.cli.output import Output
from ctwa.infra.errors import CheckFailed

WABA = "919999999998"
CUSTOMER = "919000000001"  # accepted; DLRs sent, delivered, read
UNSUBSCRIBED = "919000000003"  # the mock BSP answers 2003
BLACKLISTED = "919000000006"  # accepted, then a failed DLR with 1006


@dataclass
class StoryOutput(Output):
    """The demo's story (steps, commands, what each reported) is its result: on stdout, whole
    lines; its progress (the sandbox starting, the time taken) on stderr. With --json, where
    stdout holds the one JSON document, the story joins the progress on stderr."""

    story_to_stdout: bool = True

    def story(self, text: str, style: str | None = None) -> None:
        """A line of the story: on stdout, or on stderr with --json."""
        if self.story_to_stdout:
            self.stdout_line(text, style)
        else:
            self.stderr_line(text, style)

    def progress(self, text: str, style: str | None = None) -> None:
        """A line of progress, on stderr."""
        self.stderr_line(text, style)


def _story(out: Output, text: str, style: str | None = None) -> None:
    """A line of the demo's story: the story's stream when it has one, else stderr."""
    (out.story if isinstance(out, StoryOutput) else out.stderr_line)(text, style)


def _progress(out: Output, text: str, style: str | None = None) -> None:
    (out.progress if isinstance(out, StoryOutput) else out.stderr_line)(text, style)


@dataclass
class Outcome:
    exit_code: int
    data: Any
    stderr: str
    stdout: str = ""


@dataclass
class Demo:
    out: Output
    env: dict[str, str]
    folder: Path
    examples: Path
    results: dict[str, Any] = field(default_factory=dict)
    root: Any = None  # the root click command the demo runs its steps with (ctwa itself)
    step_number: int = 0
    steps: int = 11

    def run(self, *argv: str, json_output: bool = True) -> Outcome:
        from click.testing import CliRunner

        args = ["--json", *argv] if json_output else list(argv)
        _story(self.out, "  $ ctwa " + " ".join(shlex.quote(a) for a in argv), "dim")
        result = CliRunner().invoke(self.root, args, env=self.env, prog_name="ctwa")
        data = None
        if json_output and result.stdout.strip():
            data = json.loads(result.stdout)
        return Outcome(result.exit_code, data, result.stderr, result.stdout)

    def step(self, title: str) -> None:
        self.step_number += 1
        _story(self.out, f"\n[{self.step_number}/{self.steps}] {title}", "bold cyan")

    def expect(self, name: str, ok: bool, summary: str, outcome: Outcome | None = None) -> None:
        if not ok:
            detail = f"\n{outcome.stderr.strip()}" if outcome and outcome.stderr.strip() else ""
            raise CheckFailed(f"demo step {self.step_number} ({name}) did not behave as "
                              f"expected: {summary}{detail}")
        _story(self.out, f"  ok: {summary}", "green")


def _wait_for(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def run_demo(out: Output, folder: Path, root: Any) -> dict[str, Any]:
    """Every step, against a fresh sandbox, each a ctwa command run with ``root`` (the
    running root click command: this module never imports the app that imports it);
    returns what each step reported."""
    import httpx

    from ctwa.infra.ports import free_port
    from ctwa.infra.resources import examples_dir
    from ctwa.sandbox.server import RunningSandbox, SandboxSettings

    examples = examples_dir()
    from ctwa.sandbox.meta import MetaSettings

    bridge_port = free_port()  # the sandbox's Meta sends its webhooks to the bridge step's
    # the sandbox's CleverTap keeps callbacks in the demo's own store, never the user's
    settings = SandboxSettings(store_path=folder / "data" / "store.sqlite3", meta=MetaSettings(
        webhook_url=f"http://127.0.0.1:{bridge_port}/webhook",
        status_delays=(0.02, 0.05, 0.08)))
    with RunningSandbox(settings) as box:
        urls, secrets = box.urls(), box.credentials()
        # the user's CTWA_STORE too: the steps' sends go to the scratch store, beside the
        # sandbox's callbacks (else the round trip finds them apart, and the user's store
        # gets the demo's messages)
        env = {"CTWA_CONFIG_DIR": str(folder / "config"), "CTWA_DATA_DIR": str(folder / "data"),
               "CTWA_STORE": str(folder / "data" / "store.sqlite3"),
               "CTWA_NO_KEYRING": "1", "CTWA_PASSWORD": secrets["bsp_password"],
               "CTWA_IMPORT_TOKEN": secrets["vendor_token"],
               "CTWA_PASSCODE": secrets["passcode"], "CTWA_PROFILE": "",
               "NO_COLOR": os.environ.get("NO_COLOR", "")}
        demo = Demo(out, env, folder, examples, root=root)
        _progress(out, f"sandbox on {box.base_url}: mock BSP, vendor and CleverTap; "
                  f"scratch folder {folder}", "bold")

        demo.step("A throwaway profile for the sandbox (secrets come from the environment)")
        made = demo.run("profile", "add", "demo", "--endpoint", urls["bsp_endpoint"],
                        "--auth", "basic", "--username", secrets["bsp_username"], "--waba", WABA,
                        "--account-id", secrets["account_id"], "--base-url",
                        urls["clevertap_api"], "--status-url", urls["status_callback"],
                        "--inbound-url", urls["inbound_callback"], "--import-url",
                        urls["vendor_templates"], "--import-auth", "bearer", "--use")
        demo.expect("profile", made.exit_code == 0, "profile 'demo' is the current profile",
                    made)

        demo.step("Validate the endpoint the way CleverTap does when a provider is saved")
        valid = demo.run("validate-endpoint")
        verdict = (valid.data or {}).get("verdict", {})
        demo.expect("validate", valid.exit_code == 0 and verdict.get("accepted") is True,
                    f"accepted in {verdict.get('latency_ms')} ms", valid)

        demo.step("Import the vendor's templates, 3 per page")
        imported = demo.run("import-templates", "--limit", "3")
        report = imported.data or {}
        demo.expect("import", bool(imported.exit_code == 0 and report.get("complete")
                    and report.get("pages", 0) >= 3 and not report.get("rejected")),
                    f"{report.get('pages')} pages, {report.get('fetched')} templates, "
                    f"{len(report.get('added', []))} added to the library", imported)
        demo.results["import"] = report

        demo.step("Preview a template as a WhatsApp message")
        preview = demo.run("templates", "show", "Test_template", "--vars", "Asha",
                           json_output=False)
        _story(out, preview.stdout.rstrip())
        demo.expect("preview", preview.exit_code == 0, "rendered", preview)

        demo.step("Send templates and a freeform message, judged like CleverTap would")
        sends = [
            ("send-template", "--template", "Test_template", "--params",
             str(examples / "params" / "lto.yaml"), "--var", "Asha", "--to", CUSTOMER),
            ("send-template", "--template", "carousel_test_1", "--params",
             str(examples / "params" / "carousel.yaml"), "--to", CUSTOMER),
            ("send-template", "--sample", "multi-button", "--to", BLACKLISTED),
            ("send-freeform", "--type", "image", "--media-url",
             "https://cdn.example.com/diwali.png", "--caption", "Your offer", "--to", CUSTOMER),
        ]
        accepted = 0
        for argv in sends:
            sent = demo.run(*argv)
            ok = sent.exit_code == 0 and sent.data["verdict"]["accepted"]
            demo.expect("send", ok, f"{argv[0]}: accepted in "
                        f"{sent.data['verdict']['latency_ms'] if sent.data else '?'} ms", sent)
            accepted += 1
        refused = demo.run("send-template", "--sample", "text", "--to", UNSUBSCRIBED)
        code = (refused.data or {}).get("verdict", {}).get("error_code")
        demo.expect("send", refused.exit_code == 1 and code == 2003,
                    "an unsubscribed number is refused with 2003, exit 1", refused)
        demo.results["sent"] = accepted

        demo.step("A short load test: 300 messages, 50 in flight, with a report page")
        page = folder / "load-report.html"
        load = demo.run("send-template", "--sample", "lto", "--to", CUSTOMER, "--count", "300",
                        "--concurrency", "50", "--workers", "1", "--report", str(page))
        numbers = load.data or {}
        demo.expect("load", load.exit_code == 0 and numbers.get("accepted") == 300
                    and page.is_file(),
                    f"{numbers.get('accepted')} of {numbers.get('sent')} accepted, p99 "
                    f"{numbers.get('latency_ms', {}).get('p99')} ms, "
                    f"{numbers.get('requests_per_second')} requests/s; report: {page}", load)
        demo.results["load"] = numbers

        demo.step("DLRs arrive at CleverTap's callback URL: the campaign stats they make")
        expected = accepted + 300

        def stats() -> dict[str, Any]:
            return httpx.get(urls["callback_stats"], timeout=5).json()

        def settled() -> bool:
            now = stats()
            return (now["read"] >= expected - 1 and now["delivered"] >= expected - 1
                    and sum(now["failed"].values()) >= 1)

        _wait_for(settled, 15)
        tallies = stats()
        _story(out, f"  sent {tallies['sent']}, delivered {tallies['delivered']}, read "
                f"{tallies['read']}, failed "
                + (", ".join(f"{code}: {n}" for code, n in sorted(tallies['failed'].items()))
                   or "0") + ", invalid callbacks "
                f"{tallies['invalid']}")
        demo.expect("dlr", tallies["sent"] == expected and tallies["read"] == expected - 1
                    and tallies["delivered"] == expected - 1
                    and tallies["failed"] == {"1006": 1} and tallies["invalid"] == 0
                    and tallies["anomaly_count"] == 0,
                    f"{expected} messages sent, {expected - 1} delivered and read, 1 failed "
                    "with 1006, every callback valid and in order")
        demo.results["dlr"] = tallies

        demo.step("Follow one message to its callbacks: the round trip, from the store")
        trip = demo.run("send-template", "--sample", "text", "--to", CUSTOMER,
                        "--await-callbacks", "--until", "read", "--callback-timeout", "15s",
                        "--listen", f"127.0.0.1:{free_port()}")
        story = trip.data or {}
        statuses = [e["status"] for e in story.get("timeline", []) if e["kind"] == "status"]
        for event in story.get("timeline", []):
            _story(out, f"  +{event['after_ms']:,.0f} ms  {event['status']}  "
                    f"{'valid' if event['valid'] else 'INVALID'}")
        demo.expect("round trip", trip.exit_code == 0 and statuses[:3] == [
            "sent", "delivered", "read"], f"msgId {story.get('msgId')}: sent, delivered and "
                    "read came back in order; `ctwa trace MSGID` tells it again", trip)
        demo.results["round_trip"] = statuses

        demo.step("Upload users.csv (a few bad rows) to the mock CleverTap")
        users = folder / "users.csv"
        shutil.copyfile(examples / "users.csv", users)
        upload = demo.run("upload-users", str(users), "--batch-size", "5")
        counts = (upload.data or {}).get("counts", {})
        demo.expect("upload", upload.exit_code == 1 and counts.get("adds_up")
                    and counts.get("uploaded") == 6 and counts.get("rejected") == 6,
                    f"{counts.get('rows_read')} rows: {counts.get('uploaded')} uploaded, "
                    f"{counts.get('rejected')} rejected (exit 1: not every row made it)", upload)
        import csv

        with (folder / "users.rejects.csv").open(encoding="utf-8", newline="") as handle:
            rejects = list(csv.DictReader(handle))
        for reject in rejects[:6]:  # whole reasons, one line each
            code = f" ({reject['code']})" if reject.get("code") else ""
            _story(out, f"  row {reject['row']}: {reject['reason']}{code}", "yellow")
        demo.results["upload"] = counts

        demo.step("Replay a callback fixture: one message's life, and a reply")
        replay = demo.run("callback", "replay", str(examples / "callbacks" / "lifecycle.yaml"),
                          "--no-delay")
        replayed = replay.data or {}
        demo.expect("replay", replay.exit_code == 0 and replayed.get("failed") == 0,
                    f"{replayed.get('sent')} callbacks sent, all answered 2xx", replay)
        tallies = stats()
        demo.results["replay"] = {"clicked": tallies["clicked"], "replies": tallies["replies"]}
        _story(out, f"  campaign stats now: clicked {tallies['clicked']}, replies "
                f"{tallies['replies']}")

        demo.step("ctwa bridge: CleverTap's endpoint in front of Meta's Cloud API (here its "
                  "mock)")
        demo.results["bridge"] = _bridge_step(demo, box, bridge_port, stats)
    _epilogue(out)
    return demo.results



def _bridge_step(demo: Demo, box: Any, port: int,
                 stats: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A template through the bridge: accepted at once, sent to the mock Meta, and Meta's
    webhooks back at CleverTap as sent, delivered and read DLRs with CleverTap's msgId."""
    from ctwa.bridge.config import BridgeSecrets, BridgeSettings
    from ctwa.bridge.run import BridgeThread

    urls, secrets = box.urls(), box.credentials()
    before = stats()
    settings = BridgeSettings(
        phone_number_id=secrets["meta_phone_number_id"], waba_id=secrets["meta_waba_id"],
        status_url=urls["status_callback"], inbound_url=urls["inbound_callback"],
        username="clevertap", listen=f"127.0.0.1:{port}", graph_url=urls["meta_graph"],
        state=str(demo.folder / "bridge.sqlite3"))
    keys = BridgeSecrets(secrets["bsp_password"], secrets["meta_token"],
                         secrets["meta_app_secret"], "demo-verify-token")
    with BridgeThread(settings, keys) as running:
        _story(demo.out, f"  ctwa bridge on {running.url}: POST /messages for CleverTap, /webhook "
                     "for Meta", "dim")
        _wait_for(lambda: running.bridge.last_sync is not None, 10)
        sent = demo.run("send-template", "--sample", "lto", "--to", CUSTOMER, "--endpoint",
                        f"{running.url}/messages", "--username", "clevertap")

        def settled() -> bool:
            now = stats()
            return now["read"] > before["read"] and now["delivered"] > before["delivered"]

        arrived = _wait_for(settled, 15)
        after = stats()
    verdict = (sent.data or {}).get("verdict", sent.data or {})
    dlrs = {k: after[k] - before[k] for k in ("sent", "delivered", "read")}
    demo.expect("bridge", sent.exit_code == 0 and arrived and dlrs == {
        "sent": 1, "delivered": 1, "read": 1},
        f"answered {verdict.get('outcome', '?')} in {verdict.get('latency_ms', '?')} ms; "
        f"Meta's webhooks came back as {dlrs['sent']} sent, {dlrs['delivered']} delivered "
        f"and {dlrs['read']} read with CleverTap's msgId", sent)
    return dlrs


def _epilogue(out: Output) -> None:
    _story(out, "\nEvery step behaved as expected. Against real services:", "bold green")
    for line in (
        "ctwa profile add acme --endpoint https://YOUR-BSP/clevertap --auth basic "
        "--username USER --waba NUMBER --account-id ACCOUNT --region in1 --use",
        "ctwa profile set-secret acme password        # and: passcode, import-token",
        "ctwa validate-endpoint",
        "ctwa import-templates --url https://VENDOR/templates/import",
        "ctwa send-template --template NAME --var VALUE --to NUMBER",
        "ctwa send-template --sample lto --to NUMBER --count 10000   # load: 1500 in flight",
        "ctwa upload-users users.csv",
        "ctwa callback listen --port 8787   # point your BSP's callbacks here to check them",
        "ctwa send-template --template NAME --to NUMBER --await-callbacks --until read",
        "ctwa certify --to TEST_NUMBER   # the spec's acceptance test, with evidence",
        "ctwa bridge --phone-number-id ID --waba-id ID --status-url URL --inbound-url URL "
        "--username USER   # your own endpoint in front of Meta's Cloud API",
    ):
        _story(out, f"  {line}")


def demo(
    ctx: typer.Context,
    keep: Annotated[bool, typer.Option(
        "--keep", help="Keep the scratch folder (profile, library, rejects) afterwards.")]
    = False,
) -> None:
    """Walk through the whole integration against the embedded sandbox, offline."""
    out = of(ctx).out
    human = StoryOutput(json_mode=False, verbose=False, debug=out.debug,
                        story_to_stdout=not out.json_mode)
    folder = Path(tempfile.mkdtemp(prefix="ctwa-demo-"))
    started = time.monotonic()
    try:
        results = run_demo(human, folder, ctx.find_root().command)
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    elapsed = round(time.monotonic() - started, 1)
    human.progress(f"\ndemo finished in {elapsed} s", "bold")
    if out.json_mode:
        out.stdout_json({**results, "elapsed": elapsed})


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
