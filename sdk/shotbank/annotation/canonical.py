"""Canonical JSON and the annotation hash.

The canonical form is the JSON Canonicalization Scheme (RFC 8785): object keys sorted,
no white space, strings as ``JSON.stringify`` writes them (UTF-8, minimal escaping) and
numbers in ECMAScript's shortest round-trip form (``35.0`` is ``35``, ``1e21`` is
``1e+21``, ``-0.0`` is ``0``). A browser or any JCS library computes the same bytes,
so the hash can be checked outside Python.

What is canonicalised is the *validated* annotation (``model_dump(mode="json")``):
normalised text and tags, unit quaternions, defaults filled in, and absent optional
fields (``None``) left out, so sending ``"rig": null`` or no ``rig`` hashes the same.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final

from eth_utils.crypto import keccak

from shotbank.annotation.models import Annotation

__all__ = ["annotation_hash", "canonical_json", "canonical_json_value"]

# Integers beyond 2**53 are not exact in JSON numbers as JavaScript reads them.
_MAX_SAFE_INTEGER: Final = 2**53 - 1


def _number(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"canonical JSON has no representation for {value!r}")
    if value == 0.0:
        return "0"
    # repr() is the shortest string that reads back as the same double, as in ECMAScript.
    # Where repr() uses no exponent (1e-4 <= |x| < 1e16) ECMAScript uses none either and
    # writes the same digits, except that it drops a trailing ".0".
    text = repr(value)
    if "e" not in text:
        return text[:-2] if text.endswith(".0") else text
    sign = "-" if value < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    n = int(exponent) + k  # value = 0.digits * 10**n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + text


def _write(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if abs(value) > _MAX_SAFE_INTEGER:
            raise ValueError(f"integer {value} is too large for canonical JSON")
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_number(value))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Mapping):
        out.append("{")
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"object keys must be strings, not {type(key).__name__}")
        # RFC 8785 orders keys by UTF-16 code units; big-endian bytes compare the same way.
        keys = sorted(value, key=lambda key: key.encode("utf-16-be", "surrogatepass"))
        for index, key in enumerate(keys):
            if index:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    elif isinstance(value, Sequence):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not a JSON value")


def canonical_json_value(value: object) -> bytes:
    """RFC 8785 canonical JSON of a JSON-like Python value (dict, list, str, number...)."""
    out: list[str] = []
    _write(value, out)
    return "".join(out).encode("utf-8")


def canonical_json(annotation: Annotation) -> bytes:
    """The canonical (RFC 8785) JSON bytes of a validated annotation."""
    return canonical_json_value(annotation.model_dump(mode="json", exclude_none=True))


def annotation_hash(annotation: Annotation) -> str:
    """``0x`` + keccak256 of :func:`canonical_json`, 64 lower-case hex digits.

    Keccak-256 (Ethereum's hash), so the value can go into EIP-712 messages as
    ``bytes32`` and be recomputed by contracts and wallets' tooling alike.
    """
    return "0x" + keccak(canonical_json(annotation)).hex()
