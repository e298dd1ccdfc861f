"""The Upload page in Chromium against the real backend: a generated clip uploaded with
tus and submitted with a full annotation, uploads paused or cut by a reload and resumed
on the same tus upload, and the server's validation message shown next to its field.

Each test signs in with its own dev key (the stack is shared by the module), and each
clip has its own content (the backend refuses a second live clip with the same bytes).
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, Route, expect
from sqlalchemy import func
from sqlmodel import Session, select

from backend.models.clips import Clip
from backend.models.uploads import Upload, UploadState
from scoring.clipgen import noise_frames, tone, write_clip
from tests.web.conftest import EXPECT_TIMEOUT_MS, PHONE, ConsoleLog, WebStack, shoot
from tests.web.flows import connect, nav_link, sign_in
from tests.web.wallet import InjectedWallet

pytestmark = pytest.mark.chain

WalletPage = Callable[..., tuple[Page, InjectedWallet]]
#: Chromium logs every 4xx answer as a console error; a refused annotation is one.
UNPROCESSABLE = r"status of 422"
#: The tus routes (creation is POST on the collection, data is PATCH on an upload).
TUS_ROUTES = "**/api/v1/uploads/**"


@pytest.fixture
def make_clip(tmp_path: Path) -> Callable[[int], Path]:
    """A real 1 s H.264/AAC MP4 whose bytes depend on ``seed``."""

    def factory(seed: int) -> Path:
        return write_clip(
            tmp_path / f"clip-{seed}.mp4",
            noise_frames(seconds=1.0, size=(160, 120), seed=seed),
            audio=tone(seconds=1.0),
        )

    return factory


def open_upload(
    wallet_page: WalletPage, key: int, *, phone: bool = False
) -> tuple[Page, InjectedWallet]:
    """A signed-in wallet (dev key ``key``) on the Upload page."""
    page, wallet = wallet_page(key=key, phone=phone)
    connect(page)
    sign_in(page, wallet.address)
    nav_link(page, "Upload").click()
    expect(page.get_by_role("heading", level=1, name="Upload")).to_be_visible()
    return page, wallet


def choose(page: Page, clip: Path) -> Locator:
    """Choose ``clip`` with the "Choose clips" input; its card (a region named by file)."""
    page.get_by_label("Choose clips").set_input_files(clip)
    card = page.get_by_role("region", name=clip.name)
    expect(card).to_be_visible()
    return card


def hold_patches(page: Page) -> list[Route]:
    """Leave tus PATCH requests unanswered (the upload stalls after its creation)."""
    held: list[Route] = []

    def handler(route: Route) -> None:
        if route.request.method == "PATCH":
            held.append(route)
        else:
            route.continue_()

    page.route(TUS_ROUTES, handler)
    return held


def wait_for_held(page: Page, held: list[Route]) -> None:
    """Wait until a PATCH is held (route handlers run while Playwright waits)."""
    deadline = time.monotonic() + EXPECT_TIMEOUT_MS / 1000
    while not held:
        assert time.monotonic() < deadline, "the page sent no PATCH"
        page.wait_for_timeout(20)


def uploads_of(stack: WebStack, address: str) -> list[Upload]:
    """The tus uploads the backend holds for ``address``."""
    with Session(stack.engine) as db:
        query = select(Upload).where(func.lower(Upload.owner) == address.lower())
        return list(db.exec(query).all())


def upload_id_shown(card: Locator) -> str:
    """The upload id the card shows once tus created the upload."""
    meta = card.get_by_text(re.compile(r"upload [0-9a-f]{32}"))
    expect(meta).to_be_visible()
    found = re.search(r"[0-9a-f]{32}", meta.inner_text())
    assert found is not None
    return found.group(0)


def group(card: Locator, name: str) -> Locator:
    """A section (fieldset) of the annotation form by its legend."""
    return card.get_by_role("group", name=name, exact=True)


def fill_annotation(card: Locator) -> None:
    """Every section of the form, as a contributor fills it."""
    scene = group(card, "Scene")
    scene.get_by_role("textbox", name="Description", exact=True).fill(
        "Static noise on an old TV, humming."
    )
    scene.get_by_role("textbox", name="Tags", exact=True).fill("noise, tv, retro")
    scene.get_by_role("combobox", name="Setting", exact=True).select_option("interior")
    camera = group(card, "Camera")
    camera.get_by_role("combobox", name="Movement", exact=True).select_option("pan")
    camera.get_by_role("combobox", name="Direction", exact=True).select_option("left")
    camera.get_by_role("combobox", name="Rig", exact=True).select_option("tripod")
    lighting = group(card, "Lighting")
    lighting.get_by_role("combobox", name="Setup", exact=True).select_option("low_key")
    lighting.get_by_role("spinbutton", name="Colour temperature (K)", exact=True).fill("3200")
    audio = group(card, "Audio")
    audio.get_by_role("checkbox", name="Describe the audio").check()
    audio.get_by_role("combobox", name="Genre", exact=True).select_option("ambience")
    audio.get_by_role("checkbox", name="Room tone", exact=True).check()
    audio.get_by_role("combobox", name="Recording", exact=True).select_option("studio")
    rights = group(card, "Rights")
    rights.get_by_role("combobox", name="Licence", exact=True).select_option("cc-by-4.0")
    rights.get_by_role("combobox", name="Model release", exact=True).select_option("not_required")
    rights.get_by_role("combobox", name="Location release", exact=True).select_option(
        "not_required"
    )
    rights.get_by_role("textbox", name="Attribution", exact=True).fill("Shotbank test suite")


def expect_uploaded(card: Locator, clip: Path) -> None:
    """The card's progress bar is full and its annotation may be submitted."""
    progress = card.get_by_role("progressbar", name=f"Upload progress for {clip.name}")
    expect(progress).to_have_attribute("value", str(clip.stat().st_size))
    expect(card.get_by_role("button", name="Submit clip")).to_be_enabled()


def clips_of(stack: WebStack, address: str) -> list[Clip]:
    """The clips the backend holds for ``address``."""
    with Session(stack.engine) as db:
        query = select(Clip).where(func.lower(Clip.owner) == address.lower())
        return list(db.exec(query).all())


def test_uploads_an_annotated_clip_that_then_shows_in_my_clips(
    wallet_page: WalletPage, web_stack: WebStack, make_clip: Callable[[int], Path]
) -> None:
    page, wallet = open_upload(wallet_page, key=1)
    clip = make_clip(1)

    card = choose(page, clip)
    fill_annotation(card)
    camera = group(card, "Camera")
    camera.get_by_role("button", name="Add keyframe").click()
    camera.get_by_role("button", name="Add keyframe").click()
    camera.get_by_role("textbox", name="Keyframe 2 X").fill("-0.5")
    camera.get_by_role("textbox", name="Keyframe 2 Yaw (°)").fill("-30")
    expect(
        camera.get_by_role("img", name=re.compile("Top-down view of the camera path: 2"))
    ).to_be_visible()
    card.get_by_text("Preview of the clip").click()
    frames = card.get_by_role("list", name=f"Frames sampled from {clip.name}")
    expect(frames.get_by_role("img")).to_have_count(6)
    expect_uploaded(card, clip)
    shoot(page, "upload")
    card.get_by_role("button", name="Submit clip").click()

    expect(card.get_by_role("status").filter(has_text="Submitted")).to_be_visible()
    [upload] = uploads_of(web_stack, wallet.address)
    assert upload.state == UploadState.CONSUMED
    [stored] = clips_of(web_stack, wallet.address)
    annotation = json.loads(stored.annotation_json)
    assert annotation["camera"]["movement"] == "pan"
    assert annotation["camera"]["direction"] == "left"
    assert [k["time_s"] for k in annotation["camera"]["path"]["keyframes"]] == [0, 1]
    assert annotation["camera"]["path"]["keyframes"][1]["position_m"] == [-0.5, 0, 0]
    assert annotation["audio"]["ambience"] == ["room_tone"]
    assert annotation["rights"]["attribution"] == "Shotbank test suite"
    assert annotation["scene"]["tags"] == ["noise", "tv", "retro"]
    card.get_by_role("link", name="See it in My clips").click()
    row = page.get_by_role("row").filter(has_text=clip.name)
    expect(row).to_contain_text(re.compile("Received|Checking media|Waiting for validators"))


def test_a_camera_path_file_is_imported_into_the_keyframe_table(
    wallet_page: WalletPage, make_clip: Callable[[int], Path], tmp_path: Path
) -> None:
    page, _ = open_upload(wallet_page, key=5, phone=True)
    card = choose(page, make_clip(5))
    path_file = tmp_path / "path.json"
    keyframes = [
        {"time_s": t, "position_m": [0, 0, t], "orientation_wxyz": [1, 0, 0, 0]}
        for t in (0.0, 0.5, 1.0)
    ]
    path_file.write_text(json.dumps({"keyframes": keyframes, "position_scale": "arbitrary"}))

    camera = group(card, "Camera")
    camera.get_by_label("Import a camera path").set_input_files(path_file)

    expect(camera.get_by_role("textbox", name="Keyframe 3 Z")).to_have_value("1")
    expect(camera.get_by_role("combobox", name="Position scale")).to_have_value("arbitrary")
    camera.get_by_role("button", name="Remove keyframe 1").click()
    expect(camera.get_by_role("img", name=re.compile("camera path: 2 keyframes"))).to_be_visible()
    # RealEstate10K's text: world-to-camera [R | t]; the second pose looks along +x from
    # (1, 0, 2), so the table shows its centre and a 90° yaw.
    text_file = tmp_path / "poses.txt"
    text_file.write_text(
        "https://example.org/walkthrough\n"
        "1000000 0.5 0.9 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0\n"
        "1500000 0.5 0.9 0.5 0.5 0 0 0 0 -1 2 0 1 0 0 1 0 0 -1\n"
    )
    camera.get_by_label("Import a camera path").set_input_files(text_file)
    expect(camera.get_by_role("textbox", name="Keyframe 2 X")).to_have_value("1")
    expect(camera.get_by_role("textbox", name="Keyframe 2 Time (s)")).to_have_value("0.5")
    expect(camera.get_by_role("textbox", name="Keyframe 2 Yaw (°)")).to_have_value("90")
    expect(camera.get_by_role("textbox", name="Keyframe 3 X")).to_have_count(0)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide on a phone"
    shoot(page, "upload-phone")


def test_a_paused_upload_resumes_on_the_same_tus_upload(
    wallet_page: WalletPage, web_stack: WebStack, make_clip: Callable[[int], Path]
) -> None:
    page, wallet = open_upload(wallet_page, key=2)
    held = hold_patches(page)
    clip = make_clip(2)

    card = choose(page, clip)
    first_id = upload_id_shown(card)
    wait_for_held(page, held)
    card.get_by_role("button", name="Pause").click()
    expect(card.get_by_role("button", name="Resume")).to_be_visible()
    page.unroute(TUS_ROUTES)
    card.get_by_role("button", name="Resume").click()

    expect_uploaded(card, clip)
    assert upload_id_shown(card) == first_id
    [upload] = uploads_of(web_stack, wallet.address)
    assert upload.id == first_id
    assert upload.state == UploadState.COMPLETE


def test_an_upload_cut_by_a_reload_resumes_when_the_file_is_chosen_again(
    wallet_page: WalletPage, web_stack: WebStack, make_clip: Callable[[int], Path]
) -> None:
    page, wallet = open_upload(wallet_page, key=3)
    held = hold_patches(page)
    clip = make_clip(3)
    card = choose(page, clip)
    first_id = upload_id_shown(card)
    # tus-js-client stores the upload's URL for its fingerprint, then sends the data.
    wait_for_held(page, held)
    description = "A draft typed before the reload."
    group(card, "Scene").get_by_role("textbox", name="Description", exact=True).fill(description)

    page.reload()  # cancels the stalled PATCH
    page.unroute(TUS_ROUTES)
    card = choose(page, clip)

    expect(card.get_by_text(re.compile("Continu(ing|ed) an earlier upload"))).to_be_visible()
    expect(card.get_by_text("earlier annotation of this file is filled in")).to_be_visible()
    scene = group(card, "Scene")
    expect(scene.get_by_role("textbox", name="Description", exact=True)).to_have_value(description)
    expect_uploaded(card, clip)
    assert upload_id_shown(card) == first_id
    [upload] = uploads_of(web_stack, wallet.address)
    assert upload.id == first_id
    assert upload.state == UploadState.COMPLETE


def test_a_refused_annotation_shows_the_servers_messages_next_to_their_fields(
    wallet_page: WalletPage, make_clip: Callable[[int], Path], console: ConsoleLog
) -> None:
    console.allow(UNPROCESSABLE)
    page, _ = open_upload(wallet_page, key=4)
    clip = make_clip(4)
    card = choose(page, clip)
    fill_annotation(card)
    # The form leaves length rules and the licence's attribution rule to the server,
    # whose messages are the ones to show.
    description = group(card, "Scene").get_by_role("textbox", name="Description", exact=True)
    description.fill("Too short")
    attribution = group(card, "Rights").get_by_role("textbox", name="Attribution", exact=True)
    attribution.fill("")
    expect_uploaded(card, clip)

    card.get_by_role("button", name="Submit clip").click()

    expect(description).to_have_attribute("aria-invalid", "true")
    expect(description).to_have_accessible_description(re.compile("at least 10 characters"))
    expect(attribution).to_have_accessible_description(re.compile("requires attribution"))
    expect(card.get_by_role("alert")).to_contain_text("see the messages next to them")
    shoot(page, "upload-validation-error")
    description.fill("Static noise on an old TV, humming.")
    attribution.fill("Shotbank test suite")
    card.get_by_role("button", name="Submit clip").click()
    expect(card.get_by_role("status").filter(has_text="Submitted")).to_be_visible()
    expect(description).to_have_count(0)


def test_dropped_clips_upload_each_in_its_own_card_within_the_wallets_quota(
    wallet_page: WalletPage, web_stack: WebStack, make_clip: Callable[[int], Path]
) -> None:
    # Five clips: one more than the backend's 4 unfinished uploads per wallet, so the
    # page must queue them rather than start every upload at once.
    assert web_stack.settings.upload_max_concurrent_per_wallet == 4
    page, wallet = open_upload(wallet_page, key=6)
    clips = [make_clip(seed) for seed in range(10, 15)]
    files = [
        {"name": clip.name, "data": base64.b64encode(clip.read_bytes()).decode()} for clip in clips
    ]
    dropped = page.evaluate_handle(
        """files => {
            const transfer = new DataTransfer();
            for (const { name, data } of files) {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], name, { type: "video/mp4" }));
            }
            return transfer;
        }""",
        files,
    )

    held = hold_patches(page)  # every upload stalls after its creation

    page.get_by_text("Drag and drop video clips here").dispatch_event(
        "drop", {"dataTransfer": dropped}
    )

    wait_for_held(page, held)
    expect(page.get_by_text("Waiting for other uploads to finish")).to_have_count(2)
    expect(page.get_by_text(re.compile(r"upload [0-9a-f]{32}"))).to_have_count(3)
    page.unroute(TUS_ROUTES)
    for clip in clips:
        card = page.get_by_role("region", name=clip.name)
        expect_uploaded(card, clip)
    uploads = uploads_of(web_stack, wallet.address)
    assert len(uploads) == len(clips)
    assert {upload.state for upload in uploads} == {UploadState.COMPLETE}


def test_an_upload_refused_for_an_expired_session_asks_to_sign_in_again(
    wallet_page: WalletPage,
    web_stack: WebStack,
    make_clip: Callable[[int], Path],
    console: ConsoleLog,
) -> None:
    console.allow(r"status of 401")
    page, wallet = open_upload(wallet_page, key=7)
    web_stack.expire_sessions(wallet.address)

    page.get_by_label("Choose clips").set_input_files(make_clip(20))

    expect(page.get_by_role("alert").filter(has_text="Session expired")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    expect(page.get_by_text("Sign in to upload clips")).to_be_visible()
    assert uploads_of(web_stack, wallet.address) == []
