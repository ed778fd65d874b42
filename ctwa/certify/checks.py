"""The checks a certification runs, their outcomes and the evidence each keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PASS, FAIL, NOT_TESTED = "pass", "fail", "not tested"
ATTESTED, NOT_ATTESTED = "attested", "not attested"

#: The spec's "Partner Acceptance Criteria" that no tool can test: a person attests them.
MANUAL_CRITERIA = {
    "test-accounts": "API credentials for two test accounts shared with CleverTap",
    "dashboard-access": "dashboard access for CleverTap to create or share approved templates",
    "callback-url": "CleverTap's callback URL added to the test accounts",
    "integration-guide": "a CleverTap integration guide published in the user documentation",
    "support-contacts": "contact details of the support and product teams",
    "customers-at-scale": "the integration tested with a few customers at scale",
}

#: The template component kinds a certification tries to exercise.
COMPONENT_KINDS = ("media header", "text header", "footer", "URL button", "quick reply",
                   "copy code", "call button", "limited-time offer", "carousel",
                   "location header")


@dataclass
class Check:
    name: str
    title: str
    status: str = NOT_TESTED
    detail: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    def done(self, status: str, detail: str, **evidence: Any) -> Check:
        self.status, self.detail = status, detail
        self.evidence.update(evidence)
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "status": self.status,
                "detail": self.detail, "evidence": self.evidence}


def component_kinds(template: dict[str, Any]) -> set[str]:
    """Which of COMPONENT_KINDS a Meta-format template holds."""
    kinds: set[str] = set()
    for component in template.get("components") or []:
        kind = str(component.get("type", "")).upper()
        fmt = str(component.get("format") or "").upper()
        if kind == "HEADER":
            kinds.add({"TEXT": "text header", "LOCATION": "location header"}.get(
                fmt, "media header"))
        elif kind == "FOOTER":
            kinds.add("footer")
        elif kind == "LIMITED_TIME_OFFER":
            kinds.add("limited-time offer")
        elif kind == "CAROUSEL":
            kinds.add("carousel")
        elif kind == "BUTTONS":
            for button in component.get("buttons") or []:
                kinds.add({"URL": "URL button", "QUICK_REPLY": "quick reply",
                           "COPY_CODE": "copy code", "PHONE_NUMBER": "call button"}.get(
                    str(button.get("type", "")).upper(), "other button"))
    return kinds & set(COMPONENT_KINDS)


def url_buttons(template: dict[str, Any]) -> int:
    return sum(1 for component in template.get("components") or []
               if str(component.get("type", "")).upper() == "BUTTONS"
               for button in component.get("buttons") or []
               if str(button.get("type", "")).upper() == "URL")
