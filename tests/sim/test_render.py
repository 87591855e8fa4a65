"""Frames of the simulator show its state; drawing is per chunk, stamping per frame."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from showrunner.sim.render import ChunkView, Renderer, prompt_color


def view(**changes: object) -> ChunkView:
    base: dict[str, object] = {"pipeline_id": "longlive", "width": 192, "height": 96, "chunk": 3}
    base.update(changes)
    return ChunkView(**base)  # type: ignore[arg-type]


def test_chunk_image_has_the_stream_size_and_prompt_colour() -> None:
    image = Renderer().chunk_image(view(prompts=(("a cat", 1.0),)))
    assert image.size == (192, 96)
    assert image.getpixel((191, 48)) == prompt_color("a cat")


def test_blend_mixes_colours() -> None:
    renderer = Renderer()
    half = renderer.chunk_image(view(prompts=(("a cat", 0.5), ("a dog", 0.5)), transition=(2, 4)))
    cat, dog = prompt_color("a cat"), prompt_color("a dog")
    expected = tuple(int(c / 2 + d / 2) for c, d in zip(cat, dog, strict=True))
    assert all(abs(a - b) <= 1 for a, b in zip(half.getpixel((191, 48)), expected, strict=True))


def test_reference_thumbnail_is_pasted(tmp_path: Path) -> None:
    ref = tmp_path / "ref.png"
    Image.new("RGB", (40, 40), (0, 255, 0)).save(ref)
    image = Renderer().chunk_image(view(vace_ref=str(ref)))
    assert image.getpixel((image.width - 6, image.height - 6)) == (0, 255, 0)


def test_unreadable_reference_is_skipped(tmp_path: Path) -> None:
    image = Renderer().chunk_image(view(vace_ref=str(tmp_path / "missing.png")))
    assert image.size == (192, 96)


def test_frame_image_stamps_a_copy() -> None:
    renderer = Renderer()
    base = renderer.chunk_image(view(paused=True, lora_scales=(("/l/a.safetensors", 0.5),)))
    before = base.tobytes()
    frame = renderer.frame_image(base, 42)
    assert base.tobytes() == before
    assert frame.tobytes() != before and frame.size == base.size


def test_tiny_frames_still_render() -> None:
    image = Renderer().chunk_image(view(width=16, height=16, prompts=(("x" * 500, 1.0),)))
    assert image.size == (16, 16)
