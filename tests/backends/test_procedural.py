"""The procedural renderer makes a real short film: checked by decoding it as a viewer's player would."""

from __future__ import annotations

import colorsys
import os
import threading
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from reelgate.backends.base import GeneratedVideo, Orientation, VideoSpec
from reelgate.backends.procedural import ProceduralBackend
from reelgate.backends.procedural.backend import RenderCancelled
from reelgate.backends.procedural.captions import FontFinder, covers, packaged_cjk_fonts
from reelgate.backends.procedural.film import Film
from reelgate.backends.procedural.script import clauses, plan
from reelgate.errors import GenerationError
from reelgate.media.encode import SAMPLE_RATE
from reelgate.media.probe import probe, read_audio, read_frame

PROMPT = "中国街头吃西瓜，夕阳下的城市，然后下起了雨"


def _spec(
    prompt: str = PROMPT,
    *,
    seconds: int = 6,
    size: tuple[int, int] = (144, 256),
    seed: int = 1,
    first_frame: Path | None = None,
) -> VideoSpec:
    orientation = Orientation.PORTRAIT if size[0] < size[1] else Orientation.LANDSCAPE
    return VideoSpec(prompt, orientation, seconds, size[0], size[1], 8, seed, "m", first_frame=first_frame)


def _frames(spec: VideoSpec, fonts: FontFinder | None = None) -> np.ndarray:
    film = Film.of(spec, fonts or FontFinder())
    return np.stack(list(film.frames())).astype(np.int16)


async def test_renders_an_mp4_of_exact_length_and_size_with_sound(tmp_path: Path) -> None:
    progress: list[int] = []
    result = await ProceduralBackend().generate(_spec(), tmp_path, progress.append)
    info = probe(result.video)
    assert (info.width, info.height, info.frames) == (144, 256, 48)
    assert info.duration == pytest.approx(6.0, abs=0.1)
    assert (info.video_codec, info.pix_fmt, info.audio_codec) == ("h264", "yuv420p", "aac")
    assert (info.audio_sample_rate, info.audio_channels) == (48_000, 2)
    assert info.audio_duration == pytest.approx(info.duration, abs=0.1)
    assert progress == sorted(progress) and progress[-1] == 100 and len(progress) > 10
    assert result.probed == info  # probed where it was rendered: the worker need not open it again
    assert result.thumbnail is not None
    with Image.open(result.thumbnail) as thumb:
        assert thumb.format == "WEBP" and thumb.size == (144, 256)


async def test_landscape_is_landscape(tmp_path: Path) -> None:
    result = await ProceduralBackend().generate(_spec(size=(256, 144), seconds=3), tmp_path, lambda _: None)
    info = probe(result.video)
    assert (info.width, info.height) == (256, 144) and info.duration == pytest.approx(3.0, abs=0.1)


def test_shots_come_from_the_prompts_clauses() -> None:
    assert clauses(PROMPT) == ["中国街头吃西瓜", "夕阳下的城市", "下起了雨"]
    board = plan(PROMPT, seed=1, seconds=15, fps=24)
    assert [shot.caption for shot in board.shots] == clauses(PROMPT)
    assert board.shots[0].start == 0 and board.shots[-1].end == 15 * 24
    assert all(a.end == b.start for a, b in zip(board.shots, board.shots[1:], strict=False))
    assert board.shots[0].subject == "melon" and board.shots[2].weather == "rain"
    assert len(plan("a cat", seed=1, seconds=15, fps=24).shots) >= 3  # one clause still makes several shots


def test_every_shot_moves_and_cuts_are_visible() -> None:
    spec = _spec()
    frames = _frames(spec)
    board = plan(spec.prompt, spec.seed, spec.seconds, spec.fps)
    steps = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))  # steps[i]: change from frame i to i+1
    for shot in board.shots:
        assert np.abs(frames[shot.end - 1] - frames[shot.start]).mean() > 3, f"shot {shot.index} is a still"
    within = np.median(steps)
    for cut in board.cuts:
        assert steps[cut - 1] > 4 * within, f"no visible cut at frame {cut}"


def test_same_request_same_film_other_prompt_or_seed_other_film() -> None:
    first = _frames(_spec(seconds=2))
    assert np.array_equal(first, _frames(_spec(seconds=2)))
    assert np.abs(first - _frames(_spec("a blue sea under the moon", seconds=2))).mean() > 10
    assert np.abs(first - _frames(_spec(seconds=2, seed=2))).mean() > 3


@pytest.mark.parametrize(
    ("prompt", "dominant"),
    [("red red red", 0), ("a green meadow, green trees", 1), ("蓝色的海", 2), ("blue sky", 2)],
)
def test_palette_follows_the_prompts_colour_words(prompt: str, dominant: int) -> None:
    sky = _frames(_spec(prompt, seconds=1))[:, :80].mean(axis=(0, 1, 2))  # the upper third, all frames
    assert int(np.argmax(sky)) == dominant, sky


async def test_soundtrack_accents_land_on_the_cuts(tmp_path: Path) -> None:
    spec = _spec()
    result = await ProceduralBackend().generate(spec, tmp_path, lambda _: None)
    samples, rate = read_audio(result.video)
    energy = (samples**2).mean(axis=0)
    board = plan(spec.prompt, spec.seed, spec.seconds, spec.fps)

    def level(start: float, end: float) -> float:
        return float(energy[int(start * rate) : int(end * rate)].mean())

    for cut in board.cuts:
        at = cut / spec.fps
        assert level(at, at + 0.1) > 4 * level(at - 0.25, at - 0.05), f"no accent at {at:.2f} s"


def test_captions_need_a_font_with_every_glyph() -> None:
    bundled = FontFinder(search_system=False)
    latin = bundled.find("eating watermelon", 20)
    assert latin is not None and not covers(latin, "中国")
    assert bundled.find("中国街头吃西瓜", 20) is None  # no CJK font: no caption, never tofu boxes


class NoFonts(FontFinder):
    def find(self, text: str, size: int) -> None:
        return None


def test_caption_is_drawn_when_a_font_can() -> None:
    spec = _spec("eating watermelon on a street", seconds=2, size=(288, 512))
    with_caption = _frames(spec, FontFinder(search_system=False))
    without = _frames(spec, NoFonts())
    assert np.array_equal(with_caption, _frames(spec, FontFinder(search_system=False)))
    band = slice(int(512 * 0.6), int(512 * 0.9))
    assert np.abs(with_caption[-1, band] - without[-1, band]).mean() > 1


def test_cjk_caption_with_an_installed_cjk_font() -> None:
    """Chinese captions with the CJK font the test extra installs (mplfonts' Noto Sans CJK SC)."""
    fonts = [path for path in packaged_cjk_fonts() if Path(path).exists()]
    if not fonts:
        if os.environ.get("CI") == "true":
            pytest.fail("the test extra installs mplfonts, whose CJK font is missing")
        pytest.skip("no packaged CJK font (pip install mplfonts)")
    finder = FontFinder(Path(fonts[0]), search_system=False)
    font = finder.find("中国街头吃西瓜", 24)
    assert font is not None and covers(font, "中国街头吃西瓜")
    assert FontFinder(search_system=False).find("中国街头吃西瓜", 24) is None  # Pillow's own font cannot
    spec = _spec("中国街头吃西瓜", seconds=2, size=(288, 512))
    with_caption, without = _frames(spec, finder), _frames(spec, NoFonts())
    band = slice(int(512 * 0.6), int(512 * 0.9))
    assert np.abs(with_caption[-1, band].astype(int) - without[-1, band]).mean() > 1


def test_a_stopped_render_raises_and_leaves_no_video(tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(RenderCancelled):
        ProceduralBackend().render(_spec(), tmp_path, lambda _: None, stop)
    assert not (tmp_path / "video.mp4").exists()


def test_audio_is_exactly_as_long_as_the_film() -> None:
    film = Film.of(VideoSpec(PROMPT, Orientation.PORTRAIT, 10, 144, 256, 24, 1, "m"), FontFinder(search_system=False))
    assert film.audio.shape == (10 * SAMPLE_RATE, 2) and np.abs(film.audio).max() <= 1.0


# Image-to-video: the film opens on the user's image.


def _photo(
    path: Path, sky: tuple[int, int, int] = (90, 150, 220), land: tuple[int, int, int] = (60, 120, 50)
) -> np.ndarray:
    """A small natural-ish picture (sky, sun, hills, a house, soft edges, grain), saved as PNG at `path`."""
    width, height = 144, 256
    ramp = np.linspace(0, 1, height)[:, None, None]
    image = Image.fromarray(
        (np.array(sky) * (1 - ramp) + np.array((250, 200, 150)) * ramp).astype(np.uint8).repeat(width, 1)
    )
    draw = ImageDraw.Draw(image)
    draw.ellipse((86, 38, 122, 74), fill=(255, 230, 120))
    draw.polygon([(0, 166), (43, 128), (100, 158), (144, 140), (144, 256), (0, 256)], fill=land)
    draw.rectangle((29, 180, 65, 218), fill=(150, 60, 40))
    grain = np.random.default_rng(0).normal(0, 3, (height, width, 3))
    pixels = np.clip(np.asarray(image.filter(ImageFilter.GaussianBlur(1.2)), np.float64) + grain, 0, 255)
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return pixels.astype(np.int16)


def _render(spec: VideoSpec, workdir: Path) -> GeneratedVideo:
    workdir.mkdir()
    return ProceduralBackend().render(spec, workdir, lambda _: None)


def test_video_opens_on_the_image_then_moves_away_from_it(tmp_path: Path) -> None:
    image = _photo(tmp_path / "first.png")
    result = _render(_spec("birds over the village", seconds=4, first_frame=tmp_path / "first.png"), tmp_path / "i2v")
    opening = read_frame(result.video, 0).astype(np.int16)
    assert np.abs(opening - image).mean() < 6  # the image itself, give or take H.264
    later = read_frame(result.video, 10).astype(np.int16)  # 1.25 s in, still the first shot
    assert np.abs(later - opening).mean() > 3
    unrelated = read_frame(_render(_spec("birds over the village", seconds=4), tmp_path / "t2v").video, 10)
    assert np.abs(later - image).mean() < np.abs(unrelated.astype(np.int16) - image).mean() / 2  # the same scene
    assert result.thumbnail is not None
    with Image.open(result.thumbnail) as thumb:
        assert thumb.size == (144, 256)
        assert np.abs(np.asarray(thumb.convert("RGB"), np.int16) - image).mean() < 40


def test_the_images_colours_carry_into_the_later_shots(tmp_path: Path) -> None:
    image = _photo(tmp_path / "green.png", sky=(40, 170, 90), land=(20, 90, 30))
    spec = _spec("a quiet walk", seconds=4)
    later = plan(spec.prompt, spec.seed, spec.seconds, spec.fps).shots[1].start
    with_image = _frames(replace(spec, first_frame=tmp_path / "green.png"))[later:].mean(axis=(0, 1, 2))
    without = _frames(spec)[later:].mean(axis=(0, 1, 2))
    target = _hue(image.mean(axis=(0, 1)))
    assert _hue_distance(_hue(with_image), target) < 0.04 < _hue_distance(_hue(without), target), (with_image, without)


def _hue(rgb: np.ndarray) -> float:
    return colorsys.rgb_to_hsv(*(float(c) / 255 for c in rgb))[0]


def _hue_distance(a: float, b: float) -> float:
    return min(abs(a - b), 1 - abs(a - b))


def test_image_to_video_is_deterministic(tmp_path: Path) -> None:
    """The same image and prompt paint the same film, pixel for pixel. The MP4s are compared by their
    decoded pictures with a tolerance: libx264 does not promise identical bytes for identical frames (it
    reads uninitialised row padding on some inputs; seen here at 144x256)."""
    _photo(tmp_path / "first.png")
    spec = _spec(seconds=2, first_frame=tmp_path / "first.png")
    assert np.array_equal(_frames(spec), _frames(spec))
    first, again = _render(spec, tmp_path / "a"), _render(spec, tmp_path / "b")
    pictures = [np.stack(_decoded(result.video)).astype(np.int16) for result in (first, again)]
    assert pictures[0].shape == pictures[1].shape
    assert np.abs(pictures[0] - pictures[1]).mean() < 4.0  # up to 1.4 measured between two renders


def _decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_an_unreadable_first_frame_fails_the_task(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(GenerationError):
        ProceduralBackend().render(_spec(first_frame=tmp_path / "broken.png"), tmp_path, lambda _: None)


@pytest.mark.parametrize(("width", "height"), [(1706, 302), (192, 95), (341, 200)])
def test_city_windows_stay_inside_bands_of_any_size(width: int, height: int) -> None:
    """Window rows near the band's bottom edge are clipped, not written past it (a 1280x720 crash)."""
    from reelgate.backends.procedural import layers

    band = layers.scenery("city", width, height, (90, 90, 120), (250, 220, 120), 10, np.random.default_rng(3))
    assert band.rgb.shape == (height, width, 3)
    lit = np.all(band.rgb == (250, 220, 120), axis=-1)
    assert lit.any()  # windows were drawn at all
