"""Asset upload/list/serve and the LoRA list of the simulator (docs/scope.md §2.9-§2.10)."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from PIL import Image

from showrunner.sim import Simulator

pytestmark = pytest.mark.anyio


def png(color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format="PNG")
    return buffer.getvalue()


async def upload(client: httpx.AsyncClient, name: str, data: bytes) -> httpx.Response:
    return await client.post(
        "/api/v1/assets",
        params={"filename": name},
        content=data,
        headers={"content-type": "application/octet-stream"},
    )


async def test_upload_returns_absolute_server_path_and_overwrites(sim: Simulator) -> None:
    """docs/scope.md §2.9: AssetFileInfo with an ABSOLUTE server path; an existing file is overwritten."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        first = await upload(client, "refs/hero.png", png("red"))
        assert first.status_code == 200
        info = first.json()
        assert set(info) == {"name", "path", "size_mb", "folder", "type", "created_at"}
        assert (info["name"], info["folder"], info["type"]) == ("hero", "refs", "image")
        path = Path(info["path"])
        assert path.is_absolute() and path.read_bytes() == png("red")
        second = await upload(client, "refs/hero.png", png("blue"))
        assert second.json()["path"] == info["path"]
        assert path.read_bytes() == png("blue")


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("notes.txt", 400),
        ("noextension", 400),
        ("../escape.png", 400),
        ("/etc/absolute.png", 400),
        ("clip.MP4", 200),
        ("sound.flac", 200),
    ],
    ids=["bad-extension", "no-extension", "parent-dir", "absolute", "video-upper", "audio"],
)
async def test_upload_name_rules(sim: Simulator, name: str, status: int) -> None:
    """docs/scope.md §2.9: allowed extensions only; the name must resolve inside the assets dir."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        response = await upload(client, name, b"data")
    assert response.status_code == status
    if status == 400:
        assert "detail" in response.json()


async def test_upload_without_filename_is_rejected(sim: Simulator) -> None:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        response = await client.post("/api/v1/assets", content=b"x")
    assert response.status_code == 422


async def test_list_newest_first_and_by_type(sim: Simulator) -> None:
    """docs/scope.md §2.9: list newest first, filterable by type."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        await upload(client, "a.png", png())
        await upload(client, "b.wav", b"RIFF")
        newest = await upload(client, "c.jpg", png())
        everything = (await client.get("/api/v1/assets")).json()["assets"]
        images = (await client.get("/api/v1/assets", params={"type": "image"})).json()["assets"]
    assert everything[0]["path"] == newest.json()["path"]
    assert {a["name"] for a in everything} == {"a", "b", "c"}
    assert {a["name"] for a in images} == {"a", "c"}


async def test_serve_asset_403_outside_404_missing(sim: Simulator) -> None:
    """docs/scope.md §2.9: serve by relative or absolute path; 403 outside the dir, 404 missing."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        info = (await upload(client, "x/pic.png", png())).json()
        relative = await client.get("/api/v1/assets/x/pic.png")
        absolute = await client.get(f"/api/v1/assets/{info['path'].lstrip('/')}")
        missing = await client.get("/api/v1/assets/x/none.png")
        outside = await client.get("/api/v1/assets//etc/hostname")
    assert relative.status_code == 200 and relative.content == png()
    assert absolute.status_code == 200
    assert missing.status_code == 404
    assert outside.status_code == 403


async def test_loras_listed_with_absolute_paths(sim: Simulator) -> None:
    """docs/scope.md §2.10: GET /api/v1/loras lists `.safetensors` files with absolute paths."""
    (Path(sim.assets.lora_dir) / "extra.safetensors").write_bytes(b"w")
    (Path(sim.assets.lora_dir) / "ignored.bin").write_bytes(b"w")
    async with httpx.AsyncClient(base_url=sim.url) as client:
        files = (await client.get("/api/v1/loras")).json()["lora_files"]
    names = {f["name"] for f in files}
    assert {"sim-watercolor", "sim-neon-noir", "extra"} <= names
    assert "ignored" not in names
    for f in files:
        assert Path(f["path"]).is_absolute() and f["path"].endswith(".safetensors")
        assert set(f) == {"name", "path", "size_mb", "folder", "sha256", "provenance", "read_only"}


async def test_lora_install_rules_and_delete(sim: Simulator) -> None:
    """docs/scope.md §2.10: host/extension rules (400), 409 if present, DELETE 404 when missing."""
    url = "https://huggingface.co/org/repo/resolve/main/style.safetensors"
    async with httpx.AsyncClient(base_url=sim.url) as client:
        ok = await client.post("/api/v1/loras", json={"url": url})
        again = await client.post("/api/v1/loras", json={"url": url})
        blob = await client.post("/api/v1/loras", json={"url": url.replace("/resolve/", "/blob/")})
        host = await client.post("/api/v1/loras", json={"url": "https://example.com/a.safetensors"})
        ext = await client.post("/api/v1/loras", json={"url": "https://hf.co/a/b/resolve/main/c.ckpt"})
        deleted = await client.delete("/api/v1/loras/style")
        gone = await client.delete("/api/v1/loras/style")
    assert ok.status_code == 200 and ok.json()["file"]["name"] == "style"
    assert again.status_code == 409
    assert (blob.status_code, host.status_code, ext.status_code) == (400, 400, 400)
    assert deleted.status_code == 200 and gone.status_code == 404
