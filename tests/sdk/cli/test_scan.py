"""Finding clips, pairing them with their sidecar files and checking them locally."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from shotbank.cli.scan import file_sha256, prepare_clip, scan_directory
from tests.sdk.cli.conftest import ClipMaker

CAMERA_PATH = """https://example.org/source-video
0 0.5 0.9 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0
1000000 0.5 0.9 0.5 0.5 0 0 1 0 0 0.5 0 1 0 0 0 0 1 0
"""


def test_clips_of_every_media_extension_are_found_sorted_with_their_annotations(
    tmp_path: Path, make_clip_files: ClipMaker
) -> None:
    for name in ("b.mov", "a.mp4", "c.M4V", "d.mkv", "e.webm"):
        make_clip_files(name)
    (tmp_path / "notes.txt").write_text("not a clip")
    (tmp_path / "orphan.json").write_text("{}")

    found = scan_directory(tmp_path)

    assert [clip.relative for clip in found] == ["a.mp4", "b.mov", "c.M4V", "d.mkv", "e.webm"]
    assert all(clip.annotation == clip.media.with_suffix(".json") for clip in found)
    assert all(clip.camera_path is None and clip.issues == () for clip in found)


def test_a_camera_path_file_is_paired_by_stem(tmp_path: Path, make_clip_files: ClipMaker) -> None:
    make_clip_files("dolly.take2.mp4", camera_path=CAMERA_PATH)

    [clip] = scan_directory(tmp_path)

    assert clip.annotation == tmp_path / "dolly.take2.json"
    assert clip.camera_path == tmp_path / "dolly.take2.camera.txt"


def test_subdirectories_are_scanned_only_when_recursive_and_hidden_ones_never(
    tmp_path: Path, make_clip_files: ClipMaker
) -> None:
    make_clip_files("top.mp4")
    make_clip_files("day1/beach.mp4")
    make_clip_files("day1/deeper/pier.mov")
    make_clip_files(".trash/old.mp4")
    make_clip_files(".hidden.mp4")

    assert [c.relative for c in scan_directory(tmp_path)] == ["top.mp4"]
    assert [c.relative for c in scan_directory(tmp_path, recursive=True)] == [
        "day1/beach.mp4",
        "day1/deeper/pier.mov",
        "top.mp4",
    ]


def test_a_clip_without_annotation_is_reported_not_dropped(
    tmp_path: Path, make_clip_files: ClipMaker
) -> None:
    make_clip_files("lonely.mp4", annotation=None)

    [clip] = scan_directory(tmp_path)
    prepared = prepare_clip(clip)

    assert clip.annotation is None
    assert not prepared.valid
    assert prepared.issues == ("no annotation file lonely.json",)


def test_two_clips_sharing_a_stem_are_both_refused(
    tmp_path: Path, make_clip_files: ClipMaker
) -> None:
    make_clip_files("take.mp4")
    make_clip_files("take.mov")

    found = scan_directory(tmp_path)

    assert len(found) == 2
    for clip in found:
        assert any("take.json would describe" in issue for issue in clip.issues)
        assert not prepare_clip(clip).valid


def test_a_valid_clip_is_prepared_with_its_annotation_and_a_content_key(
    tmp_path: Path, make_clip_files: ClipMaker, annotation: dict[str, Any]
) -> None:
    make_clip_files("a.mp4", annotation)
    make_clip_files("b.mp4", annotation, camera_path=CAMERA_PATH)
    annotation["scene"]["description"] = "A different description of the beach."
    make_clip_files("c.mp4", annotation)

    a, b, c = (prepare_clip(clip) for clip in scan_directory(tmp_path))

    assert a.valid
    assert b.valid
    assert c.valid
    assert a.annotation is not None
    assert a.annotation.scene.description == "Waves roll onto an empty beach."
    assert a.size == len(b"not really a video")
    assert b.camera_path_text == CAMERA_PATH
    # The content key changes with the annotation and with the camera path, not otherwise.
    assert len({a.content_key, b.content_key, c.content_key}) == 3
    assert prepare_clip(scan_directory(tmp_path)[0]).content_key == a.content_key


def test_annotation_problems_are_listed_per_field(
    tmp_path: Path, make_clip_files: ClipMaker, annotation: dict[str, Any]
) -> None:
    annotation["camera"]["movement"] = "sideways"
    annotation["scene"]["description"] = "short"
    annotation["lighting"]["colour_temperature_k"] = "warm"
    make_clip_files("bad.mp4", annotation)

    prepared = prepare_clip(scan_directory(tmp_path)[0])

    assert not prepared.valid
    assert prepared.annotation is None
    issues = "\n".join(prepared.issues)
    assert "bad.json: camera.movement:" in issues
    assert "bad.json: scene.description:" in issues
    assert "bad.json: lighting.colour_temperature_k:" in issues
    assert "sideways" in issues  # the message names the unknown term


def test_an_annotation_that_is_not_json_is_invalid(
    tmp_path: Path, make_clip_files: ClipMaker
) -> None:
    make_clip_files("broken.mp4", '{"schema_version": "1",')

    prepared = prepare_clip(scan_directory(tmp_path)[0])

    assert not prepared.valid
    assert prepared.issues[0].startswith("broken.json: (document): Invalid JSON")


def test_a_malformed_camera_path_names_its_line(tmp_path: Path, make_clip_files: ClipMaker) -> None:
    make_clip_files("cam.mp4", camera_path=CAMERA_PATH.replace("1000000 0.5", "1000000 abc"))

    prepared = prepare_clip(scan_directory(tmp_path)[0])

    assert not prepared.valid
    assert prepared.issues == ("cam.camera.txt: line 3: fx 'abc' is not a finite number",)


def test_a_camera_path_in_both_places_is_refused(
    tmp_path: Path, make_clip_files: ClipMaker, annotation: dict[str, Any]
) -> None:
    annotation["camera"]["path"] = {
        "keyframes": [
            {"time_s": 0, "position_m": [0, 0, 0], "orientation_wxyz": [1, 0, 0, 0]},
            {"time_s": 1, "position_m": [0, 0, 0], "orientation_wxyz": [1, 0, 0, 0]},
        ]
    }
    make_clip_files("both.mp4", annotation, camera_path=CAMERA_PATH)

    prepared = prepare_clip(scan_directory(tmp_path)[0])

    assert not prepared.valid
    assert any("both give a camera path" in issue for issue in prepared.issues)


def test_an_empty_clip_file_is_invalid(tmp_path: Path, make_clip_files: ClipMaker) -> None:
    make_clip_files("empty.mp4", data=b"")

    assert prepare_clip(scan_directory(tmp_path)[0]).issues == ("the clip file is empty",)


def test_file_sha256_reports_progress_and_matches_hashlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 20_000  # several blocks
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    seen: list[int] = []

    assert file_sha256(path, on_bytes=seen.append) == hashlib.sha256(data).hexdigest()
    assert sum(seen) == len(data)
    assert len(seen) > 1
