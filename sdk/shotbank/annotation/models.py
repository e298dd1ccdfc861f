"""Annotation schema v1: what a contributor says about a clip.

:class:`Annotation` is the contributor's input, validated field by field with messages
meant for people (they appear next to the form field in the web app). Every model is
closed (unknown keys are errors), immutable, bounded (every string has a maximum
length, every list a maximum count) and rejects NaN and infinities.

Facts that ingest measures on the media (sample rate, channels, loudness) are not part
of the contributor's annotation: :class:`AudioMeasurements` holds them, and an
annotation that tries to set them is rejected with :data:`READ_ONLY_FIELD_ERROR`.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shotbank.annotation._base import StrictModel
from shotbank.annotation.camera_path import FOCAL_LENGTH_MM_MAX, FOCAL_LENGTH_MM_MIN, CameraPath
from shotbank.annotation.errors import (
    ATTRIBUTION_REQUIRED_ERROR,
    DIRECTION_MISMATCH_ERROR,
    READ_ONLY_FIELD_ERROR,
    UNSUPPORTED_SCHEMA_VERSION_ERROR,
)
from shotbank.annotation.fields import (
    Cid,
    Description,
    SingleLineText,
    Tag,
    reject_duplicates,
    vocabulary_term,
)
from shotbank.annotation.vocabulary import (
    ATTRIBUTION_REQUIRED,
    MOVEMENT_DIRECTIONS,
    SENSOR_WIDTH_MM,
    AmbienceTag,
    AudioGenre,
    AudioMood,
    CameraMovement,
    CameraRig,
    Contrast,
    KeyLightDirection,
    Licence,
    LightingSetup,
    MovementDirection,
    RecordingKind,
    ReleaseStatus,
    SceneSetting,
    SensorFormat,
    TimeOfDay,
    term_label,
)

__all__ = [
    "COLOUR_TEMPERATURE_K_MAX",
    "COLOUR_TEMPERATURE_K_MIN",
    "MAX_AMBIENCE_TAGS",
    "MAX_REFERENCE_IMAGES",
    "MAX_TAGS",
    "MEASURED_AUDIO_KEYS",
    "SCHEMA_VERSION",
    "Annotation",
    "Audio",
    "AudioMeasurements",
    "Camera",
    "Lens",
    "Lighting",
    "Rights",
    "Scene",
]

#: The schema version this module implements (the ``schema_version`` field's value).
SCHEMA_VERSION: Final = "1"
MAX_TAGS: Final = 32
MAX_REFERENCE_IMAGES: Final = 8
MAX_AMBIENCE_TAGS: Final = 16
COLOUR_TEMPERATURE_K_MIN: Final = 1000
COLOUR_TEMPERATURE_K_MAX: Final = 20000
#: Keys of the audio section that only ingest may fill (rejected in contributor input).
MEASURED_AUDIO_KEYS: Final = frozenset(
    {
        "measured",
        "measurements",
        "sample_rate_hz",
        "channels",
        "integrated_loudness_lufs",
        "loudness_lufs",
        "true_peak_dbtp",
    }
)


def _schema_version(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:
        raise PydanticCustomError(
            UNSUPPORTED_SCHEMA_VERSION_ERROR,
            "schema version {value} is not supported: this version of Shotbank accepts "
            "annotation schema version '{supported}' (a string)",
            {"value": repr(value)[:20], "supported": SCHEMA_VERSION},
        ) from None


def _quoted(value: Any) -> str:
    return f"'{value}'"


class Scene(StrictModel):
    """What the clip shows."""

    description: Description
    """What happens in the clip, in plain words (10-2000 characters)."""
    tags: Annotated[
        tuple[Tag, ...],
        Field(max_length=MAX_TAGS),
        AfterValidator(reject_duplicates(_quoted, "tag (tags ignore case)")),
    ] = ()
    """Free keywords (at most 32, each at most 40 characters); stored in lower case."""
    setting: Annotated[SceneSetting, vocabulary_term(SceneSetting)]
    """Interior, exterior, or both."""
    time_of_day: Annotated[TimeOfDay, vocabulary_term(TimeOfDay)] | None = None
    """When the scene takes place; leave empty where it does not apply (e.g. studio)."""
    reference_image_cids: Annotated[
        tuple[Cid, ...],
        Field(max_length=MAX_REFERENCE_IMAGES),
        AfterValidator(reject_duplicates(_quoted, "reference image")),
    ] = ()
    """IPFS CIDs of up to 8 reference images (stills, storyboards)."""


class Lens(StrictModel):
    """The lens and sensor the clip was shot with (or the virtual camera's)."""

    focal_length_mm: float = Field(ge=FOCAL_LENGTH_MM_MIN, le=FOCAL_LENGTH_MM_MAX)
    """Actual (not 35 mm-equivalent) focal length in millimetres; the start of a zoom."""
    sensor: Annotated[SensorFormat, vocabulary_term(SensorFormat)] | None = None
    """Sensor format class."""
    sensor_width_mm: float | None = Field(default=None, ge=1.0, le=200.0)
    """Exact sensor width in millimetres, when known (e.g. a virtual camera's)."""

    @property
    def effective_sensor_width_mm(self) -> float | None:
        """The exact sensor width if given, else the typical width of the format."""
        if self.sensor_width_mm is not None:
            return self.sensor_width_mm
        return SENSOR_WIDTH_MM.get(self.sensor) if self.sensor is not None else None


def _direction_rules() -> dict[str, Any]:
    # The same rule as Camera._direction_fits_movement, for JSON Schema consumers.
    rules: list[dict[str, Any]] = []
    for movement, allowed in MOVEMENT_DIRECTIONS.items():
        condition = {"properties": {"movement": {"const": movement.value}}}
        if allowed:
            then: dict[str, Any] = {
                "properties": {"direction": {"enum": [d.value for d in allowed]}},
                "required": ["direction"],
            }
        else:
            then = {"properties": {"direction": {"type": "null"}}}
        rules.append({"if": condition, "then": then})
    return {"allOf": rules}


def _attribution_rule() -> dict[str, Any]:
    licences = sorted(licence.value for licence in ATTRIBUTION_REQUIRED)
    return {
        "if": {"properties": {"licence": {"enum": licences}}},
        "then": {"properties": {"attribution": {"type": "string"}}, "required": ["attribution"]},
    }


class Camera(StrictModel):
    """How the camera moves, what carries it, and optionally its exact path."""

    model_config = ConfigDict(json_schema_extra=_direction_rules())

    movement: Annotated[CameraMovement, vocabulary_term(CameraMovement)]
    """The dominant camera movement."""
    direction: Annotated[MovementDirection, vocabulary_term(MovementDirection)] | None = Field(
        default=None, validate_default=True
    )
    """Direction of the movement; required for pan, tilt, dolly, truck, pedestal, zoom,
    orbit and crane, and empty for static, handheld and drone."""
    rig: Annotated[CameraRig, vocabulary_term(CameraRig)] | None = None
    """What carried the camera."""
    lens: Lens | None = None
    """Lens and sensor."""
    path: CameraPath | None = None
    """Timed keyframes of the camera pose, if known (from a 3D app, a tracker, SLAM)."""

    @field_validator("direction")
    @classmethod
    def _direction_fits_movement(
        cls, direction: MovementDirection | None, info: ValidationInfo
    ) -> MovementDirection | None:
        movement = info.data.get("movement")
        if not isinstance(movement, CameraMovement):
            return direction  # the movement itself is invalid and reported on its own
        allowed = MOVEMENT_DIRECTIONS[movement]
        name = term_label(movement).lower()
        a_name = f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
        choices = " or ".join(d.value for d in allowed)
        if not allowed and direction is not None:
            raise PydanticCustomError(
                DIRECTION_MISMATCH_ERROR,
                "{movement} shot has no direction; leave the direction empty",
                {"movement": a_name},
            )
        if allowed and direction is None:
            raise PydanticCustomError(
                DIRECTION_MISMATCH_ERROR,
                "{movement} needs a direction: {choices}",
                {"movement": a_name, "choices": choices},
            )
        if direction is not None and direction not in allowed:
            raise PydanticCustomError(
                DIRECTION_MISMATCH_ERROR,
                "'{direction}' does not fit {movement}, which goes {choices}",
                {"direction": direction.value, "movement": a_name, "choices": choices},
            )
        return direction


class Lighting(StrictModel):
    """How the scene is lit."""

    setup: Annotated[LightingSetup, vocabulary_term(LightingSetup)]
    """Lighting setup or style."""
    key_direction: Annotated[KeyLightDirection, vocabulary_term(KeyLightDirection)] | None = None
    """Where the key light comes from, seen from the camera."""
    colour_temperature_k: int | None = Field(
        default=None, ge=COLOUR_TEMPERATURE_K_MIN, le=COLOUR_TEMPERATURE_K_MAX
    )
    """Dominant colour temperature in kelvin (1000-20000)."""
    contrast: Annotated[Contrast, vocabulary_term(Contrast)] | None = None
    """Overall contrast."""
    time_of_day: Annotated[TimeOfDay, vocabulary_term(TimeOfDay)] | None = None
    """Time of day the lighting renders (may differ from the scene's: day for night)."""


class Audio(StrictModel):
    """What the clip's sound is like, as the contributor describes it.

    Omit the whole section for a clip without sound. Measured facts (sample rate,
    channels, loudness) are filled in by Shotbank when the clip is ingested.
    """

    genre: Annotated[AudioGenre, vocabulary_term(AudioGenre)] | None = None
    """Style or genre of the sound track."""
    mood: Annotated[AudioMood, vocabulary_term(AudioMood)] | None = None
    """Mood the sound conveys."""
    ambience: Annotated[
        tuple[Annotated[AmbienceTag, vocabulary_term(AmbienceTag)], ...],
        Field(max_length=MAX_AMBIENCE_TAGS),
        AfterValidator(reject_duplicates(lambda t: _quoted(t.value), "ambience sound")),
    ] = ()
    """Background sounds heard in the clip."""
    dialogue: bool
    """Whether people speak in the clip."""
    recording: Annotated[RecordingKind, vocabulary_term(RecordingKind)]
    """How the sound was made."""

    @model_validator(mode="before")
    @classmethod
    def _no_measured_facts(cls, data: Any) -> Any:
        if isinstance(data, dict):
            given = sorted(key for key in data if key in MEASURED_AUDIO_KEYS)
            if given:
                raise PydanticCustomError(
                    READ_ONLY_FIELD_ERROR,
                    "{keys}: measured audio facts (sample rate, channels, loudness) are "
                    "filled in by Shotbank when the clip is ingested and cannot be set "
                    "in the annotation; remove {them}",
                    {
                        "keys": ", ".join(f"'{key}'" for key in given),
                        "them": "it" if len(given) == 1 else "them",
                    },
                )
        return data


class AudioMeasurements(StrictModel):
    """Audio facts measured by ingest on the media (never set by contributors)."""

    sample_rate_hz: int = Field(ge=1000, le=768_000)
    """Sample rate of the audio stream."""
    channels: int = Field(ge=1, le=64)
    """Number of audio channels."""
    integrated_loudness_lufs: float | None = Field(default=None, ge=-100.0, le=10.0)
    """Integrated loudness (ITU-R BS.1770 / EBU R 128); empty for silence."""
    true_peak_dbtp: float | None = Field(default=None, ge=-200.0, le=30.0)
    """True peak level in dBTP; empty for silence."""


class Rights(StrictModel):
    """Licence terms for training use, releases and attribution."""

    model_config = ConfigDict(json_schema_extra=_attribution_rule())

    licence: Annotated[Licence, vocabulary_term(Licence)]
    """Licence under which the clip may be used to train models."""
    model_release: Annotated[ReleaseStatus, vocabulary_term(ReleaseStatus)]
    """Release from identifiable people in the clip, or 'not_required' if none appear."""
    location_release: Annotated[ReleaseStatus, vocabulary_term(ReleaseStatus)]
    """Release for private property shown, or 'not_required'."""
    attribution: SingleLineText | None = Field(default=None, validate_default=True)
    """Whom to credit (required by CC BY and CC BY-SA), at most 300 characters."""

    @field_validator("attribution")
    @classmethod
    def _attribution_when_required(
        cls, attribution: str | None, info: ValidationInfo
    ) -> str | None:
        licence = info.data.get("licence")
        if attribution is None and licence in ATTRIBUTION_REQUIRED:
            raise PydanticCustomError(
                ATTRIBUTION_REQUIRED_ERROR,
                "{licence} requires attribution: enter the name to credit",
                {"licence": term_label(Licence(licence))},
            )
        return attribution


class Annotation(StrictModel):
    """A contributor's annotation of one clip (schema v1).

    Every enumerated field takes a term of a closed vocabulary (version 1); unknown
    keys and unknown terms are errors.
    """

    schema_version: Annotated[Literal["1"], WrapValidator(_schema_version)]
    """Annotation schema version: "1"."""
    scene: Scene
    """What the clip shows."""
    camera: Camera
    """How the camera moves."""
    lighting: Lighting
    """How the scene is lit."""
    audio: Audio | None = None
    """What the sound is like; omit for clips without sound."""
    rights: Rights
    """Licence and releases."""
