"""The pydantic configuration every annotation model shares."""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict
from pydantic.fields import ComputedFieldInfo, FieldInfo

# Unit suffixes of field names, as a form label shows them ("focal_length_mm" ->
# "Focal length (mm)").
_UNITS: Final = {
    "s": "s",
    "m": "m",
    "mm": "mm",
    "k": "K",
    "hz": "Hz",
    "lufs": "LUFS",
    "dbtp": "dBTP",
    "wxyz": "w, x, y, z",
    "cids": "CIDs",
}


def field_title(name: str, _info: FieldInfo | ComputedFieldInfo | None = None) -> str:
    """The JSON Schema title (form label) of a field, from its name."""
    words = name.split("_")
    unit = _UNITS.get(words[-1]) if len(words) > 1 else None
    if unit is not None:
        words = words[:-1]
    text = " ".join(words)
    text = text[:1].upper() + text[1:]
    return f"{text} ({unit})" if unit else text


class StrictModel(BaseModel):
    """Closed (unknown keys rejected), immutable, finite floats, field docs in the schema."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        use_attribute_docstrings=True,
        field_title_generator=field_title,
    )
