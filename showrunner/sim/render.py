"""Drawing the simulator's frames: what the session believes, as text on a coloured canvas.

The text layer is drawn once per chunk (`chunk_image`); each frame only stamps its counter on a
copy (`frame_image`), so a frame costs one copy and one short line of text.
"""

from __future__ import annotations

import colorsys
import hashlib
import logging
import textwrap
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

FontType = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class ChunkView:
    """Everything one chunk's picture shows."""

    pipeline_id: str
    width: int
    height: int
    chunk: int
    prompts: tuple[tuple[str, float], ...] = ()
    transition: tuple[int, int] | None = None  # (step, num_steps)
    lora_scales: tuple[tuple[str, float], ...] = ()
    vace_ref: str | None = None
    paused: bool = False
    cache_resets: int = 0
    buttons: tuple[str, ...] = ()
    mouse: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class Chunk:
    """The frames of one pipeline call. Drawn (canvas) frames get the running frame counter
    stamped when sent; frames from an input file go out as they are."""

    images: tuple[Image.Image, ...]
    stamp: bool = True


@cache
def _font(size: int) -> FontType:
    try:
        return ImageFont.load_default(size)
    except (OSError, ImportError):  # Pillow built without FreeType
        return ImageFont.load_default()


def prompt_color(text: str) -> tuple[int, int, int]:
    """A stable, mid-dark colour per prompt text, so cuts and blends are visible."""
    digest = hashlib.sha1(text.encode("utf-8")).digest()
    r, g, b = colorsys.hsv_to_rgb(digest[0] / 255.0, 0.55, 0.45)
    return int(r * 255), int(g * 255), int(b * 255)


def _background(prompts: tuple[tuple[str, float], ...]) -> tuple[int, int, int]:
    if not prompts:
        return (24, 24, 28)
    total = sum(w for _, w in prompts) or 1.0
    mix = [0.0, 0.0, 0.0]
    for text, weight in prompts:
        for i, c in enumerate(prompt_color(text)):
            mix[i] += c * weight / total
    return int(mix[0]), int(mix[1]), int(mix[2])


class Renderer:
    """Draws chunk pictures; keeps thumbnails of reference images it has opened."""

    def __init__(self) -> None:
        self._thumbs: dict[tuple[str, int], Image.Image | None] = {}

    def chunk_image(self, view: ChunkView) -> Image.Image:
        """The picture of one chunk, without the per-frame counter."""
        image = Image.new("RGB", (view.width, view.height), _background(view.prompts))
        draw = ImageDraw.Draw(image)
        size = max(8, min(28, view.height // 18))
        font = _font(size)
        columns = max(8, int(view.width / (size * 0.55)))
        lines = [f"{view.pipeline_id}  {view.width}x{view.height}"]
        for text, weight in view.prompts:
            wrapped = textwrap.wrap(f"{weight:.2f} {text}", columns) or [""]
            lines.extend(wrapped[:3])
        if view.transition is not None:
            step, steps = view.transition
            lines.append(f"transition {step}/{steps}")
        for path, scale in view.lora_scales:
            lines.append(f"lora {path.rsplit('/', 1)[-1]} x{scale:g}")
        if view.buttons or view.mouse != (0.0, 0.0):
            lines.append(f"keys {' '.join(view.buttons)} mouse {view.mouse[0]:g},{view.mouse[1]:g}")
        lines.append(f"chunk {view.chunk}  resets {view.cache_resets}")
        if view.paused:
            lines.append("PAUSED")
        y = size // 2
        for line in lines:
            draw.text((size // 2, y), line, fill=(240, 240, 240), font=font)
            y += size + size // 4
        if view.vace_ref:
            self._paste_thumbnail(image, view.vace_ref)
        return image

    def frame_image(self, base: Image.Image, frame: int) -> Image.Image:
        """One frame: the chunk picture with the running frame counter stamped on it."""
        image = base.copy()
        size = max(8, min(28, image.height // 18))
        ImageDraw.Draw(image).text(
            (size // 2, image.height - size - size // 2),
            f"frame {frame}",
            fill=(255, 255, 160),
            font=_font(size),
        )
        return image

    def _paste_thumbnail(self, image: Image.Image, path: str) -> None:
        side = max(8, min(image.width, image.height) // 4)
        key = (path, side)
        if key not in self._thumbs:
            try:
                with Image.open(path) as source:
                    thumb = source.convert("RGB")
                    thumb.thumbnail((side, side))
                self._thumbs[key] = thumb
            except (OSError, ValueError) as exc:
                log.warning("reference image %s unreadable: %s", path, exc)
                self._thumbs[key] = None
        cached = self._thumbs[key]
        if cached is not None:
            image.paste(cached, (image.width - cached.width - 4, image.height - cached.height - 4))
