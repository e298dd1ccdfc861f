"""Which accepted clips a dataset takes: :class:`DatasetFilter` and its matching.

The filter is a versioned pydantic document (unknown fields refused, every field
optional: an empty filter takes every accepted clip). :func:`matching_clips` runs what
SQL can answer portably in SQL -- status ``accepted``, contributors, and the duration and
short side from the stored media facts (JSON text, read with SQLAlchemy's JSON
operators on SQLite and PostgreSQL alike) -- and the rest in Python over each
candidate's annotation and consensus scores. Clips come in clip-id order, in batches, so
a large match never sits in memory as ORM objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import JSON, and_, cast, func, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session, col, select

from backend.models.clips import Clip, ClipStatus
from scoring.report import Component
from shotbank.annotation.vocabulary import AudioGenre, CameraMovement, Licence, LightingSetup
from shotbank.datasets.format import MAX_SAMPLES

__all__ = ["FILTER_VERSION", "MAX_MATCH", "DatasetFilter", "matching_clips"]

#: The filter document's version (``"version"`` field).
FILTER_VERSION: Final = "1"
#: Most clips one match (hence one version) may hold.
MAX_MATCH: Final = MAX_SAMPLES
#: Most values in one of the filter's lists.
_MAX_VALUES: Final = 64
#: Clips read from the database at a time.
_BATCH: Final = 500

_Address = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$")]
_Tag = Annotated[str, Field(min_length=1, max_length=40)]
_Score = Annotated[float, Field(ge=0.0, le=1.0)]


class DatasetFilter(BaseModel):
    """A dataset's selection over accepted clips; every given field must hold.

    "Any of" lists take a clip whose value is one of them; ``tags`` takes a clip that has
    all of them (tags compare in lower case, as annotations store them).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal["1"] = FILTER_VERSION
    camera_movements: list[CameraMovement] | None = Field(default=None, max_length=_MAX_VALUES)
    lighting_setups: list[LightingSetup] | None = Field(default=None, max_length=_MAX_VALUES)
    audio_genres: list[AudioGenre] | None = Field(default=None, max_length=_MAX_VALUES)
    has_dialogue: bool | None = None
    """True: clips with dialogue; False: clips without (or without an audio section)."""
    tags: list[_Tag] | None = Field(default=None, max_length=_MAX_VALUES)
    min_quality: _Score | None = None
    """Least consensus quality."""
    min_component_scores: dict[Component, _Score] | None = None
    """Least consensus score per component (scene, lighting, camera, audio)."""
    min_duration_s: float | None = Field(default=None, ge=0, le=86_400)
    max_duration_s: float | None = Field(default=None, ge=0, le=86_400)
    min_short_side: int | None = Field(default=None, ge=1, le=100_000)
    """Least picture short side in pixels (``min(width, height)``)."""
    licences: list[Licence] | None = Field(default=None, max_length=_MAX_VALUES)
    contributors: list[_Address] | None = Field(default=None, max_length=_MAX_VALUES)
    exclude_contributors: list[_Address] | None = Field(default=None, max_length=_MAX_VALUES)

    @model_validator(mode="after")
    def _ordered_duration(self) -> DatasetFilter:
        if (
            self.min_duration_s is not None
            and self.max_duration_s is not None
            and self.min_duration_s > self.max_duration_s
        ):
            raise ValueError("min_duration_s must not exceed max_duration_s")
        return self

    def document(self) -> dict[str, Any]:
        """The filter as stored and served: only the fields that were given."""
        return self.model_dump(mode="json", exclude_none=True)

    def matches(self, annotation: dict[str, Any], scores: dict[str, Any]) -> bool:
        """Whether a clip's annotation and consensus scores pass the Python-side fields."""
        camera = annotation.get("camera") or {}
        lighting = annotation.get("lighting") or {}
        audio = annotation.get("audio") or {}
        scene = annotation.get("scene") or {}
        rights = annotation.get("rights") or {}
        if (
            self.camera_movements is not None
            and camera.get("movement") not in self.camera_movements
        ):
            return False
        if self.lighting_setups is not None and lighting.get("setup") not in self.lighting_setups:
            return False
        if self.audio_genres is not None and audio.get("genre") not in self.audio_genres:
            return False
        if self.has_dialogue is not None and bool(audio.get("dialogue")) != self.has_dialogue:
            return False
        if self.tags is not None:
            have = {str(tag).lower() for tag in scene.get("tags") or ()}
            if not {tag.lower() for tag in self.tags} <= have:
                return False
        if self.licences is not None and rights.get("licence") not in self.licences:
            return False
        if self.min_quality is not None and not _at_least(scores.get("quality"), self.min_quality):
            return False
        components = scores.get("components") or {}
        for component, least in (self.min_component_scores or {}).items():
            if not _at_least(components.get(component.value), least):
                return False
        return True


def _at_least(value: object, least: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= least


def _media(dialect: str) -> Any:
    """The media facts column as a JSON expression: PostgreSQL needs a real cast of the
    text, SQLite's JSON functions read the text as it is (a CAST there would not)."""
    if dialect == "postgresql":
        return cast(col(Clip.media_json), JSONB)
    return type_coerce(col(Clip.media_json), JSON)


def _sql_conditions(flt: DatasetFilter, dialect: str) -> list[Any]:
    conditions: list[Any] = [col(Clip.status) == ClipStatus.ACCEPTED]
    if flt.contributors is not None:
        conditions.append(func.lower(col(Clip.owner)).in_([a.lower() for a in flt.contributors]))
    if flt.exclude_contributors:
        conditions.append(
            func.lower(col(Clip.owner)).not_in([a.lower() for a in flt.exclude_contributors])
        )
    media = _media(dialect)
    if flt.min_duration_s is not None or flt.max_duration_s is not None:
        duration = media["duration_s"].as_float()
        if flt.min_duration_s is not None:
            conditions.append(duration >= flt.min_duration_s)
        if flt.max_duration_s is not None:
            conditions.append(duration <= flt.max_duration_s)
    if flt.min_short_side is not None:
        width = media["width"].as_float()
        height = media["height"].as_float()
        least = flt.min_short_side
        conditions.append(and_(width >= least, height >= least))
    return conditions


def matching_clips(db: Session, flt: DatasetFilter, *, limit: int = MAX_MATCH) -> Iterator[Clip]:
    """The accepted clips ``flt`` takes, in clip-id order, at most ``limit`` of them.

    Reads in keyset batches so a large match is never one huge result set.
    """
    conditions = _sql_conditions(flt, db.get_bind().dialect.name)
    found = 0
    after = ""
    while found < limit:
        batch = db.exec(
            select(Clip)
            .where(*conditions, col(Clip.id) > after)
            .order_by(col(Clip.id))
            .limit(_BATCH)
        ).all()
        if not batch:
            return
        for clip in batch:
            after = clip.id
            annotation = json.loads(clip.annotation_json)
            scores = json.loads(clip.scores_json) if clip.scores_json else {}
            if flt.matches(annotation, scores):
                found += 1
                yield clip
                if found >= limit:
                    return
