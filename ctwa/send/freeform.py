"""Freeform (session) message payloads, per the freeform table and ERRATA's "not published"."""

from __future__ import annotations

from ctwa.infra.errors import InputError
from ctwa.wire import outbound as out

_ALLOWED = {
    "text": {"text"},
    "image": {"media_url", "caption"},
    "video": {"media_url", "caption"},
    "audio": {"media_url"},
    "file": {"media_url", "caption", "filename"},
}
_FLAGS = {"text": "--text", "media_url": "--media-url", "caption": "--caption",
          "filename": "--filename"}


def build_freeform(kind: str, *, to: str, waba: str, msg_id: str, text: str | None = None,
                   media_url: str | None = None, caption: str | None = None,
                   filename: str | None = None) -> out.FreeformBase:
    """The payload for one freeform type; options that type does not carry are refused."""
    if kind not in _ALLOWED:
        raise InputError(f"--type {kind!r} is not a freeform type",
                         hint=f"use one of {', '.join(_ALLOWED)}")
    given = {"text": text, "media_url": media_url, "caption": caption, "filename": filename}
    extra = [name for name, value in given.items() if value is not None
             and name not in _ALLOWED[kind]]
    if extra:
        raise InputError(f"{_article(kind)} {kind} message does not carry {_FLAGS[extra[0]]}")
    needed = "text" if kind == "text" else "media_url"
    if not given[needed]:
        raise InputError(f"{_article(kind)} {kind} message needs {_FLAGS[needed]}")
    common = {"to": to, "wabaNumber": waba, "msgId": msg_id}
    if kind == "text":
        return out.FreeformText(text=out.TextBody(body=text or ""), **common)
    if kind == "audio":
        return out.FreeformAudio(audio=out.Media(mediaURL=media_url or ""), **common)
    if kind == "file":
        return out.FreeformFile(file=out.CaptionedFile(mediaURL=media_url or "", caption=caption,
                                                       filename=filename), **common)
    media = out.CaptionedMedia(mediaURL=media_url or "", caption=caption)
    if kind == "image":
        return out.FreeformImage(image=media, **common)
    return out.FreeformVideo(video=media, **common)


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
