"""What ingest measured on a clip's media: the ``media`` object of the clip views.

Stored as JSON in ``clip.media_json`` once the clip was probed. Measured facts only:
the contributor's annotation is never changed by ingest (its hash is signed later), so
the audio measurements the annotation schema mentions live here.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MediaFacts(BaseModel):
    """The probed facts of a clip (``docs/api/clips.md``, "Views")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    container: str = Field(max_length=16, description="container family: mp4 or matroska")
    duration_s: float = Field(gt=0)
    width: int = Field(ge=1, description="picture width as displayed (after rotation)")
    height: int = Field(ge=1, description="picture height as displayed (after rotation)")
    frame_rate: float = Field(gt=0)
    video_codec: str = Field(max_length=64)
    audio_codec: str | None = Field(default=None, max_length=64)
    sample_rate_hz: int | None = Field(default=None, ge=1)
    channels: int | None = Field(default=None, ge=1)
    integrated_loudness_lufs: float | None = None
    """EBU R128 integrated loudness of the primary audio; None for silence or no audio."""
    true_peak_dbtp: float | None = None
    stream_count: int = Field(ge=1)
    bit_rate: int | None = Field(default=None, ge=0, description="container bit rate, bit/s")
