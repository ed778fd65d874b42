"""Meta-format templates for the mock Cloud API's tests, and requests that fit them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TEMPLATES: list[dict[str, Any]] = [
    {"name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
     "parameter_format": "POSITIONAL", "id": "1001", "components": [
         {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
         {"type": "BODY", "text": "Hi {{1}}, your order ships {{2}}."},
         {"type": "BUTTONS", "buttons": [
             {"type": "URL", "text": "Track", "url": "TAP_BASE/c/{{1}}"},
             {"type": "QUICK_REPLY", "text": "Stop"}]}]},
    {"name": "welcome_named", "language": "en", "status": "APPROVED", "category": "MARKETING",
     "parameter_format": "NAMED", "id": "1002", "components": [
         {"type": "BODY", "text": "Welcome {{first_name}}, use {{code}}."}]},
    {"name": "offer", "language": "en", "status": "APPROVED", "category": "MARKETING",
     "parameter_format": "POSITIONAL", "id": "1003", "components": [
         {"type": "HEADER", "format": "IMAGE"},
         {"type": "LIMITED_TIME_OFFER", "limited_time_offer": {"text": "Sale",
                                                               "has_expiration": True}},
         {"type": "BODY", "text": "Hey {{1}}"},
         {"type": "BUTTONS", "buttons": [{"type": "COPY_CODE", "example": ["SAVE10"]},
                                         {"type": "URL", "text": "Shop",
                                          "url": "https://shop.example.com/{{1}}"}]}]},
    {"name": "cards", "language": "en", "status": "APPROVED", "category": "MARKETING",
     "parameter_format": "POSITIONAL", "id": "1004", "components": [
         {"type": "BODY", "text": "Pick one, {{1}}"},
         {"type": "CAROUSEL", "cards": [{"components": [
             {"type": "HEADER", "format": "IMAGE"},
             {"type": "BODY", "text": "Card {{1}}"},
             {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "This"}]}]}
             for _ in range(2)]}]},
    {"name": "where", "language": "en", "status": "APPROVED", "category": "UTILITY",
     "id": "1005", "components": [{"type": "HEADER", "format": "LOCATION"},
                                  {"type": "BODY", "text": "We are here."}]},
    {"name": "tired", "language": "en", "status": "PAUSED", "category": "MARKETING",
     "id": "1006", "components": [{"type": "BODY", "text": "Paused."}]},
    {"name": "waiting", "language": "en", "status": "PENDING", "category": "MARKETING",
     "id": "1007", "components": [{"type": "BODY", "text": "Pending."}]},
]


def write_templates(folder: Path, tap_base: str = "https://bridge.example.com") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for template in TEMPLATES:
        text = json.dumps(template).replace("TAP_BASE", tap_base)
        (folder / f"{template['name']}.json").write_text(text, encoding="utf-8")
    return folder


def text_param(text: str, name: str | None = None) -> dict[str, Any]:
    return {"type": "text", "text": text, **({"parameter_name": name} if name else {})}


def template(name: str, language: str = "en", components: list[Any] | None = None,
             to: str = "919000000001", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "language": {"code": language}}
    if components is not None:
        body["components"] = components
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
            "type": "template", "template": body, **extra}


def order_update(to: str = "919000000001", suffix: str = "abc123", **extra: Any) -> dict:
    return template("order_update", "en_US", [
        {"type": "header", "parameters": [text_param("#42")]},
        {"type": "body", "parameters": [text_param("Ann"), text_param("today")]},
        {"type": "button", "sub_type": "url", "index": "0",
         "parameters": [text_param(suffix)]},
        {"type": "button", "sub_type": "quick_reply", "index": 1,
         "parameters": [{"type": "payload", "payload": "STOP"}]}], to=to, **extra)


GOOD_REQUESTS: dict[str, dict[str, Any]] = {
    "text": {"messaging_product": "whatsapp", "to": "919000000001", "type": "text",
             "text": {"body": "Hello", "preview_url": False}},
    "image": {"messaging_product": "whatsapp", "to": "919000000001", "type": "image",
              "image": {"link": "https://cdn.example.com/a.png", "caption": "look"}},
    "audio": {"messaging_product": "whatsapp", "to": "919000000001", "type": "audio",
              "audio": {"link": "https://cdn.example.com/a.ogg"}},
    "video": {"messaging_product": "whatsapp", "to": "919000000001", "type": "video",
              "video": {"link": "https://cdn.example.com/a.mp4", "caption": "watch"}},
    "document": {"messaging_product": "whatsapp", "to": "919000000001", "type": "document",
                 "document": {"link": "https://cdn.example.com/a.pdf", "filename": "a.pdf",
                              "caption": "read"}},
    "template-positional": order_update(),
    "template-named": template("welcome_named", components=[
        {"type": "body", "parameters": [text_param("Ann", "first_name"),
                                        text_param("X1", "code")]}]),
    "template-lto-copy-code": template("offer", components=[
        {"type": "header", "parameters": [{"type": "image",
                                           "image": {"link": "https://cdn.example.com/o.png"}}]},
        {"type": "limited_time_offer", "parameters": [
            {"type": "limited_time_offer",
             "limited_time_offer": {"expiration_time_ms": 1_900_000_000_000}}]},
        {"type": "body", "parameters": [text_param("Ann")]},
        {"type": "button", "sub_type": "copy_code", "index": 0,
         "parameters": [{"type": "coupon_code", "coupon_code": "SAVE10"}]},
        {"type": "button", "sub_type": "url", "index": 1, "parameters": [text_param("o/1")]}]),
    "template-carousel": template("cards", components=[
        {"type": "body", "parameters": [text_param("Ann")]},
        {"type": "carousel", "cards": [
            {"card_index": i, "components": [
                {"type": "header", "parameters": [
                    {"type": "image", "image": {"link": f"https://cdn.example.com/{i}.png"}}]},
                {"type": "body", "parameters": [text_param(str(i))]},
                {"type": "button", "sub_type": "quick_reply", "index": 0,
                 "parameters": [{"type": "payload", "payload": f"card-{i}"}]}]}
            for i in range(2)]}]),
    "template-location": template("where", components=[
        {"type": "header", "parameters": [{"type": "location", "location": {
            "latitude": "12.97", "longitude": "77.59", "name": "Shop",
            "address": "MG Road"}}]}]),
}
