"""CleverTap's user profile upload API: request records and recorded answers (FACTS.md)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, model_validator

from ctwa.wire.common import OpenModel, Problem, WireModel, json_path
from ctwa.wire.limits import (
    IDENTITY_KEYS,
    MAX_CUSTOM_KEYS,
    MAX_IDENTITY,
    MAX_KEY_BYTES,
    MAX_RECORDS,
    MAX_VALUE_BYTES,
)

ProfileValue = str | int | float | bool | list[str] | None


#: What CleverTap takes for the demographic properties, as its own client snippets write them
#: (``"Employed": "Y"``, ``"Education": "Graduate"``, ``"Married": "Y"``, ``"Age": 28``);
#: other values are refused with 517-520. Keys as CleverTap spells them, and as users do.
YES_NO = ("Y", "N")
EDUCATION = ("Graduate", "College", "School")
MAX_AGE = 150
DEMOGRAPHICS = {"Employed": (517, "employment"), "Employment": (517, "employment"),
                "Education": (518, "education"), "Married": (519, "marital status"),
                "Age": (520, "age")}


def demographic_refusal(key: str, value: Any) -> tuple[int, str, str] | None:
    """(code, what is wrong, how to write it) for a demographic property CleverTap refuses,
    or None (other keys, good values)."""
    if key not in DEMOGRAPHICS:
        return None
    code, what = DEMOGRAPHICS[key]
    if key == "Age":
        whole = isinstance(value, int) and not isinstance(value, bool)
        if not (whole and 0 <= value <= MAX_AGE):
            return code, f"Age {value!r} is not an age", f"a whole number 0-{MAX_AGE}, e.g. 28"
        return None
    allowed = EDUCATION if key == "Education" else YES_NO
    if value not in allowed:
        return (code, f"{key} {value!r} is not a {what} value CleverTap knows",
                "one of " + ", ".join(allowed))
    return None


class UploadRecord(WireModel):
    #: a number too: CleverTap processes ``"identity": 4``
    identity: str | StrictInt | None = None
    objectId: str | None = None
    FBID: str | None = None
    GPID: str | None = None
    type: Literal["profile", "event"] = "profile"
    ts: Any = None  # checked by check_record, with CleverTap's own code (525)
    profileData: dict[str, ProfileValue] | None = None
    evtName: str | None = None
    evtData: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_identity(self) -> UploadRecord:
        given = [key for key in IDENTITY_KEYS if getattr(self, key)]
        if not given:
            raise ValueError("a record needs one of identity, objectId, FBID or GPID")
        for key in given:
            if len(str(getattr(self, key))) >= MAX_IDENTITY:
                raise ValueError(f"{key} must be under {MAX_IDENTITY} characters")
        if self.type == "profile" and self.profileData is None:
            raise ValueError("a profile record needs profileData")
        return self


class UploadRequest(WireModel):
    d: Annotated[list[UploadRecord], Field(min_length=1, max_length=MAX_RECORDS)]


class UnprocessedRecord(OpenModel):
    status: str | None = None
    code: int | None = None
    error: str | None = None
    record: str | dict[str, Any] | None = None


class UploadResponse(OpenModel):
    status: str
    processed: int | None = None
    unprocessed: list[UnprocessedRecord] = Field(default_factory=list)
    error: str | None = None
    code: int | None = None


def check_record(record: UploadRecord, path: list[Any]) -> list[Problem]:
    """The per-record checks ``upload-users`` applies (and CleverTap, with the code it refuses
    a record with), so a linted request is one CleverTap takes whole."""
    from ctwa.upload.phones import to_e164
    from ctwa.upload.rules import EMAIL_SHAPE

    problems: list[Problem] = []
    data = record.profileData or {}

    def refuse(key: str | None, message: str, code: int, hint: str | None = None) -> None:
        where = [*path, "profileData", key] if key else path
        problems.append(Problem("error", json_path(where), f"{message} (CleverTap refuses the "
                                f"record: {code})", hint))

    if record.ts is not None and not (isinstance(record.ts, int)
                                      and not isinstance(record.ts, bool) and record.ts > 0):
        problems.append(Problem("error", json_path([*path, "ts"]), f"ts {record.ts!r} is not an "
                                "epoch time in seconds (CleverTap refuses the record: 525)",
                                hint="e.g. 1700000000"))
    phone = data.get("Phone")
    if phone is not None:
        if not isinstance(phone, str):
            reason: str | None = "must be a string"
        elif not phone.strip().startswith("+"):
            reason = "has no + and country code"
        else:
            reason = to_e164(phone, None)[1]
        if reason:
            refuse("Phone", f"Phone {phone!r}: {reason}", 516,
                   "a string with + and country code, e.g. +14155551234")
    email = data.get("Email")
    if email is not None and not (isinstance(email, str) and EMAIL_SHAPE.match(email)):
        refuse("Email", f"Email {email!r} is not an email address", 515)
    gender = data.get("Gender")
    if gender is not None and gender not in _GENDERS:
        refuse("Gender", f"Gender {gender!r} is not one CleverTap knows", 514,
               "use M, F or O")
    for key, value in data.items():
        refused = demographic_refusal(key, value)
        if refused is not None:
            refuse(key, refused[1], refused[0], refused[2])
    custom = [key for key in data if not key.startswith("MSG-")]
    if len(custom) > MAX_CUSTOM_KEYS:
        problems.append(Problem("error", json_path([*path, "profileData"]),
                                f"{len(custom)} properties; CleverTap keeps at most "
                                f"{MAX_CUSTOM_KEYS}"))
    for key, value in data.items():
        if len(key.encode()) > MAX_KEY_BYTES:
            problems.append(Problem("error", json_path([*path, "profileData", key]),
                                    f"property name is over {MAX_KEY_BYTES} bytes"))
        if isinstance(value, str) and len(value.encode()) > MAX_VALUE_BYTES:
            problems.append(Problem("error", json_path([*path, "profileData", key]),
                                    f"value is over {MAX_VALUE_BYTES} bytes"))
        if key.startswith("MSG-") and not isinstance(value, bool):
            problems.append(Problem("error", json_path([*path, "profileData", key]),
                                    f"{key} must be a boolean", hint="write true or false"))
    return problems


def check_request(request: UploadRequest) -> list[Problem]:
    problems: list[Problem] = []
    for i, record in enumerate(request.d):
        problems += check_record(record, ["d", i])
    return problems


_EMAIL_SHAPE = r"^[^@\s]+@[^@\s]+\.[^@\s.]+$"


def check_response(answer: UploadResponse) -> list[Problem]:
    """What a recorded CleverTap answer says, in words: refused credentials, and each record
    refused with its code's meaning (a 200 answer may still refuse records)."""
    from ctwa.wire.codes import UPLOAD_RECORD_ERRORS

    problems: list[Problem] = []
    if answer.code == 401 or (answer.status == "fail" and answer.error and not answer.unprocessed
                              and answer.processed is None):
        problems.append(Problem("warning", "$", f"CleverTap refused the request: "
                                f"{answer.error or 'no reason given'}"
                                + (f" (code {answer.code})" if answer.code else ""),
                                hint="check the account id, the passcode and the region URL"))
    for i, record in enumerate(answer.unprocessed):
        meaning = UPLOAD_RECORD_ERRORS.get(record.code or 0, "unknown code")
        problems.append(Problem("warning", json_path(["unprocessed", i]), f"record refused: "
                                f"{record.code} ({meaning}): {record.error or ''}".rstrip(": ")))
    return problems
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_GENDERS = frozenset({"M", "F", "O", "Male", "Female", "Other", "Others"})


def record_refusal(record: Any) -> tuple[int, str] | None:
    """How CleverTap refuses one record of an upload (its per-record code), or None.

    The sandbox answers with these, so ctwa's own checks and the mock agree on what fails.
    """
    if not isinstance(record, dict):
        return 555, "record is not an object"
    if not any((isinstance(record.get(k), str) and record.get(k)) or (
            isinstance(record.get(k), int) and not isinstance(record.get(k), bool))
            for k in IDENTITY_KEYS):
        return 523, "Missing identity"
    if record.get("type") not in ("profile", "event"):
        return 524, "Neither event nor profile"
    if record.get("type") == "event":
        return None
    data = record.get("profileData")
    if not isinstance(data, dict):
        return 555, "profileData is not an object"
    phone = data.get("Phone")
    if phone is not None and not (isinstance(phone, str) and _E164.fullmatch(phone)):
        return 516, "Invalid phone number"
    email = data.get("Email")
    if email is not None and (not isinstance(email, str) or not re.match(_EMAIL_SHAPE, email)):
        return 515, "Invalid email"
    gender = data.get("Gender")
    if gender is not None and gender not in _GENDERS:
        return 514, "Invalid gender"
    for key, value in data.items():
        refused = demographic_refusal(key, value)
        if refused is not None:
            return refused[0], f"Invalid {DEMOGRAPHICS[key][1]}"
    return None
