"""Canonical JSON (RFC 8785) and the annotation hash: stable, and the same as JavaScript's."""

from __future__ import annotations

import json
import random
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shotbank.annotation import Annotation, annotation_hash, canonical_json
from shotbank.annotation.canonical import canonical_json_value

# RFC 8785 appendix B: IEEE-754 bit patterns and their canonical text.
RFC8785_NUMBERS = {
    "0000000000000000": "0",
    "8000000000000000": "0",
    "0000000000000001": "5e-324",
    "8000000000000001": "-5e-324",
    "7fefffffffffffff": "1.7976931348623157e+308",
    "ffefffffffffffff": "-1.7976931348623157e+308",
    "4340000000000000": "9007199254740992",
    "c340000000000000": "-9007199254740992",
    "4430000000000000": "295147905179352830000",
    "44b52d02c7e14af5": "9.999999999999997e+22",
    "44b52d02c7e14af6": "1e+23",
    "44b52d02c7e14af7": "1.0000000000000001e+23",
    "444b1ae4d6e2ef4e": "999999999999999700000",
    "444b1ae4d6e2ef4f": "999999999999999900000",
    "444b1ae4d6e2ef50": "1e+21",
    "3eb0c6f7a0b5ed8c": "9.999999999999997e-7",
    "3eb0c6f7a0b5ed8d": "0.000001",
    "41b3de4355555553": "333333333.3333332",
    "41b3de4355555554": "333333333.33333325",
    "41b3de4355555555": "333333333.3333333",
    "41b3de4355555556": "333333333.3333334",
    "41b3de4355555557": "333333333.33333343",
    "becbf647612f3696": "-0.0000033333333333333333",
    "43143ff3c1cb0959": "1424953923781206.2",
}

#: The hash of conftest.MINIMAL; changing it changes every signed annotation digest.
MINIMAL_HASH = "0x6442e9b85fbd09862f883e872384b253a3959fc0d18465dbfdcbfe546bb431c2"


def double(bits: str) -> float:
    value: float = struct.unpack(">d", bytes.fromhex(bits))[0]
    return value


@pytest.mark.parametrize(("bits", "text"), RFC8785_NUMBERS.items())
def test_numbers_are_written_as_rfc8785_says(bits: str, text: str) -> None:
    assert canonical_json_value(double(bits)) == text.encode()


def test_rfc8785_structure_example() -> None:
    value = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": '\u20ac$\u000f\nA\'B"\\\\"/',
        "literals": [None, True, False],
    }
    assert (
        canonical_json_value(value)
        == (
            '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
            '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
        ).encode()
    )


def test_keys_sort_by_utf16_code_units() -> None:
    # U+1F600 (surrogate pair D83D DE00) sorts before U+FB01 in UTF-16, not in code points.
    assert canonical_json_value({"\ufb01": 1, "\U0001f600": 2}) == '{"😀":2,"ﬁ":1}'.encode()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2**53, {1: "a"}, object()])
def test_values_without_a_canonical_form_are_refused(value: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        canonical_json_value(value)


@pytest.mark.node
def test_numbers_match_javascript(node_binary: Path) -> None:
    rng = random.Random(8785)
    values = [struct.unpack(">d", rng.getrandbits(64).to_bytes(8, "big"))[0] for _ in range(20_000)]
    values += [rng.uniform(-1e4, 1e4) * 10 ** rng.randint(-25, 25) for _ in range(20_000)]
    values = [v for v in values if v == v and abs(v) != float("inf")]
    script = (
        'const h=JSON.parse(require("fs").readFileSync(0,"utf8"));'
        'process.stdout.write(JSON.stringify(h.map(s=>String(Buffer.from(s,"hex").readDoubleBE(0)))))'
    )
    done = subprocess.run(
        [str(node_binary), "-e", script],
        input=json.dumps([struct.pack(">d", v).hex() for v in values]),
        capture_output=True,
        text=True,
        check=True,
    )
    expected = json.loads(done.stdout)
    mismatches = [
        (v, canonical_json_value(v).decode(), e)
        for v, e in zip(values, expected, strict=True)
        if canonical_json_value(v).decode() != e
    ]
    assert mismatches == []


def test_canonical_json_is_compact_sorted_and_leaves_out_absent_fields(
    minimal_doc: dict[str, Any],
) -> None:
    text = canonical_json(Annotation.model_validate(minimal_doc))
    assert text == (
        b'{"camera":{"movement":"static"},"lighting":{"setup":"natural"},"rights":'
        b'{"licence":"cc0-1.0","location_release":"not_required","model_release":'
        b'"not_required"},"scene":{"description":"Waves roll onto an empty beach.",'
        b'"reference_image_cids":[],"setting":"exterior","tags":[]},"schema_version":"1"}'
    )


def test_hash_is_pinned(minimal_doc: dict[str, Any]) -> None:
    assert annotation_hash(Annotation.model_validate(minimal_doc)) == MINIMAL_HASH


def test_hash_is_0x_and_64_hex_digits(full_doc: dict[str, Any]) -> None:
    digest = annotation_hash(Annotation.model_validate(full_doc))
    assert len(digest) == 66
    assert digest.startswith("0x")
    assert int(digest, 16) >= 0
    assert digest == digest.lower()


def shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


@given(st.randoms(use_true_random=False))
def test_hash_does_not_depend_on_key_order(rng: random.Random) -> None:
    from tests.sdk.annotation.conftest import FULL

    reordered = json.dumps(shuffled(FULL, rng))
    assert annotation_hash(Annotation.model_validate_json(reordered)) == annotation_hash(
        Annotation.model_validate(FULL)
    )


def test_equivalent_spellings_hash_alike(full_doc: dict[str, Any]) -> None:
    base = annotation_hash(Annotation.model_validate(full_doc))
    full_doc["camera"]["lens"]["focal_length_mm"] = 35.0  # 35 and 35.0 are one number
    full_doc["scene"]["tags"] = ["  City", "RAIN", "neon   lights", "Cyclist "]
    full_doc["camera"]["path"]["keyframes"][0]["orientation_wxyz"] = [
        -0.7071067811865476,
        0.7071067811865475,
        0,
        0,
    ]
    full_doc["lighting"]["key_direction"] = "front_left"
    assert annotation_hash(Annotation.model_validate(full_doc)) == base
    full_doc["audio"]["mood"] = None
    del full_doc["audio"]["mood"]
    assert annotation_hash(Annotation.model_validate(full_doc)) != base


def test_explicit_null_hashes_like_an_absent_field(minimal_doc: dict[str, Any]) -> None:
    base = annotation_hash(Annotation.model_validate(minimal_doc))
    minimal_doc["audio"] = None
    minimal_doc["camera"]["rig"] = None
    assert annotation_hash(Annotation.model_validate(minimal_doc)) == base


def test_any_change_of_meaning_changes_the_hash(full_doc: dict[str, Any]) -> None:
    base = annotation_hash(Annotation.model_validate(full_doc))
    full_doc["lighting"]["colour_temperature_k"] = 3201
    assert annotation_hash(Annotation.model_validate(full_doc)) != base


def test_stored_canonical_json_validates_to_the_same_hash(full_doc: dict[str, Any]) -> None:
    annotation = Annotation.model_validate(full_doc)
    again = Annotation.model_validate_json(canonical_json(annotation))
    assert again == annotation
    assert canonical_json(again) == canonical_json(annotation)


json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


def as_doubles(value: Any) -> Any:
    """``value`` as JavaScript holds it: every number a double."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [as_doubles(v) for v in value]
    return {k: as_doubles(v) for k, v in value.items()}


@given(json_values)
def test_fuzz_canonical_json_parses_back_to_the_same_value(value: Any) -> None:
    try:
        text = canonical_json_value(value)
    except UnicodeEncodeError:
        return  # lone surrogates have no UTF-8 form; validated text never holds them
    parsed = json.loads(text, parse_int=float)
    assert parsed == as_doubles(value)
    assert canonical_json_value(parsed) == text
