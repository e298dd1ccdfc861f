"""The closed vocabularies of annotation schema v1, versioned together.

Every enumerated field of an annotation takes its values from one of the ``StrEnum``
classes here, and nothing else: an unknown value is a validation error that names the
allowed values, never a silently dropped word. The vocabularies share one version,
:data:`VOCABULARY_VERSION`; adding, removing or renaming a term means a new version.

Terms are lower-case ``snake_case`` identifiers, except licences, which use the
lower-case SPDX-like identifiers people already know (``cc-by-4.0``).

:func:`vocabularies` exports all of it as plain data (values, human labels, which
directions fit which movement, approximate sensor widths) for web forms and CLIs.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

__all__ = [
    "ATTRIBUTION_REQUIRED",
    "MOVEMENT_DIRECTIONS",
    "SENSOR_WIDTH_MM",
    "VOCABULARIES",
    "VOCABULARY_VERSION",
    "AmbienceTag",
    "AudioGenre",
    "AudioMood",
    "CameraMovement",
    "CameraRig",
    "Contrast",
    "KeyLightDirection",
    "Licence",
    "LightingSetup",
    "MovementDirection",
    "PositionScale",
    "RecordingKind",
    "ReleaseStatus",
    "SceneSetting",
    "SensorFormat",
    "TimeOfDay",
    "term_label",
    "vocabularies",
    "vocabulary_label",
]

#: Version of every vocabulary in this module (bumped on any change of terms).
VOCABULARY_VERSION: Final = "1"


class SceneSetting(StrEnum):
    """Where the scene takes place: inside, outside, or both in one shot."""

    INTERIOR = "interior"
    EXTERIOR = "exterior"
    INTERIOR_EXTERIOR = "interior_exterior"


class TimeOfDay(StrEnum):
    """Time of day as it appears in the shot (or as the lighting renders it)."""

    DAWN = "dawn"
    MORNING = "morning"
    MIDDAY = "midday"
    AFTERNOON = "afternoon"
    GOLDEN_HOUR = "golden_hour"
    DUSK = "dusk"
    BLUE_HOUR = "blue_hour"
    NIGHT = "night"


class CameraMovement(StrEnum):
    """The dominant camera movement of the clip.

    pan/tilt rotate the camera in place (horizontally/vertically); dolly moves it
    forward/back, truck sideways, pedestal straight up/down; zoom changes the focal
    length; orbit circles a subject; crane moves on a jib arm (up/down); handheld and
    drone describe free motion without one direction.
    """

    STATIC = "static"
    PAN = "pan"
    TILT = "tilt"
    DOLLY = "dolly"
    TRUCK = "truck"
    PEDESTAL = "pedestal"
    ZOOM = "zoom"
    ORBIT = "orbit"
    CRANE = "crane"
    HANDHELD = "handheld"
    DRONE = "drone"


class MovementDirection(StrEnum):
    """Direction of a camera movement, as seen by the camera operator.

    'cw'/'ccw' (orbits) are clockwise/counter-clockwise seen from above; 'in' is
    towards the subject (dolly) or a longer focal length (zoom).
    """

    LEFT = "left"
    RIGHT = "right"
    UP = "up"
    DOWN = "down"
    IN = "in"
    OUT = "out"
    CW = "cw"
    CCW = "ccw"


_D = MovementDirection

#: Which directions fit which movement; an empty tuple means the movement has none.
MOVEMENT_DIRECTIONS: Final[Mapping[CameraMovement, tuple[MovementDirection, ...]]] = (
    MappingProxyType(
        {
            CameraMovement.STATIC: (),
            CameraMovement.PAN: (_D.LEFT, _D.RIGHT),
            CameraMovement.TILT: (_D.UP, _D.DOWN),
            CameraMovement.DOLLY: (_D.IN, _D.OUT),
            CameraMovement.TRUCK: (_D.LEFT, _D.RIGHT),
            CameraMovement.PEDESTAL: (_D.UP, _D.DOWN),
            CameraMovement.ZOOM: (_D.IN, _D.OUT),
            CameraMovement.ORBIT: (_D.CW, _D.CCW),
            CameraMovement.CRANE: (_D.UP, _D.DOWN),
            CameraMovement.HANDHELD: (),
            CameraMovement.DRONE: (),
        }
    )
)


class CameraRig(StrEnum):
    """What carried the camera."""

    TRIPOD = "tripod"
    HANDHELD = "handheld"
    SHOULDER_RIG = "shoulder_rig"
    GIMBAL = "gimbal"
    STEADICAM = "steadicam"
    SLIDER = "slider"
    DOLLY = "dolly"
    JIB_CRANE = "jib_crane"
    DRONE = "drone"
    VEHICLE_MOUNT = "vehicle_mount"
    CABLE_CAM = "cable_cam"
    MOTION_CONTROL = "motion_control"
    VIRTUAL = "virtual"


class SensorFormat(StrEnum):
    """Sensor (or film gate) size class of the camera; 'virtual' for rendered clips."""

    FULL_FRAME = "full_frame"
    SUPER35 = "super35"
    APS_C = "aps_c"
    MICRO_FOUR_THIRDS = "micro_four_thirds"
    ONE_INCH = "one_inch"
    SUPER16 = "super16"
    MEDIUM_FORMAT = "medium_format"
    SMARTPHONE = "smartphone"
    VIRTUAL = "virtual"


#: Typical sensor width in millimetres for the formats that have a standard width.
SENSOR_WIDTH_MM: Final[Mapping[SensorFormat, float]] = MappingProxyType(
    {
        SensorFormat.FULL_FRAME: 36.0,
        SensorFormat.SUPER35: 24.89,
        SensorFormat.APS_C: 23.6,
        SensorFormat.MICRO_FOUR_THIRDS: 17.3,
        SensorFormat.ONE_INCH: 13.2,
        SensorFormat.SUPER16: 12.52,
        SensorFormat.MEDIUM_FORMAT: 43.8,
    }
)


class LightingSetup(StrEnum):
    """The lighting setup or style of the shot."""

    HIGH_KEY = "high_key"
    LOW_KEY = "low_key"
    THREE_POINT = "three_point"
    NATURAL = "natural"
    SILHOUETTE = "silhouette"
    PRACTICAL = "practical"
    REMBRANDT = "rembrandt"
    SPLIT = "split"
    BUTTERFLY = "butterfly"
    LOOP = "loop"
    RIM = "rim"
    MOTIVATED = "motivated"


class KeyLightDirection(StrEnum):
    """Where the key light comes from, seen from the camera; 'diffuse' if nowhere."""

    FRONT = "front"
    FRONT_LEFT = "front_left"
    FRONT_RIGHT = "front_right"
    LEFT = "left"
    RIGHT = "right"
    BACK_LEFT = "back_left"
    BACK_RIGHT = "back_right"
    BACK = "back"
    TOP = "top"
    BELOW = "below"
    DIFFUSE = "diffuse"


class Contrast(StrEnum):
    """Overall lighting contrast (ratio of key to fill)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class AudioGenre(StrEnum):
    """Style or genre of the clip's sound track."""

    AMBIENCE = "ambience"
    SPEECH = "speech"
    SOUND_EFFECTS = "sound_effects"
    CINEMATIC_SCORE = "cinematic_score"
    ORCHESTRAL = "orchestral"
    ELECTRONIC = "electronic"
    ACOUSTIC = "acoustic"
    ROCK = "rock"
    POP = "pop"
    JAZZ = "jazz"
    HIP_HOP = "hip_hop"
    FOLK = "folk"
    WORLD = "world"
    EXPERIMENTAL = "experimental"


class AudioMood(StrEnum):
    """The mood the sound conveys."""

    CALM = "calm"
    TENSE = "tense"
    JOYFUL = "joyful"
    MELANCHOLIC = "melancholic"
    ENERGETIC = "energetic"
    DARK = "dark"
    MYSTERIOUS = "mysterious"
    ROMANTIC = "romantic"
    EPIC = "epic"
    PLAYFUL = "playful"
    EERIE = "eerie"
    NEUTRAL = "neutral"


class AmbienceTag(StrEnum):
    """A sound heard in the background of the clip."""

    WIND = "wind"
    RAIN = "rain"
    THUNDER = "thunder"
    STREAM = "stream"
    WAVES = "waves"
    BIRDS = "birds"
    INSECTS = "insects"
    ANIMALS = "animals"
    TRAFFIC = "traffic"
    CROWD = "crowd"
    DISTANT_VOICES = "distant_voices"
    MACHINERY = "machinery"
    ROOM_TONE = "room_tone"
    FIRE = "fire"
    FOOTSTEPS = "footsteps"
    SIRENS = "sirens"
    CONSTRUCTION = "construction"
    AIRCRAFT = "aircraft"


class RecordingKind(StrEnum):
    """How the sound was made."""

    FIELD = "field"
    STUDIO = "studio"
    FOLEY = "foley"
    SYNTHESIZED = "synthesized"


class Licence(StrEnum):
    """Licence under which the clip may be used to train models."""

    SHOTBANK_TRAINING_V1 = "shotbank-training-v1"
    CC0_1_0 = "cc0-1.0"
    CC_BY_4_0 = "cc-by-4.0"
    CC_BY_SA_4_0 = "cc-by-sa-4.0"


#: Licences that oblige users to credit the author (the annotation must say whom).
ATTRIBUTION_REQUIRED: Final[frozenset[Licence]] = frozenset(
    {Licence.CC_BY_4_0, Licence.CC_BY_SA_4_0}
)


class ReleaseStatus(StrEnum):
    """State of a model or location release.

    'not_required': no identifiable person (model release) or no private property
    (location release) appears in the clip. A clip that needs a release it does not
    have cannot be offered, so there is no 'missing' term.
    """

    OBTAINED = "obtained"
    NOT_REQUIRED = "not_required"


class PositionScale(StrEnum):
    """Unit of camera-path positions: metres, or an unknown scale (e.g. from SLAM)."""

    METRIC = "metric"
    ARBITRARY = "arbitrary"


#: Every vocabulary by its public name (the keys of :func:`vocabularies`).
VOCABULARIES: Final[Mapping[str, type[StrEnum]]] = MappingProxyType(
    {
        "scene_setting": SceneSetting,
        "time_of_day": TimeOfDay,
        "camera_movement": CameraMovement,
        "movement_direction": MovementDirection,
        "camera_rig": CameraRig,
        "sensor_format": SensorFormat,
        "lighting_setup": LightingSetup,
        "key_light_direction": KeyLightDirection,
        "contrast": Contrast,
        "audio_genre": AudioGenre,
        "audio_mood": AudioMood,
        "ambience_tag": AmbienceTag,
        "recording_kind": RecordingKind,
        "licence": Licence,
        "release_status": ReleaseStatus,
        "position_scale": PositionScale,
    }
)

_VOCABULARY_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "scene_setting": "Interior / exterior",
        "time_of_day": "Time of day",
        "camera_movement": "Camera movement",
        "movement_direction": "Movement direction",
        "camera_rig": "Camera rig",
        "sensor_format": "Sensor format",
        "lighting_setup": "Lighting setup",
        "key_light_direction": "Key light direction",
        "contrast": "Contrast",
        "audio_genre": "Audio style / genre",
        "audio_mood": "Audio mood",
        "ambience_tag": "Ambience",
        "recording_kind": "Recording kind",
        "licence": "Licence",
        "release_status": "Release",
        "position_scale": "Position scale",
    }
)

# Labels that the generic rule (underscores to spaces, capital first letter) gets wrong.
_TERM_LABELS: Final[Mapping[StrEnum, str]] = MappingProxyType(
    {
        SceneSetting.INTERIOR_EXTERIOR: "Interior and exterior",
        MovementDirection.CW: "Clockwise (seen from above)",
        MovementDirection.CCW: "Counter-clockwise (seen from above)",
        SensorFormat.FULL_FRAME: "Full frame",
        SensorFormat.SUPER35: "Super 35",
        SensorFormat.APS_C: "APS-C",
        SensorFormat.MICRO_FOUR_THIRDS: "Micro Four Thirds",
        SensorFormat.ONE_INCH: '1"',
        SensorFormat.SUPER16: "Super 16",
        LightingSetup.HIGH_KEY: "High-key",
        LightingSetup.LOW_KEY: "Low-key",
        LightingSetup.THREE_POINT: "Three-point",
        AudioGenre.HIP_HOP: "Hip-hop",
        Licence.SHOTBANK_TRAINING_V1: "Shotbank training licence v1",
        Licence.CC0_1_0: "CC0 1.0 (public domain)",
        Licence.CC_BY_4_0: "CC BY 4.0",
        Licence.CC_BY_SA_4_0: "CC BY-SA 4.0",
        PositionScale.METRIC: "Metres",
        PositionScale.ARBITRARY: "Arbitrary scale",
    }
)


def term_label(term: StrEnum) -> str:
    """The human label of a vocabulary term (``LightingSetup.HIGH_KEY`` -> ``"High-key"``)."""
    label = _TERM_LABELS.get(term)
    if label is not None:
        return label
    text = term.value.replace("_", " ")
    return text[:1].upper() + text[1:]


def vocabulary_label(name: str) -> str:
    """The human name of a vocabulary (``"camera_movement"`` -> ``"Camera movement"``)."""
    return _VOCABULARY_LABELS[name]


def vocabularies() -> dict[str, Any]:
    """All vocabularies as JSON-ready data, for forms and filters.

    Shape::

        {"version": "1",
         "vocabularies": {"camera_movement": {"label": "Camera movement",
                                              "terms": [{"value": "static",
                                                         "label": "Static"}, ...]}, ...},
         "movement_directions": {"pan": ["left", "right"], "static": [], ...},
         "attribution_required": ["cc-by-4.0", "cc-by-sa-4.0"],
         "sensor_widths_mm": {"full_frame": 36.0, ...}}

    A new object is returned on every call, so callers may modify it.
    """
    return {
        "version": VOCABULARY_VERSION,
        "vocabularies": {
            name: {
                "label": _VOCABULARY_LABELS[name],
                "terms": [{"value": t.value, "label": term_label(t)} for t in enum_cls],
            }
            for name, enum_cls in VOCABULARIES.items()
        },
        "movement_directions": {
            movement.value: [d.value for d in directions]
            for movement, directions in MOVEMENT_DIRECTIONS.items()
        },
        "attribution_required": sorted(licence.value for licence in ATTRIBUTION_REQUIRED),
        "sensor_widths_mm": {fmt.value: width for fmt, width in SENSOR_WIDTH_MM.items()},
    }
