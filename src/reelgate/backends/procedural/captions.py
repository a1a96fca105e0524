"""Captions: find a font that can draw the text, and draw it once per shot as an RGBA overlay.

A caption is drawn only with a font that has a glyph for every character; where none is found
(Chinese text on a machine without a CJK font) the shot simply has no caption, never boxes of tofu.
Fonts are looked for in `font_path`, the system's usual places, fontconfig, and pip packages.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

FontType = ImageFont.FreeTypeFont

#: Where common systems keep fonts that cover Chinese, tried in order after `font_path`.
CJK_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/Hiragino Sans GB.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)
LATIN_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:/Windows/Fonts/arial.ttf",
)


#: Text a font must draw for Chinese captions to appear.
CJK_PROBE = "海边日落"


def warn_without_cjk_font(fonts: FontFinder) -> bool:
    """Log, once at start-up, that Chinese captions will be missing and how to fix it; True if so."""
    if fonts.find(CJK_PROBE, 16) is not None:
        return False
    log.warning(
        "no font that can draw Chinese was found: Chinese captions will be left out of videos. "
        "Fix: `pip install mplfonts` into reelgate's environment, install a CJK font "
        "(Debian/Ubuntu: `apt-get install fonts-noto-cjk`), or set REELGATE_FONT_PATH to a font file that covers it."
    )
    return True


class FontFinder:
    """Picks, per text, the first font that covers every character of it."""

    def __init__(self, font_path: Path | None = None, *, search_system: bool = True) -> None:
        self._preferred = str(font_path) if font_path else None
        self._search_system = search_system

    def find(self, text: str, size: int) -> FontType | None:
        for path in self._candidates():
            font = _load(path, size)
            if font is not None and covers(font, text):
                return font
        bundled = ImageFont.load_default(size)
        if isinstance(bundled, ImageFont.FreeTypeFont) and covers(bundled, text):
            return bundled
        log.debug("no installed font can draw %r; the shot has no caption", text)
        return None

    def _candidates(self) -> list[str]:
        found = [self._preferred] if self._preferred else []
        if not self._search_system:
            return found
        system = (*CJK_CANDIDATES, *_fontconfig_cjk(), *packaged_cjk_fonts(), *LATIN_CANDIDATES)
        return found + [path for path in system if Path(path).exists()]


@functools.lru_cache(maxsize=64)
def _load(path: str, size: int) -> FontType | None:
    try:
        return ImageFont.truetype(path, size)
    except OSError:
        log.warning("cannot read the font file %s", path)
        return None


@functools.lru_cache(maxsize=1)
def packaged_cjk_fonts() -> tuple[str, ...]:
    """CJK fonts that come with a pip package (`pip install mplfonts` brings Noto Sans CJK SC).

    For machines where the system's own fonts cannot be installed; the package is found, not imported.
    """
    spec = importlib.util.find_spec("mplfonts")
    if spec is None or spec.origin is None:
        return ()
    return (str(Path(spec.origin).parent / "fonts" / "NotoSansCJKsc-Regular.otf"),)


@functools.lru_cache(maxsize=1)
def _fontconfig_cjk() -> tuple[str, ...]:
    """Fonts fontconfig knows to cover Chinese, where fontconfig is installed."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return ()
    try:
        listing = subprocess.run(
            [fc_list, ":lang=zh", "file"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(sorted(line.split(":")[0].strip() for line in listing.splitlines() if line.strip()))


def covers(font: FontType, text: str) -> bool:
    """True when `font` draws every visible character of `text` with a real glyph, not its tofu box."""
    missing = _glyph(font, "\U0010fffd")
    return all(_glyph(font, ch) != missing for ch in set(text) if not ch.isspace())


def _glyph(font: FontType, ch: str) -> bytes:
    mask = font.getmask(ch)
    return bytes(mask) + repr(mask.size).encode()


def render_caption(text: str, font: FontType, max_width: int) -> np.ndarray:
    """The caption as an RGBA array: white text with a dark outline on a soft translucent band."""
    lines = wrap(text, font, max_width)
    size = round(font.size)
    stroke = max(1, size // 14)
    line_height = int(size * 1.3)
    pad = size // 2
    width = min(max_width, max(int(font.getlength(line)) for line in lines) + 2 * pad + 2 * stroke)
    height = line_height * len(lines) + 2 * pad
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, width - 1, height - 1), radius=pad, fill=(0, 0, 0, 110))
    for row, line in enumerate(lines):
        x = (width - font.getlength(line)) / 2
        y = pad + row * line_height
        draw.text((x, y), line, font=font, fill=(255, 255, 255, 255), stroke_width=stroke, stroke_fill=(0, 0, 0, 220))
    return np.asarray(image)


def wrap(text: str, font: FontType, max_width: int) -> list[str]:
    """Break `text` into lines no wider than `max_width`: at spaces for words, anywhere for CJK."""
    limit = max_width - font.size
    lines: list[str] = []
    line = ""
    for token in _tokens(text):
        candidate = (line + token) if line else token.lstrip()
        if line and font.getlength(candidate) > limit:
            lines.append(line.rstrip())
            candidate = token.lstrip()
        line = candidate
    lines.append(line.rstrip())
    return [line for line in lines if line][:3] or [text[:20]]


def _tokens(text: str) -> list[str]:
    """Words with their leading space for spaced scripts; single characters for CJK."""
    tokens: list[str] = []
    for ch in text:
        if tokens and ch.isascii() and not ch.isspace() and tokens[-1][-1:].isascii() and tokens[-1][-1:] != "":
            tokens[-1] += ch
        else:
            tokens.append(ch)
    return tokens
