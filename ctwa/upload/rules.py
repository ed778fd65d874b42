"""What makes a CSV row a CleverTap profile record, or the reason it cannot be one.

Everything here is plain data and pure functions, picklable, so rows can be checked in worker
processes: phone validation (phonenumbers, ~19 us a number) dominates the cost of a large file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Literal

from ctwa.upload.phones import to_e164
from ctwa.wire.limits import MAX_CUSTOM_KEYS, MAX_IDENTITY, MAX_KEY_BYTES, MAX_VALUE_BYTES

ColumnType = Literal["str", "int", "float", "bool", "date"]
IDENTITY_COLUMNS = {"identity": "identity", "objectid": "objectId"}
#: CleverTap's own spelling of the profile keys users write in any case.
KNOWN_KEYS = {"name": "Name", "email": "Email", "phone": "Phone", "gender": "Gender",
              "dob": "DOB", "employment": "Employment", "education": "Education",
              "married": "Married", "age": "Age", "photo": "Photo", "employed": "Employed"}
TRUE_WORDS = frozenset({"true", "1", "yes", "y", "t"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "f"})
GENDERS = {"m": "M", "male": "M", "f": "F", "female": "F", "o": "O", "other": "O",
           "others": "O"}
#: json's own C string encoder: records are assembled from parts, which is ~2x faster than
#: json.dumps on a nested dict and gives the same text.
_json_text = json.encoder.encode_basestring


def _json_value(value: Any) -> str:
    if isinstance(value, str):
        return _json_text(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    return json.dumps(value)


EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


@dataclass(frozen=True)
class Column:
    index: int
    header: str  # as in the file
    key: str  # the profile key it becomes
    kind: ColumnType = "str"
    json_key: str = ""  # the key as JSON, with its colon: encoded once, used for every row

    def __post_init__(self) -> None:
        object.__setattr__(self, "json_key", _json_text(self.key) + ":")


@dataclass(frozen=True)
class RowRules:
    """How to turn one row into a record; built once from the header and the options."""

    identity_index: int
    identity_key: str  # identity or objectId
    phone_index: int
    columns: tuple[Column, ...]
    width: int
    default_region: str | None = None


@dataclass(slots=True)
class Checked:
    """One row's outcome: ``record`` (JSON text) when good, else ``reason`` (and a code)."""

    row: int
    identity: str | None = None
    record: str | None = None
    reason: str | None = None
    code: int | None = None
    values: list[str] | str = field(default_factory=list)  # str: packed, see pack_values


def _typed(value: str, kind: ColumnType) -> Any:
    if kind == "str":
        return value
    if kind == "int":
        try:
            return int(value)
        except ValueError:
            raise ValueError("not a whole number (--column-type int)") from None
    if kind == "float":
        try:
            number = float(value)
        except ValueError:
            raise ValueError("not a number (--column-type float)") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError("not a finite number")
        return number
    if kind == "bool":
        return parse_bool(value)
    return date_value(value)


def parse_bool(value: str) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("not TRUE/FALSE, true/false, 1/0 or yes/no")


def date_value(value: str) -> str:
    """CleverTap's date form ``$D_<epoch seconds>`` from an ISO date or date-time."""
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError("not an ISO date such as 1990-04-21 (--column-type date)") from None
        moment = datetime(day.year, day.month, day.day)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return f"$D_{int(moment.timestamp())}"


#: The start of the reason of a row holding bytes that are not text in the file's encoding
#: (decoded as lone surrogates, ``errors="surrogateescape"``): that row is rejected alone.
NOT_TEXT = "not text in the file's encoding"
_UNDECODED = re.compile("[\udc80-\udcff]")


def undecoded_byte(values: list[str]) -> tuple[int, int] | None:
    """(field index, byte) of the first byte that was not text in the encoding, or None."""
    joined = "".join(values)
    if joined.isascii() or not _UNDECODED.search(joined):  # nearly every row: one cheap test
        return None
    for index, value in enumerate(values):
        found = _UNDECODED.search(value)
        if found:
            return index, ord(found.group()) - 0xDC00
    return None


def _not_text(values: list[str]) -> str | None:
    found = undecoded_byte(values)
    if found is None:
        return None
    return (f"{NOT_TEXT}: byte 0x{found[1]:02X} in field {found[0] + 1}; if the file is not "
            "UTF-8, pass --encoding (e.g. cp1252)")


def printable(value: str) -> str:
    """A value with undecodable bytes shown as U+FFFD, so a rejects file stays UTF-8."""
    if not _UNDECODED.search(value):
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def check_row(rules: RowRules, row: int, values: list[str]) -> Checked:
    """The record for one row, or every reason it cannot be uploaded (joined with "; ", the
    code of the first one CleverTap has a code for), so a fixed row is fixed once."""
    not_text = _not_text(values)
    if not_text is not None:
        return Checked(row, reason=not_text)
    if len(values) != rules.width:
        return Checked(row, reason=f"has {len(values)} fields; the header has {rules.width}")
    problems: list[tuple[str, int | None]] = []
    identity = values[rules.identity_index].strip()
    if not identity:
        problems.append((f"{rules.identity_key} is empty", 523))
    elif len(identity) >= MAX_IDENTITY:
        problems.append((f"{rules.identity_key} is {len(identity)} characters; CleverTap "
                         f"allows under {MAX_IDENTITY}", None))
    phone_raw = values[rules.phone_index].strip()
    phone: str | None = None
    if not phone_raw:
        problems.append(("Phone is empty", 516))
    else:
        phone, wrong = to_e164(phone_raw, rules.default_region)
        if wrong:
            problems.append((wrong, 516))
    parts = [f'{{"{rules.identity_key}":', _json_text(identity),
             ',"type":"profile","profileData":{']
    first = True
    for column in rules.columns:
        raw = values[column.index].strip()
        if not raw or (column.index == rules.phone_index and phone is None):
            continue
        value, trouble = _column_value(column, raw, phone if column.index == rules.phone_index
                                       else None)
        if trouble is not None:
            problems.append(trouble)
            continue
        parts.append(column.json_key if first else "," + column.json_key)
        parts.append(_json_value(value))
        first = False
    if problems:
        code = next((c for _, c in problems if c is not None), None)
        return Checked(row, identity or None, reason="; ".join(r for r, _ in problems),
                       code=code)
    parts.append("}}")
    return Checked(row, identity, "".join(parts))


def _column_value(column: Column, raw: str,
                  phone: str | None) -> tuple[Any, tuple[str, int | None] | None]:
    """One cell as CleverTap takes it, or the problem with it (and CleverTap's code)."""
    if phone is not None:
        value: Any = phone
    elif column.kind == "str":
        value = raw
    else:
        try:
            value = _typed(raw, column.kind)
        except ValueError as exc:
            return None, (f"{column.header} {raw!r}: {exc}", None)
    if column.key == "Email" and not EMAIL_SHAPE.match(raw):
        return None, (f"Email {raw!r} is not an email address", 515)
    if column.key == "Gender":
        value = GENDERS.get(raw.lower())
        if value is None:
            return None, (f"Gender {raw!r}: use M, F or O", 514)
    if column.key in _DEMOGRAPHIC_COLUMNS:
        value, problem = _demographic(column.key, raw, value)
        if problem is not None:
            return None, problem
    if isinstance(value, str) and len(value) * 4 > MAX_VALUE_BYTES and len(
            value.encode()) > MAX_VALUE_BYTES:
        return None, (f"{column.header} is {len(value.encode())} bytes; CleverTap keeps at "
                      f"most {MAX_VALUE_BYTES}", None)
    return value, None


_DEMOGRAPHIC_COLUMNS = frozenset({"Employed", "Employment", "Education", "Married", "Age"})


def _demographic(key: str, raw: str, value: Any) -> tuple[Any, tuple[str, int] | None]:
    """Employed/Employment and Married as Y or N, Education as Graduate, College or School,
    Age as a whole number: the values CleverTap takes (others it refuses with 517-520)."""
    from ctwa.wire.profiles import EDUCATION, demographic_refusal

    text = raw.strip()
    if key == "Age":
        value = int(text) if text.isdecimal() else value
    elif key == "Education":
        value = next((e for e in EDUCATION if e.lower() == text.lower()), text)
    elif isinstance(value, str):
        low = text.lower()
        value = "Y" if low in TRUE_WORDS else "N" if low in FALSE_WORDS else text
    refused = demographic_refusal(key, value)
    if refused is not None:
        code, message, how = refused
        return None, (f"{message}: use {how}", code)
    return value, None


def body_of(rows: list[Checked]) -> bytes:
    """An upload request body, joined from each record's JSON (encoded once, when checked)."""
    return ('{"d":[' + ",".join(r.record or "" for r in rows) + "]}").encode("utf-8")


_UNIT = "\x1f"  # ASCII unit separator: never in a real CSV cell


def pack_values(values: list[str]) -> list[str] | str:
    """One string instead of a list: much cheaper to send between processes."""
    if any(_UNIT in v for v in values):
        return values
    return _UNIT.join(values)


def unpack_values(values: list[str] | str) -> list[str]:
    return values.split(_UNIT) if isinstance(values, str) else values


STRAY = "stray quote"
BlockRow = tuple[int, str | None, str | None, str | None, int | None, "list[str] | str"]


def check_block(rules: RowRules, encoding: str, delimiter: str,
                data: bytes) -> tuple[int, list[BlockRow]] | tuple[int, str]:
    """Parse and check one block of whole records; runs in worker processes.

    Returns (records in the block, outcomes as plain tuples with row numbers counted from 0
    in the block); (index of the failing record, an error message) when the block cannot be
    decoded; or (-1, STRAY) when it holds a quote inside an unquoted field, which makes cutting
    the file at quote-balanced newlines unsafe from here on.
    """
    import csv
    import io

    from ctwa.upload.source import stray_quote_pattern

    if b'"' in data and stray_quote_pattern(delimiter).search(data):
        return -1, STRAY
    try:  # a byte that is not text stays as a lone surrogate: check_row rejects its row
        text = data.decode(encoding, errors="surrogateescape")
    except UnicodeDecodeError as exc:
        return data[:exc.start].count(b"\n"), f"not {encoding} text ({exc.reason})"
    out: list[BlockRow] = []
    count = 0
    try:
        for count, values in enumerate(csv.reader(io.StringIO(text, newline=""),
                                                  delimiter=delimiter), start=1):
            if not values or (len(values) == 1 and not values[0].strip()):
                continue
            checked = check_row(rules, count - 1, values)
            out.append((checked.row, checked.identity, checked.record, checked.reason,
                        checked.code, pack_values(values)))
    except csv.Error as exc:  # a field over the CSV module's limit: the same line as the
        return count, f"{exc} (check the quoting around that row)"  # one-reader path gives
    return count, out


def check_chunk(rules: RowRules, start: int, rows: list[list[str]]) -> list[Checked]:
    """Check consecutive rows (row numbers from ``start``); runs in worker processes.

    Outcomes travel back without the rows' values: the reading process still holds them.
    """
    return [check_row(rules, start + i, values) for i, values in enumerate(rows)]


def plan_columns(header: list[str], types: dict[str, ColumnType], dropped: set[str],
                 default_region: str | None) -> RowRules:
    """Read the header: identity first, Phone present, MSG-* as booleans, sizes in bounds.

    Raises ValueError with a message naming the column; the caller adds the file name.
    """
    names = [h.strip() for h in header]
    skip = rejects_columns(names)
    if len(names) <= skip or names[skip].lower() not in IDENTITY_COLUMNS:
        first = names[skip] if len(names) > skip else ""
        raise ValueError(f"the first column must be identity or objectId (any case), not "
                         f"{first!r}")
    lowered = [n.lower() for n in names]
    duplicates = sorted({n for n in lowered[skip:] if lowered[skip:].count(n) > 1})
    if duplicates:
        raise ValueError(f"column {duplicates[0]!r} appears twice")
    if "phone" not in lowered:
        raise ValueError("there is no Phone column; CleverTap needs one for WhatsApp")
    wanted_types = {k.lower(): v for k, v in types.items()}
    unknown = sorted((set(wanted_types) | {d.lower() for d in dropped}) - set(lowered))
    if unknown:
        raise ValueError(f"--column-type/--drop-column names {unknown[0]!r}, which is not a "
                         "column")
    columns = []
    for index, name in enumerate(names[skip + 1:], start=skip + 1):
        low = name.lower()
        if low in {d.lower() for d in dropped}:
            if low == "phone":
                raise ValueError("the Phone column cannot be dropped")
            continue
        kind: ColumnType
        if low.startswith("msg-"):
            key, kind = "MSG-" + name[4:].lower(), "bool"
        else:
            key, kind = KNOWN_KEYS.get(low, name), wanted_types.get(low, "str")
        if len(key.encode()) > MAX_KEY_BYTES:
            raise ValueError(f"column {name[:30]!r}... is over {MAX_KEY_BYTES} bytes")
        columns.append(Column(index, name, key, kind))
    custom = [c for c in columns if not c.key.startswith("MSG-")]
    if len(custom) > MAX_CUSTOM_KEYS:
        raise ValueError(f"{len(custom)} property columns; CleverTap keeps at most "
                         f"{MAX_CUSTOM_KEYS}")
    return RowRules(skip, IDENTITY_COLUMNS[lowered[skip]], lowered.index("phone", skip),
                    tuple(columns), len(names),
                    default_region.upper() if default_region else None)


#: The columns ctwa's rejects file puts before the original ones.
REJECTS_COLUMNS = ("row", "reason", "code")


def rejects_columns(names: list[str]) -> int:
    """How many leading columns are a rejects file's own (3), or 0: a fixed rejects file
    uploads as it is."""
    return len(REJECTS_COLUMNS) if tuple(n.strip().lower() for n in names[:3]) == \
        REJECTS_COLUMNS else 0
