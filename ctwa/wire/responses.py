"""What a messaging endpoint answers CleverTap (spec: Expected API Response, ERRATA 18)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Tag

from ctwa.wire.codes import MESSAGING_ERRORS
from ctwa.wire.common import OpenModel, Problem


class EndpointError(OpenModel):
    code: int | None = None
    message: str | None = None


class EndpointResponse(OpenModel):
    """``{"status": "success"}`` or ``{"status": "failure", "error": {"code", "message"}}``.

    Extra keys are allowed: BSPs often add their own message id, and CleverTap reads only
    ``status`` and ``error``.
    """

    status: Literal["success", "failure"]
    error: EndpointError | None = None


class EndpointMessage(OpenModel):
    """The bare ``{"message": "..."}`` shape the spec shows for 429 and 403."""

    message: str


def _answer_tag(value: Any) -> str:
    if isinstance(value, dict):
        return "message" if "status" not in value and "message" in value else "status"
    return "message" if isinstance(value, EndpointMessage) else "status"


#: Any answer shape the spec shows: the status object, or a bare message (429, 403).
EndpointAnswer = Annotated[
    Annotated[EndpointResponse, Tag("status")] | Annotated[EndpointMessage, Tag("message")],
    Discriminator(_answer_tag),
]


def check_response(answer: EndpointResponse | EndpointMessage) -> list[Problem]:
    problems: list[Problem] = []
    if isinstance(answer, EndpointMessage):
        return problems
    if answer.status == "failure":
        if answer.error is None or answer.error.code is None:
            problems.append(Problem("warning", "$.error.code", "a failure without an error code;"
                                    " CleverTap cannot tell the campaign why it failed",
                                    hint="add error.code (2000-2004)", errata=18))
        elif answer.error.code not in MESSAGING_ERRORS:
            problems.append(Problem("error", "$.error.code", f"unknown error code "
                                    f"{answer.error.code}", hint="use 2000-2004"))
    return problems


def success_body() -> dict[str, Any]:
    return {"status": "success"}


def failure_body(code: int, message: str | None = None) -> dict[str, Any]:
    text = message or MESSAGING_ERRORS.get(code, "error")
    return {"status": "failure", "error": {"code": code, "message": text}}
