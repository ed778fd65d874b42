"""The evidence bundle: a folder of the report, the results, JUnit XML, every exchange with
secrets masked, and a manifest of SHA-256 sums that ``ctwa certify verify`` checks.

A manifest alone proves integrity against accidents (a file cut in transit, edited by
mistake), never against its author: anyone can rewrite a failed run as a pass and compute the
sums again. Signed (``ctwa certify keygen``, ``ctwa certify --sign-key``), the manifest carries
an Ed25519 signature (``manifest.sig``) and the signer's public key (``signer.pub``); checked
with ``verify --key`` or ``--fingerprint`` (the key or fingerprint the BSP gave CleverTap
beforehand, not the copy in the folder), it proves the folder is as the key holder wrote it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctwa.infra.errors import CheckFailed, InputError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "signer.pub"
#: What ``ctwa certify`` writes, and all a manifest may name: nothing more, nothing less.
EVIDENCE_FILES = ("exchanges.ndjson", "junit.xml", "report.html", "results.json")
#: The contract a certification checks against: CleverTap's Generic WhatsApp integration
#: (payloadVersion 0.1 for messages, callback payloadVersion 0.1), as ERRATA.md reads it.
SPEC_VERSION = "CleverTap Generic WhatsApp integration, payloadVersion 0.1 (ctwa ERRATA 1-17)"


class Exchanges:
    """exchanges.ndjson: one line per request and answer, written as they happen (masked)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = path.open("w", encoding="utf-8")
        self._lock = threading.Lock()
        self.count = 0

    def add(self, step: str, exchange: dict[str, Any]) -> None:
        """One exchange, made safe and masked on its values (never on the serialised line,
        which a mask could break), as one JSON line."""
        from ctwa.infra.safetext import json_ready, safe_value

        line = json.dumps(safe_value(json_ready({"step": step, **exchange})),
                          ensure_ascii=False)
        with self._lock:
            self._handle.write(line + "\n")
            self._handle.flush()
            self.count += 1

    def close(self) -> None:
        self._handle.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- keys ------------------------------------------------------------------------------------


def fingerprint(public: Ed25519PublicKey) -> str:
    """``SHA256:`` and the unpadded base64 of the SHA-256 of the raw 32-byte key (OpenSSH's
    way of writing one), short enough to read out on a call or paste in a mail."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


def _public_pem(public: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def keygen(path: Path) -> tuple[Path, Path, str]:
    """A new Ed25519 key pair: the private key at ``path`` (PEM, readable by its owner only),
    the public key beside it as ``path.pub``; (private path, public path, fingerprint).
    Never overwrites a key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    public_path = path.with_name(path.name + ".pub")
    for target in (path, public_path):
        if target.exists() or target.is_symlink():
            raise InputError(f"{target}: exists; ctwa never overwrites a key",
                             hint="give another --out, or remove the old key first")
    if not path.parent.is_dir():
        raise InputError(f"{path}: the folder {path.parent} does not exist")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(private)
        public_path.write_bytes(_public_pem(key.public_key()))
    except OSError as exc:
        raise InputError(f"{path}: cannot write the key ({exc.strerror})") from exc
    return path, public_path, fingerprint(key.public_key())


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The signing key of ``--sign-key``, or one line saying what is wrong with the file."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    data = _read_key_file(path, "--sign-key")
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: not an unencrypted PEM private key",
                         hint="make one with `ctwa certify keygen`") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{path}: not an Ed25519 key",
                         hint="make one with `ctwa certify keygen`")
    return key


def load_public_key(path: Path, what: str = "--key") -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (``keygen``'s ``.pub``, or ``signer.pub``)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    data = _read_key_file(path, what)
    try:
        key = load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: not a PEM public key",
                         hint="give the .pub file `ctwa certify keygen` wrote") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"{path}: not an Ed25519 public key")
    return key


def _read_key_file(path: Path, what: str) -> bytes:
    try:
        if path.stat().st_size > 64 * 1024:
            raise InputError(f"{what} {path}: too large for a key file")
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{what} {path}: is a folder", hint="give the key file") from None
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot read ({exc.strerror})") from exc


# --- the manifest ----------------------------------------------------------------------------


def write_manifest(folder: Path, started: float, ended: float,
                   sign_key: Ed25519PrivateKey | None = None) -> dict[str, Any]:
    """The manifest of the evidence files; signed with ``sign_key`` when given (then
    ``manifest.sig`` and ``signer.pub`` are written beside it, and the manifest names the
    signer's fingerprint, so the signature covers who signed)."""
    from ctwa import __version__

    files = {name: _sha256(folder / name) for name in EVIDENCE_FILES
             if (folder / name).is_file()}
    manifest: dict[str, Any] = {"ctwa_version": __version__, "spec": SPEC_VERSION,
                                "started": started, "ended": ended, "sha256": files}
    if sign_key is not None:
        manifest["signer"] = fingerprint(sign_key.public_key())
    text = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
    (folder / MANIFEST).write_bytes(text)
    if sign_key is not None:
        signature = base64.b64encode(sign_key.sign(text)).decode("ascii")
        (folder / SIGNATURE).write_text(signature + "\n", encoding="ascii")
        (folder / PUBLIC_KEY).write_bytes(_public_pem(sign_key.public_key()))
    return manifest


def _entries(folder: Path) -> list[Path]:
    """The folder's entries; a link or a subfolder is refused: evidence is plain files."""
    if folder.is_symlink():
        raise CheckFailed(f"{folder}: is a link; verify the evidence folder itself")
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder", hint="give the folder `ctwa certify` wrote")
    entries = sorted(folder.iterdir())
    odd = [f"{p.name} is a link" if p.is_symlink() else f"{p.name} is not a plain file"
           for p in entries if p.is_symlink() or not p.is_file()]
    if odd:
        raise CheckFailed(f"{folder}: " + "; ".join(odd)
                          + " (an evidence folder holds only the files ctwa certify wrote)")
    return entries


def _bad_name(name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return f"{name!r} is not a file name"
    if "/" in name or "\\" in name or name.startswith(".") or Path(name).is_absolute() \
            or ".." in name or "\0" in name:
        return f"{name!r} is a path (separators, '..' or absolute), not a file of the folder"
    if name not in EVIDENCE_FILES:
        return f"{name!r} is not a file ctwa certify writes"
    return None


def _read_manifest(path: Path) -> tuple[bytes, dict[str, Any], dict[str, str]]:
    try:
        raw = path.read_bytes()
        manifest = json.loads(raw)
        sums = manifest["sha256"]
        if not isinstance(manifest, dict) or not isinstance(sums, dict):
            raise TypeError("sha256 is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a ctwa manifest ({type(exc).__name__})") from exc
    return raw, manifest, sums


def verify(folder: Path, key: Path | None = None, expect: str | None = None
           ) -> dict[str, Any]:
    """The folder is exactly what ``ctwa certify`` writes: the known files, each with the sum
    the manifest gives, nothing else, no link or subfolder; and, when signed, the signature
    holds. ``key`` (a public key file) or ``expect`` (a fingerprint) says whose signature is
    required; without either, a signature is checked against the key in the folder, which
    proves nothing about who signed (the result says so)."""
    entries = _entries(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise InputError(f"{folder}: no {MANIFEST}: not a ctwa certify evidence folder")
    raw, manifest, sums = _read_manifest(path)
    problems = [why for why in map(_bad_name, sums) if why]
    problems += [f"{name} is not in the manifest" for name in EVIDENCE_FILES
                 if name not in sums]
    for name, wanted in sums.items():
        if _bad_name(name):
            continue
        file = folder / name
        if not file.is_file():
            problems.append(f"{name} is missing")
        elif not isinstance(wanted, str) or _sha256(file) != wanted.lower():
            problems.append(f"{name} was changed (its SHA-256 differs)")
    allowed = {MANIFEST, SIGNATURE, PUBLIC_KEY, *EVIDENCE_FILES}
    problems += [f"{p.name} is not a file ctwa certify writes" for p in entries
                 if p.name not in allowed]
    problems += [f"{p.name} is not in the manifest" for p in entries
                 if p.name in EVIDENCE_FILES and p.name not in sums]
    signed = _signature(folder, raw, manifest, key, expect, problems)
    if problems:
        raise CheckFailed(f"{folder}: " + "; ".join(dict.fromkeys(problems)))
    return {**manifest, "signed": signed}


def _signature(folder: Path, raw: bytes, manifest: dict[str, Any], key: Path | None,
               expect: str | None, problems: list[str]) -> dict[str, Any] | None:
    """Check the signature (appending what fails to ``problems``); what it proves, or None
    when the folder is not signed."""
    from cryptography.exceptions import InvalidSignature

    sig_path, pub_path = folder / SIGNATURE, folder / PUBLIC_KEY
    if not sig_path.exists() and not pub_path.exists():
        if manifest.get("signer") is not None:
            problems.append(f"{MANIFEST} says it was signed by {manifest['signer']}, but "
                            f"{SIGNATURE} and {PUBLIC_KEY} are missing")
        elif key is not None or expect is not None:
            problems.append(f"the folder is not signed ({SIGNATURE} is missing), so it "
                            "cannot be checked against a key")
        return None
    if not sig_path.is_file() or not pub_path.is_file():
        missing = SIGNATURE if not sig_path.is_file() else PUBLIC_KEY
        problems.append(f"{missing} is missing (a signed folder has both)")
        return None
    try:
        folder_key = load_public_key(pub_path, PUBLIC_KEY)
    except InputError as exc:
        problems.append(exc.message)
        return None
    public = load_public_key(key) if key is not None else folder_key
    shown = fingerprint(public)
    if expect is not None and _norm(expect) != _norm(shown):
        problems.append(f"signed by {fingerprint(folder_key)}, not by {expect.strip()}")
        return None
    if manifest.get("signer") != fingerprint(folder_key):
        problems.append(f"{MANIFEST} names signer {manifest.get('signer')!r}, but "
                        f"{PUBLIC_KEY} is {fingerprint(folder_key)}")
    try:
        signature = base64.b64decode(sig_path.read_text(encoding="ascii").strip(),
                                     validate=True)
        public.verify(signature, raw)
    except (InvalidSignature, ValueError, UnicodeDecodeError):
        whose = "the --key" if key is not None else "its public key"
        problems.append(f"the signature of {MANIFEST} does not hold for {whose} "
                        f"({shown}): the folder was changed after it was signed, or signed "
                        "by another key")
        return None
    return {"fingerprint": shown, "trusted": key is not None or expect is not None}


def _norm(text: str) -> str:
    """A fingerprint as given (with or without its ``SHA256:``), for comparing."""
    value = text.strip()
    return value[7:] if value[:7].upper() == "SHA256:" else value
