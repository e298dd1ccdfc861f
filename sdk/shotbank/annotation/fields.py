"""Reusable field types of the annotation models: vocabulary terms, text, tags and CIDs.

Each type validates with a message a person can act on (it appears next to the form
field), and keeps a plain JSON Schema (enum, string with bounds and pattern).
"""

from __future__ import annotations

import base64
import binascii
import difflib
import re
import unicodedata
from collections.abc import Callable, Hashable, Sequence
from enum import StrEnum
from typing import Annotated, Any, Final, TypeVar

from pydantic import (
    AfterValidator,
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from shotbank.annotation.errors import (
    DUPLICATE_VALUE_ERROR,
    INVALID_CID_ERROR,
    INVALID_TEXT_ERROR,
    TEXT_TOO_SHORT_ERROR,
    UNKNOWN_TERM_ERROR,
)
from shotbank.annotation.vocabulary import VOCABULARIES, VOCABULARY_VERSION, vocabulary_label

__all__ = [
    "CID_PATTERN",
    "MAX_DESCRIPTION_CHARS",
    "MAX_LINE_CHARS",
    "MAX_TAG_CHARS",
    "MIN_DESCRIPTION_CHARS",
    "Cid",
    "Description",
    "SingleLineText",
    "Tag",
    "is_valid_cid",
    "normalise_tag",
    "reject_duplicates",
    "vocabulary_term",
]

MIN_DESCRIPTION_CHARS: Final = 10
MAX_DESCRIPTION_CHARS: Final = 2000
MAX_LINE_CHARS: Final = 300
MAX_TAG_CHARS: Final = 40

#: Syntax of the CIDs accepted: CIDv0 (``Qm`` + 44 base58btc) or CIDv1 in base32 whose
#: multihash is a 32-byte sha2-256 (59 characters, ``bafy...``/``bafk...``).
CID_PATTERN: Final = r"^(Qm[1-9A-HJ-NP-Za-km-z]{44}|b[a-z2-7]{58})$"
_CID_RE: Final = re.compile(CID_PATTERN)
_BASE58_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_SHA2_256: Final = 0x12
_CODEC_RAW: Final = 0x55
_CODEC_DAG_PB: Final = 0x70
_MAX_SHOWN_INPUT: Final = 40

_E = TypeVar("_E", bound=StrEnum)
_T = TypeVar("_T", bound=Hashable)


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    if len(text) > _MAX_SHOWN_INPUT:
        text = text[: _MAX_SHOWN_INPUT - 1] + "…"
    return f"'{text}'" if isinstance(value, str) else text


def vocabulary_term(enum_cls: type[StrEnum]) -> WrapValidator:
    """A validator for ``Annotated[SomeVocabulary, vocabulary_term(SomeVocabulary)]``.

    It replaces pydantic's generic enum message by one that names the vocabulary, its
    version, the allowed values and the closest match::

        'dolly_zoom' is not in the camera movement vocabulary (v1). Allowed values:
        static, pan, ... Did you mean 'dolly'?
    """
    names = {cls: name for name, cls in VOCABULARIES.items()}
    what = vocabulary_label(names[enum_cls]).lower() if enum_cls in names else enum_cls.__name__
    allowed = [member.value for member in enum_cls]

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            hint = ""
            if isinstance(value, str):
                close = difflib.get_close_matches(value.strip().lower(), allowed, n=1)
                if close:
                    hint = f" Did you mean '{close[0]}'?"
            raise PydanticCustomError(
                UNKNOWN_TERM_ERROR,
                "{value} is not in the {vocabulary} vocabulary (v{version}). "
                "Allowed values: {allowed}.{hint}",
                {
                    "value": _shown(value),
                    "vocabulary": what,
                    "version": VOCABULARY_VERSION,
                    "allowed": ", ".join(allowed),
                    "hint": hint,
                },
            ) from None

    return WrapValidator(validate)


def _check_characters(text: str, *, allow_newlines: bool) -> None:
    for char in text:
        category = unicodedata.category(char)
        if char in "\n\t" and allow_newlines:
            continue
        if category in ("Cc", "Cs", "Zl", "Zp"):
            where = "text" if allow_newlines else "a single line of text"
            raise PydanticCustomError(
                INVALID_TEXT_ERROR,
                "contains a character that is not allowed in {where}: {code}",
                {"where": where, "code": f"U+{ord(char):04X}"},
            )


def _clean_description(value: str) -> str:
    text = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n"))
    _check_characters(text, allow_newlines=True)
    text = text.strip()
    if len(text) < MIN_DESCRIPTION_CHARS:
        raise PydanticCustomError(
            TEXT_TOO_SHORT_ERROR,
            "is too short: write at least {minimum} characters (not counting spaces at "
            "either end), this has {length}",
            {"minimum": MIN_DESCRIPTION_CHARS, "length": len(text)},
        )
    if len(text) > MAX_DESCRIPTION_CHARS:
        raise ValueError(f"is too long: at most {MAX_DESCRIPTION_CHARS} characters")
    return text


def _clean_line(value: str) -> str:
    text = unicodedata.normalize("NFC", value)
    _check_characters(text, allow_newlines=False)
    text = " ".join(text.split())
    if not text:
        raise PydanticCustomError(TEXT_TOO_SHORT_ERROR, "must not be empty", {})
    if len(text) > MAX_LINE_CHARS:
        raise ValueError(f"is too long: at most {MAX_LINE_CHARS} characters")
    return text


def normalise_tag(value: str) -> str:
    """The normal form of a free tag: NFC, lower case, single spaces, trimmed.

    Raises ``ValueError`` when the tag is empty or holds anything other than letters,
    digits, combining marks, spaces and hyphens.
    """
    text = " ".join(unicodedata.normalize("NFC", value).lower().split())
    if not text:
        raise ValueError("a tag must not be empty")
    if len(text) > MAX_TAG_CHARS:
        raise ValueError(f"a tag has at most {MAX_TAG_CHARS} characters")
    for char in text:
        if char in " -" or unicodedata.category(char)[0] in "LMN":
            continue
        raise ValueError(
            f"tags may hold letters, digits, spaces and hyphens only; {_shown(value)} has {char!r}"
        )
    if unicodedata.category(text[0])[0] not in "LN":
        raise ValueError(f"a tag starts with a letter or a digit; {_shown(value)} does not")
    return text


def _tag(value: str) -> str:
    try:
        return normalise_tag(value)
    except ValueError as exc:
        raise PydanticCustomError(INVALID_TEXT_ERROR, str(exc), {}) from None


def _base58_decode(text: str) -> bytes:
    number = 0
    for char in text:
        number = number * 58 + _BASE58_ALPHABET.index(char)
    leading = len(text) - len(text.lstrip("1"))
    return b"\x00" * leading + number.to_bytes((number.bit_length() + 7) // 8, "big")


def _read_varint(data: bytes, offset: int) -> tuple[int, int]:
    value = 0
    for shift in range(0, 63, 7):
        if offset >= len(data):
            raise ValueError("truncated varint")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and shift:
                raise ValueError("varint is not minimal")
            return value, offset
    raise ValueError("varint too long")


def is_valid_cid(text: str) -> bool:
    """Whether ``text`` is a CID Shotbank accepts: CIDv0, or CIDv1 base32 (raw/dag-pb).

    The multihash must be sha2-256 with a 32-byte digest (what ``ipfs add`` produces),
    and the encoding must be canonical (no stray bits in the base32 tail).
    """
    if not _CID_RE.fullmatch(text):
        return False
    if text.startswith("Qm"):
        digest = _base58_decode(text)
        return len(digest) == 34 and digest[0] == _SHA2_256 and digest[1] == 32
    body = text[1:].upper()
    try:
        data = base64.b32decode(body + "=" * (-len(body) % 8))
        version, offset = _read_varint(data, 0)
        codec, offset = _read_varint(data, offset)
        hash_code, offset = _read_varint(data, offset)
        length, offset = _read_varint(data, offset)
    except (binascii.Error, ValueError):
        return False
    canonical = base64.b32encode(data).decode().rstrip("=").lower()
    return (
        canonical == text[1:]
        and version == 1
        and codec in (_CODEC_RAW, _CODEC_DAG_PB)
        and hash_code == _SHA2_256
        and length == 32
        and len(data) - offset == 32
    )


def _cid(value: str) -> str:
    if not is_valid_cid(value):
        raise PydanticCustomError(
            INVALID_CID_ERROR,
            "{value} is not a valid IPFS content identifier: expected a CIDv1 in base32 "
            "(59 characters starting with 'bafy' or 'bafk') or a CIDv0 (46 characters "
            "starting with 'Qm')",
            {"value": _shown(value)},
        )
    return value


def reject_duplicates(
    describe: Callable[[Any], str], what: str
) -> Callable[[Sequence[_T]], Sequence[_T]]:
    """An after-validator for lists: fail naming the first value that appears twice."""

    def check(values: Sequence[_T]) -> Sequence[_T]:
        seen: set[_T] = set()
        for value in values:
            if value in seen:
                raise PydanticCustomError(
                    DUPLICATE_VALUE_ERROR,
                    "{value} is listed twice; list each {what} once",
                    {"value": describe(value), "what": what},
                )
            seen.add(value)
        return values

    return check


Description = Annotated[
    str,
    StringConstraints(min_length=MIN_DESCRIPTION_CHARS, max_length=MAX_DESCRIPTION_CHARS),
    AfterValidator(_clean_description),
]
"""Free text of 10-2000 characters; NFC, trimmed, line breaks and tabs allowed."""

SingleLineText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_LINE_CHARS),
    AfterValidator(_clean_line),
]
"""One line of free text (at most 300 characters); NFC, runs of white space collapsed."""

Tag = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_TAG_CHARS),
    AfterValidator(_tag),
]
"""A free tag, normalised by :func:`normalise_tag`."""

Cid = Annotated[
    str,
    Field(max_length=64, json_schema_extra={"pattern": CID_PATTERN}),
    AfterValidator(_cid),
]
"""An IPFS content identifier accepted by :func:`is_valid_cid`."""
