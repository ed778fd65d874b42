"""Evidence that proves something (issue 25 items 5 and 13): certify writes every file whatever
a hostile BSP answers; the manifest is signed with Ed25519 (``certify keygen``, ``--sign-key``)
and ``certify verify`` requires the known file set, refuses links, subfolders and paths, and
checks the signature against the key or fingerprint given."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ctwa.certify.evidence import EVIDENCE_FILES, MANIFEST, keygen, load_private_key
from ctwa.certify.evidence import write_manifest as manifest_of
from ctwa.infra.errors import ExitCode
from ctwa.infra.ports import free_port
from tests.conftest import LiveServer
from tests.test_hostile_text import Hostile, clean_terminal, html_parses


def evidence(folder: Path, detail: str = "FAIL") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in EVIDENCE_FILES:
        (folder / name).write_text(f"{name}: {detail}\n")
    return folder


def signed(tmp_path: Path, name: str = "k") -> tuple[Path, str, object]:
    private, public, print_ = keygen(tmp_path / name)
    return public, print_, load_private_key(private)


def test_keygen_writes_a_private_key_for_its_owner_and_prints_the_fingerprint(cli,
                                                                            tmp_path) -> None:
    result = cli("certify", "keygen", "--out", str(tmp_path / "sign.key"))
    assert result.exit_code == 0, result.stderr
    fingerprint = result.stdout.strip()
    assert fingerprint.startswith("SHA256:") and len(fingerprint) == 50
    assert (tmp_path / "sign.key").stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" not in (tmp_path / "sign.key.pub").read_bytes()
    assert "PRIVATE" not in result.stdout + result.stderr
    again = cli("certify", "keygen", "--out", str(tmp_path / "sign.key"))
    assert again.exit_code == ExitCode.USAGE and "never overwrites" in again.stderr


def test_a_signed_folder_verifies_by_key_and_by_fingerprint(cli, tmp_path) -> None:
    public, fingerprint, key = signed(tmp_path)
    folder = evidence(tmp_path / "ev")
    manifest_of(folder, 1.0, 2.0, key)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*EVIDENCE_FILES, MANIFEST, "manifest.sig", "signer.pub"])
    by_print = cli("certify", "verify", str(folder), "--fingerprint", fingerprint)
    assert by_print.exit_code == 0, by_print.stderr
    assert f"signed by {fingerprint}, as required" in by_print.stdout
    by_key = cli("--json", "certify", "verify", str(folder), "--key", str(public))
    assert json.loads(by_key.stdout)["signed"] == {"fingerprint": fingerprint, "trusted": True}
    alone = cli("certify", "verify", str(folder))
    assert alone.exit_code == 0 and "with the key in the folder itself" in alone.stderr


def test_a_failed_run_rewritten_as_a_pass_does_not_verify(cli, tmp_path) -> None:
    """The attack of item 13: rewrite results.json, recompute the manifest (unsigned, or
    signed with the forger's own key): neither verifies against the BSP's fingerprint."""
    _, fingerprint, key = signed(tmp_path)
    folder = evidence(tmp_path / "ev")
    manifest_of(folder, 1.0, 2.0, key)
    (folder / "results.json").write_text("results.json: PASS\n")
    changed = cli("certify", "verify", str(folder), "--fingerprint", fingerprint)
    assert changed.exit_code == ExitCode.FAILED and "results.json was changed" in changed.stderr
    manifest_of(folder, 1.0, 2.0)  # recomputed: the old signature no longer holds
    resummed = cli("certify", "verify", str(folder), "--fingerprint", fingerprint)
    assert resummed.exit_code == ExitCode.FAILED
    assert "the signature of manifest.json does not hold" in resummed.stderr
    manifest_of(folder, 1.0, 2.0, key)
    for extra in ("manifest.sig", "signer.pub"):
        (folder / extra).unlink()
    dropped = cli("certify", "verify", str(folder))  # the manifest still names its signer
    assert dropped.exit_code == ExitCode.FAILED and "manifest.sig and signer.pub are " \
        "missing" in dropped.stderr
    manifest_of(folder, 1.0, 2.0)
    unsigned = cli("certify", "verify", str(folder), "--fingerprint", fingerprint)
    assert unsigned.exit_code == ExitCode.FAILED and "not signed" in unsigned.stderr
    plain = cli("certify", "verify", str(folder))  # what an unsigned folder proves: little
    assert plain.exit_code == 0 and "not who wrote it" in plain.stderr
    _, _, forger = signed(tmp_path, "forger")
    manifest_of(folder, 1.0, 2.0, forger)
    forged = cli("certify", "verify", str(folder), "--fingerprint", fingerprint)
    assert forged.exit_code == ExitCode.FAILED and f"not by {fingerprint}" in forged.stderr


def test_a_folder_of_only_an_empty_manifest_does_not_verify(cli, tmp_path) -> None:
    folder = tmp_path / "ev"
    folder.mkdir()
    (folder / MANIFEST).write_text('{"sha256": {}}')
    result = cli("certify", "verify", str(folder))
    assert result.exit_code == ExitCode.FAILED
    for name in EVIDENCE_FILES:
        assert f"{name} is not in the manifest" in result.stderr


@pytest.mark.parametrize("name", ["../outside.txt", "/etc/hostname", "sub/report.html",
                                  "sub\\report.html", "..", ".hidden", "extra.txt"])
def test_manifest_entries_that_are_paths_or_unknown_are_refused(cli, tmp_path, name) -> None:
    folder = evidence(tmp_path / "ev")
    manifest_of(folder, 1.0, 2.0)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["sha256"][name] = "0" * 64
    (folder / MANIFEST).write_text(json.dumps(manifest))
    result = cli("certify", "verify", str(folder))
    assert result.exit_code == ExitCode.FAILED, result.stdout
    assert repr(name) in result.stderr


@pytest.mark.parametrize("kind", ["symlink", "subfolder", "linked-folder", "extra-file"])
def test_links_subfolders_and_extra_files_are_refused(cli, tmp_path, kind) -> None:
    folder = evidence(tmp_path / "ev")
    manifest_of(folder, 1.0, 2.0)
    if kind == "symlink":  # the file's content is the same: only the link gives it away
        (tmp_path / "real.html").write_bytes((folder / "report.html").read_bytes())
        (folder / "report.html").unlink()
        (folder / "report.html").symlink_to(tmp_path / "real.html")
    elif kind == "subfolder":
        (folder / "sub").mkdir()
    elif kind == "linked-folder":
        (tmp_path / "link").symlink_to(folder)
        folder = tmp_path / "link"
    else:
        (folder / "notes.txt").write_text("x")
    result = cli("certify", "verify", str(folder))
    assert result.exit_code == ExitCode.FAILED, result.stdout
    assert {"symlink": "report.html is a link", "subfolder": "sub is not a plain file",
            "linked-folder": "is a link", "extra-file": "notes.txt is not a file"}[kind] \
        in result.stderr


def test_a_bad_sign_key_is_said_before_anything_is_sent(cli, tmp_path) -> None:
    (tmp_path / "bad.key").write_text("not a key")
    result = cli("certify", "--to", "919000000001", "--endpoint", "http://127.0.0.1:9/wa",
                 "--sign-key", str(tmp_path / "bad.key"), "--report-dir",
                 str(tmp_path / "ev"))
    assert result.exit_code == ExitCode.USAGE and "not an unencrypted PEM" in result.stderr
    assert not (tmp_path / "ev").exists()


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    from ctwa.http import Auth, make_client
    from ctwa.sandbox.server import RunningSandbox, SandboxSettings
    from ctwa.templates.importer import Importer
    from ctwa.templates.library import TemplateLibrary

    folder = tmp_path_factory.mktemp("library")
    with RunningSandbox(SandboxSettings(port=0, store_callbacks=False)) as box, \
            make_client(auth=Auth("bearer", secret=box.credentials()["vendor_token"]),
                        origin=box.urls()["vendor_templates"]) as client:
        Importer(client, TemplateLibrary(folder)).run(box.urls()["vendor_templates"], 50, 10)
    return folder


HOSTILE = "\x1b]0;owned\x07 \x1b[2J half \ud83d <!--<script> ]]> \x00 \x9b [/x]"


@pytest.mark.parametrize("answer", ["json", "text", "echo-basic", "echo-bearer"])
def test_certify_against_a_hostile_bsp_writes_whole_signed_evidence(cli, library, tmp_path,
                                                                    answer) -> None:
    """Item 5: control characters and lone surrogates in every BSP answer; every file is
    written and parses back, nothing raw reaches the terminal, the signed folder verifies.
    Item 11: a BSP echoing the request's headers (Basic or bearer credential, a --header
    value) leaves them in no file of the folder sent to CleverTap."""
    import base64

    _, fingerprint, _key = signed(tmp_path)
    server = Hostile()
    server.body = (json.dumps({"status": "failure", "error": {"code": 2001,
                                                              "message": HOSTILE}}).encode()
                   if answer == "json" else HOSTILE.encode("utf-8", "surrogatepass"))
    server.echo = answer.startswith("echo")
    auth = (("--token", "tok-CANARY-91bd") if answer == "echo-bearer" else
            ("--username", "ctwa", "--password", "pw-CANARY-7f3a"))
    folder = tmp_path / "ev"
    with LiveServer(server.app()) as live:
        result = cli("certify", "--to", "919000000001", "--waba", "919999999998",
                     "--endpoint", f"{live.url}/wa", *auth,
                     "--header", "X-Custom: imp-CANARY-0c11",
                     "--library", str(library), "--listen", f"127.0.0.1:{free_port()}",
                     "--callback-timeout", "1s", "--no-interactive", "--report-dir",
                     str(folder), "--sign-key", str(tmp_path / "k"))
    clean_terminal(result)
    assert result.exit_code == ExitCode.FAILED, result.stderr[-2000:]
    assert f"signed by {fingerprint}" in result.stdout
    html_parses(folder / "report.html")
    ET.parse(folder / "junit.xml")
    json.loads((folder / "results.json").read_text(encoding="utf-8"))
    lines = (folder / "exchanges.ndjson").read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 3 and all(json.loads(line) for line in lines)
    if server.echo:
        assert "x-custom" in (folder / "results.json").read_text(encoding="utf-8")
    basic = base64.b64encode(b"ctwa:pw-CANARY-7f3a").decode()
    for path in folder.iterdir():
        text = path.read_text(encoding="utf-8")
        for secret in ("pw-CANARY-7f3a", "tok-CANARY-91bd", "imp-CANARY-0c11", basic):
            assert secret not in text, (path.name, secret)
    verified = cli("certify", "verify", str(folder), "--fingerprint", fingerprint)
    assert verified.exit_code == 0, verified.stderr
