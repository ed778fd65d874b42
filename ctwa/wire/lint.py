"""Read a document, tell which wire format it is, and report every problem with its JSON path.

This is what ``ctwa lint`` runs, and what the sender, the listener and the sandbox call to read
payloads: one code path decides what the contract accepts.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ctwa.infra.errors import InputError
from ctwa.infra.textfiles import load_yaml_all, read_text
from ctwa.wire import webhook
from ctwa.wire.common import PathPart, Problem, json_path
from ctwa.wire.kinds import KINDS, detect_kind

LINTABLE_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass
class LintResult:
    source: str
    kind: str | None
    problems: list[Problem] = field(default_factory=list)
    value: Any = None  # the validated model, when there are no errors

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "ok": self.ok,
                "problems": [p.as_dict() for p in self.problems]}


class InvalidDocument(InputError):
    """A document that does not fit its wire format; carries every problem found."""

    def __init__(self, result: LintResult) -> None:
        first = result.errors[0]
        more = f" (+{len(result.errors) - 1} more)" if len(result.errors) > 1 else ""
        super().__init__(f"{result.source}: {first.path}: {first.message}{more}",
                         hint=first.hint)
        self.result = result


#: every kind lint checks: the wire formats, and Meta's webhooks (which it detects too)
KIND_NAMES = (*KINDS, webhook.KIND)


def _ctwa_file(doc: Any, source: str) -> LintResult | None:
    """ctwa's own files, which are no wire format: a callback fixture (checked as replay
    reads it) or a params file (checked as send-template reads it); else None."""
    from pathlib import Path

    if not isinstance(doc, dict) or not doc:
        return None
    if isinstance(doc.get("events"), list) and set(doc) <= {"vars", "defaults", "events"}:
        from ctwa.callbacks.fixtures import load_fixture

        problems = []
        if Path(source).is_file():
            try:
                load_fixture(Path(source))
            except InputError as exc:
                problems.append(Problem("error", "$", exc.message, hint=exc.hint))
        return LintResult(source, "callback-fixture", problems)
    from ctwa.send.params import _FILE_KEYS, params_from_mapping

    if set(doc) <= _FILE_KEYS:
        try:
            params_from_mapping(doc, source)
        except InputError as exc:
            return LintResult(source, "params", [Problem("error", "$", exc.message,
                                                         hint=exc.hint)])
        return LintResult(source, "params", [])
    return None


def lint_document(doc: Any, kind: str | None = None, source: str = "<document>") -> LintResult:
    """Check one parsed document against its (given or detected) wire format."""
    name = kind or detect_kind(doc)
    if name in (None, "status", "inbound"):
        wrapped = _wrapped(doc, kind, source)
        if wrapped is not None:
            return wrapped
    # A Meta webhook (detected, or --kind meta-webhook) is judged as Meta's format: Meta's own
    # examples are correct. Where a CleverTap callback is expected (a kind given as status or
    # inbound: replay, the listener's routes) it is explained as the wrong format instead.
    if name == webhook.KIND:
        return LintResult(source, webhook.KIND, webhook.check(doc))
    if name in ("status", "inbound") and webhook.is_meta_webhook(doc):
        return LintResult(source, webhook.KIND, webhook.explain(doc))
    if name is None and isinstance(doc, list):
        return LintResult(source, None, [Problem(
            "error", "$", f"a JSON array of {len(doc)} item(s), not a document of a wire format",
            hint="lint each document in its own file, or give an array of objects")])
    if name is None:
        own = _ctwa_file(doc, source)
        if own is not None:
            return own
        return LintResult(source, None, [Problem(
            "error", "$", "cannot tell which wire format this is",
            hint=f"pass --kind (one of {', '.join(KIND_NAMES)})")])
    if name not in KINDS:
        raise InputError(f"unknown kind {name!r}", hint=f"use one of {', '.join(KIND_NAMES)}")
    spec = KINDS[name]
    try:
        canonical, notes = spec.normalize(doc)
        problems = list(notes.problems)
        value = spec.adapter.validate_python(canonical)
    except RecursionError:
        return LintResult(source, name, [Problem("error", "$", "nested too deeply to check",
                                                 hint="no wire format nests this deep")])
    except ValidationError as exc:
        problems = list(notes.problems)
        problems += _validation_problems(exc, canonical, name)
        return LintResult(source, name, problems)
    problems += spec.check(value)
    return LintResult(source, name, problems, value if not _has_errors(problems) else None)


def _wrapped(doc: Any, kind: str | None, source: str) -> LintResult | None:
    """A callback inside a known envelope (``{url, payload}``): the envelope named, with the
    inner callback's own problems under the envelope's key."""
    from ctwa.wire.callbacks import find_wrapper

    wrapped = find_wrapper(doc)
    if wrapped is None:
        return None
    inner = lint_document(wrapped.inner, kind, source)
    prefix = "$" if wrapped.encoded else json_path([wrapped.key])
    problems = [wrapped.problem()] + [
        Problem(p.severity, prefix + p.path[1:], p.message, p.hint, p.errata)
        for p in inner.problems]
    return LintResult(source, inner.kind, problems)


def read_document(doc: Any, kind: str, source: str = "<document>") -> tuple[Any, list[Problem]]:
    """Validate ``doc`` as ``kind``; return the model and its warnings, or raise with the errors."""
    result = lint_document(doc, kind, source)
    if not result.ok:
        raise InvalidDocument(result)
    return result.value, result.warnings


def first_problem(exc: ValidationError) -> str:
    """A pydantic error on a ctwa model (a profile, a config file) as one line in ctwa's
    words: ``field.path: what is wrong``."""
    error = exc.errors(include_url=False)[0]
    path = [p for p in error["loc"] if isinstance(p, (str, int))]
    message, _ = _describe(error, path, "template")
    if error["type"] == "extra_forbidden":
        message = f"unknown setting `{path[-1]}`" if path else "unknown setting"
    where = ".".join(str(p) for p in path)
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


def _has_errors(problems: Sequence[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)


# --- pydantic errors -> problems -------------------------------------------------------------


def _locate(doc: Any, loc: Sequence[PathPart], missing: bool) -> list[PathPart]:
    """Map a pydantic ``loc`` onto the document, dropping discriminator tags it inserts.

    Only a "missing" error may end in a key that is not in the document.
    """
    return _walk(doc, list(loc), missing)[0]


def _walk(node: Any, loc: list[PathPart], missing: bool) -> tuple[list[PathPart], int]:
    """The path ``loc`` names in the document, and how many of its parts found nothing. A
    tagged union's tag (a status's ``"failed"``, an inbound's ``"text"``) is in pydantic's
    ``loc`` but not in the document; it can also be a key there (``{"type": "text", "text":
    ...}``), so both readings are tried and the one that places more parts wins."""
    if not loc:
        return [], 0
    part, rest = loc[0], loc[1:]
    in_dict = isinstance(node, dict) and isinstance(part, str) and part in node
    in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
    tag = isinstance(node, dict) and isinstance(part, str) and any(
        node.get(key) == part for key in ("type", "status"))
    options: list[tuple[list[PathPart], int]] = []
    if tag:
        options.append(_walk(node, rest, missing))
    if in_dict or in_list:
        below, lost = _walk(node[part], rest, missing)
        options.append(([part, *below], lost))
    elif missing and not rest and isinstance(node, dict) and isinstance(part, str):
        options.append(([part], 0))  # a missing key
    elif not tag:
        below, lost = _walk(node, rest, missing)
        options.append((below, lost + 1))
    return min(options, key=lambda option: option[1])


@cache
def _vocabulary(kind: str) -> tuple[str, ...]:
    words: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                words.update(props)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(KINDS[kind].adapter.json_schema(by_alias=True))
    return tuple(sorted(words))


def _validation_problems(exc: ValidationError, doc: Any, kind: str) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for error in exc.errors(include_url=False):
        path = _locate(doc, error["loc"], error["type"] == "missing")
        where = json_path(path)
        message, hint = _describe(error, path, kind, _sibling_title(doc, path))
        if (where, message) in seen:
            continue
        seen.add((where, message))
        problems.append(Problem("error", where, message, hint))
    return problems


def _describe(error: Any, path: list[PathPart], kind: str,
              title: str | None = None) -> tuple[str, str | None]:
    kind_of_error = error["type"]
    key = path[-1] if path else None
    msg = str(error["msg"])
    if kind_of_error == "missing":
        if key == "msgId" and kind == "status":
            return ("no `msgId`: CleverTap cannot tell which message this status is about "
                    "(a missing msgId, not an unknown one)",
                    "put the msgId CleverTap sent with the message in every status, unchanged")
        return f"missing required field `{key}`", f"add `{key}`"
    if kind_of_error == "extra_forbidden":
        return f"unknown key `{key}` (not part of the {kind} format)", _suggest(str(key), kind)
    if kind_of_error == "literal_error":
        expected = str(error.get("ctx", {}).get("expected", ""))
        expected = expected.replace("True", "true").replace("False", "false").replace("'", '"')
        return f"must be {expected}, got {_shown(error)}", None
    if kind_of_error == "union_tag_not_found":
        tag = str(error.get("ctx", {}).get("discriminator", "")).strip("'")
        return f"missing `{tag}`, which says what kind of entry this is", f"add `{tag}`"
    if kind_of_error == "union_tag_invalid":
        ctx = error.get("ctx", {})
        tag = str(ctx.get("discriminator", "")).strip("'")
        expected = str(ctx.get("expected_tags", "")).replace("'", '"')
        return (f"`{tag}` {json.dumps(ctx.get('tag'))} is not one this format knows",
                f"use one of {expected}")
    if kind_of_error in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be an object, got {_shown(error)}", None
    if kind_of_error == "value_error":
        return msg.removeprefix("Value error, "), None
    if kind_of_error == "string_pattern_mismatch" and key in ("timestamp", "ts"):
        return _timestamp_problem(error.get("input"), str(key))
    if kind_of_error in ("greater_than_equal", "less_than_equal") and kind == "status" \
            and len(path) >= 2 and path[-2:] == ["error", "code"]:
        return _code_problem(error.get("input"), title)
    if kind_of_error not in _builtin_errors():
        return msg, None  # ctwa's own error types carry ctwa's own words
    message = _plain(kind_of_error, error.get("ctx") or {})
    if kind_of_error.endswith(("_type", "_parsing")):
        message += f", got {_shown(error)}"
    return message, None


def _suggest(key: str, kind: str) -> str:
    """The hint for an unknown key: the closest key of the format, never the key itself."""
    words = _vocabulary(kind)
    same_case = [w for w in words if w.lower() == key.lower() and w != key]
    if same_case:
        return f"did you mean `{same_case[0]}`? (keys are case-sensitive)"
    close = difflib.get_close_matches(key, [w for w in words if w != key], n=1, cutoff=0.7)
    if close:
        return f"did you mean `{close[0]}`?"
    if key in words:
        return f"remove it: `{key}` is a key elsewhere in the {kind} format, not at this level"
    return "remove it"


def _sibling_title(doc: Any, path: list[PathPart]) -> str | None:
    """``error.title`` beside an ``error.code``, to find the code the title belongs to."""
    if path[-2:] != ["error", "code"]:
        return None
    node = doc
    for part in path[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    title = node.get("title") if isinstance(node, dict) else None
    return title if isinstance(title, str) else None


def _timestamp_problem(value: Any, key: str) -> tuple[str, str | None]:
    """A timestamp that is not epoch seconds: a date string is named as one, with the epoch
    seconds it would be (read as UTC)."""
    import datetime as dt

    shown = json.dumps(value)[:60]
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            when = None
        if when is not None:
            utc = when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
            return (f"`{key}` is a date string ({shown}), not epoch seconds: CleverTap reads "
                    "epoch seconds as a string",
                    f'write "{int(utc.timestamp())}" (that time as epoch seconds'
                    + (", read as UTC)" if when.tzinfo is None else ")"))
    return (f"`{key}` must be epoch seconds as a string, got {shown}", 'e.g. "1647441774"')


def _code_problem(value: Any, title: str | None) -> tuple[str, str | None]:
    """A failure code outside 1000-1010, with the table's closest meaning."""
    from ctwa.wire.codes import CALLBACK_ERRORS, closest_callback_code
    from ctwa.wire.webhook import META_ERROR_CODES

    code, why = closest_callback_code(value, title, META_ERROR_CODES)
    return (f"failure code {json.dumps(value)[:20]} is not in CleverTap's table (1000-1010)",
            f'use {code} ("{CALLBACK_ERRORS[code]}"), the closest meaning in the table: {why}')


@cache
def _builtin_errors() -> frozenset[str]:
    from typing import get_args

    from pydantic_core import ErrorType

    return frozenset(get_args(ErrorType))


def _shown(error: Any) -> str:
    try:
        return json.dumps(error.get("input"), default=str)[:60]
    except (ValueError, RecursionError):
        return "an unprintable value"


#: pydantic's error types in ctwa's words: a user never reads "Input should be ...".
_WORDS = {
    "list_type": "must be a list", "tuple_type": "must be a list",
    "string_type": "must be a string", "string_sub_type": "must be a string",
    "int_type": "must be a whole number", "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number", "float_type": "must be a number",
    "float_parsing": "must be a number", "bool_type": "must be true or false",
    "bool_parsing": "must be true or false", "none_required": "must be null",
    "string_pattern_mismatch": "does not have the expected form",
    "string_unicode": "must be valid text", "finite_number": "must be a finite number",
    "url_parsing": "must be a URL", "url_scheme": "must be an http(s) URL",
}


def in_words(error: Any) -> str:
    """One pydantic error (``ValidationError.errors()[0]``) in ctwa's words: the value given,
    then what it must be (the command line's options are checked by pydantic too)."""
    given = error.get("input")
    shown = repr(given) if isinstance(given, str) else _shown(error)
    return f"{shown} {_plain(str(error.get('type')), error.get('ctx') or {})}"


def _plain(kind_of_error: str, ctx: dict[str, Any]) -> str:
    if kind_of_error in _WORDS:
        return _WORDS[kind_of_error]
    limits = {"greater_than_equal": ("at least", "ge"), "greater_than": ("more than", "gt"),
              "less_than_equal": ("at most", "le"), "less_than": ("less than", "lt")}
    if kind_of_error in limits:
        words, name = limits[kind_of_error]
        return f"must be {words} {ctx.get(name)}"
    if kind_of_error == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else \
            f"must have at least {ctx.get('min_length')} characters"
    if kind_of_error == "string_too_long":
        return f"must have at most {ctx.get('max_length')} characters"
    if kind_of_error == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s)"
    if kind_of_error == "too_long":
        return f"takes at most {ctx.get('max_length')} item(s)"
    if kind_of_error == "enum":
        return f"must be one of {ctx.get('expected')}"
    return f"is not valid here ({kind_of_error.replace('_', ' ')})"


# --- files -----------------------------------------------------------------------------------


def iter_files(paths: Sequence[Path]) -> Iterator[Path]:
    """Each file given, and every JSON/YAML file under each folder given, in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix.lower() in LINTABLE_SUFFIXES
                              and p.is_file())
        elif path.exists():
            yield path
        else:
            raise InputError(f"{path}: no such file or folder")


def load_documents(path: Path) -> list[tuple[str, Any]]:
    """Parse a JSON or YAML file (YAML may hold several documents) into (source, document)."""
    text = read_text(path)
    if path.suffix.lower() == ".json":
        return [(str(path), parse_json(text, str(path)))]
    docs = [d for d in load_yaml_all(text, str(path)) if d is not None]
    if len(docs) == 1:
        return [(str(path), docs[0])]
    return [(f"{path}#{i + 1}", doc) for i, doc in enumerate(docs)]


def parse_json(text: str, source: str) -> Any:
    """``json.loads`` with an error that names line and column and spots the spec's slips."""
    try:
        return json.loads(text)
    except RecursionError:
        raise InputError(f"{source}: the JSON is nested too deeply for ctwa to read",
                         hint="no wire format nests more than a few levels") from None
    except json.JSONDecodeError as exc:
        hint = None
        lines = text.splitlines()
        if "“" in text or "”" in text:
            hint = 'replace typographic quotes “ ” with plain " (ERRATA 3, 5)'
        elif 0 < exc.lineno <= len(lines) and "//" in lines[exc.lineno - 1]:
            hint = "JSON has no comments: remove the // ... part (ERRATA 5)"
        raise InputError(f"{source}: not valid JSON at line {exc.lineno} column {exc.colno}"
                         f": {_json_problem(exc.msg)}", hint=hint) from None
    except ValueError:  # an integer past Python's 4300-digit limit
        raise InputError(f"{source}: not JSON ctwa can read: a number of thousands of digits",
                         hint="no wire format has a number that long") from None


def expand_arrays(documents: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """A bare JSON array (of templates, of callbacks) is its items, each linted on its own and
    named ``file[i]``; a list of anything else stays one document."""
    out: list[tuple[str, Any]] = []
    for source, doc in documents:
        if isinstance(doc, list) and doc and all(isinstance(item, dict) for item in doc):
            out += [(f"{source}[{i}]", item) for i, item in enumerate(doc)]
        else:
            out.append((source, doc))
    return out


def lint_paths(paths: Sequence[Path], kind: str | None = None) -> list[LintResult]:
    """Lint every document in the given files and folders; a file that does not parse is a
    result with one error, so one broken file never hides the others."""
    results: list[LintResult] = []
    for path in iter_files(paths):
        try:
            documents = load_documents(path)
        except InputError as exc:
            results.append(LintResult(str(path), kind, [Problem("error", "$", exc.message,
                                                                 exc.hint)]))
            continue
        for source, doc in expand_arrays(documents):
            results.append(lint_document(doc, kind, source))
    return results


#: json's messages, in ctwa's words (json's own wording never reaches the user)
_JSON_PROBLEMS = (
    ("Expecting value", "a value was expected here (an empty file, or not JSON at all?)"),
    ("Expecting property name", "a key in double quotes was expected"),
    ("Expecting ',' delimiter", "a comma was expected"),
    ("Expecting ':' delimiter", "a colon was expected after the key"),
    ("Extra data", "more text follows the end of the document"),
    ("Unterminated string", "a string is not closed"),
    ("Invalid control character", "a control character inside a string (escape it)"),
    ("Invalid \\escape", "a backslash escape JSON does not have"),
    ("Invalid \\u", "a \\u escape without four hex digits"),
)


def _json_problem(message: str) -> str:
    for start, said in _JSON_PROBLEMS:
        if message.startswith(start):
            return said
    return "the text cannot be read as JSON"
