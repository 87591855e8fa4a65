"""Asset and LoRA files of the simulator, in a directory the simulator owns (docs/scope.md §2.9-§2.10)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ASSET_TYPES = {
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".webp", ".bmp"), "image"),
    **dict.fromkeys((".mp4", ".avi", ".mov", ".mkv", ".webm"), "video"),
    **dict.fromkeys((".wav", ".mp3", ".flac", ".ogg"), "audio"),
}
LORA_HOSTS = ("huggingface.co", "hf.co", "civitai.com")
# A few LoRA files so `/api/v1/loras` has something to list and loads can reference them.
SAMPLE_LORAS = ("sim-watercolor.safetensors", "sim-neon-noir.safetensors")


class AssetError(Exception):
    """A request the real server refuses; `status` is the HTTP code it answers with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


class AssetStore:
    """Uploaded assets under `root/assets`, LoRA files under `root/lora`."""

    def __init__(self, root: Path) -> None:
        self.assets_dir = (root / "assets").resolve()
        self.lora_dir = (root / "lora").resolve()
        self.assets_dir.mkdir(parents=True, exist_ok=True)
        self.lora_dir.mkdir(parents=True, exist_ok=True)
        for name in SAMPLE_LORAS:
            sample = self.lora_dir / name
            if not sample.exists():
                sample.write_bytes(b"simulated LoRA weights: " + name.encode())

    # -- assets --------------------------------------------------------------------------

    def upload(self, filename: str | None, data: bytes) -> dict[str, Any]:
        """Store an upload (overwriting), or raise AssetError(400) for a refused name."""
        if not filename:
            raise AssetError(400, "filename query parameter is required")
        suffix = Path(filename).suffix.lower()
        if suffix not in ASSET_TYPES:
            allowed = ", ".join(sorted(ASSET_TYPES))
            raise AssetError(400, f"Invalid file type {suffix or '(none)'}. Allowed: {allowed}")
        target = (self.assets_dir / filename).resolve()
        if not _inside(target, self.assets_dir) or target == self.assets_dir:
            raise AssetError(400, "Invalid filename: must stay inside the assets directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return self.info(target)

    def info(self, path: Path) -> dict[str, Any]:
        """An `AssetFileInfo` with the absolute server path."""
        stat = path.stat()
        folder = path.parent.relative_to(self.assets_dir).as_posix()
        return {
            "name": path.stem,
            "path": str(path),
            "size_mb": round(stat.st_size / (1024 * 1024), 6),
            "folder": None if folder == "." else folder,
            "type": ASSET_TYPES[path.suffix.lower()],
            "created_at": stat.st_mtime,
        }

    def listing(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every asset, newest first, optionally of one type."""
        found = [
            self.info(p)
            for p in self.assets_dir.rglob("*")
            if p.is_file() and p.suffix.lower() in ASSET_TYPES
        ]
        if kind:
            found = [a for a in found if a["type"] == kind]
        return sorted(found, key=lambda a: a["created_at"], reverse=True)

    def resolve(self, name: str) -> Path:
        """The file to serve for `GET /api/v1/assets/{name}`: 403 outside, 404 missing."""
        candidate = Path(name) if Path(name).is_absolute() else self.assets_dir / name
        if not candidate.exists():
            # Clients often drop the leading slash of an absolute path in the URL.
            absolute = Path(os.sep + name)
            if absolute.exists() and _inside(absolute.resolve(), self.assets_dir):
                candidate = absolute
        target = candidate.resolve()
        if not _inside(target, self.assets_dir):
            raise AssetError(403, "Access denied: path is outside the assets directory")
        if not target.is_file():
            raise AssetError(404, "Asset not found")
        return target

    # -- LoRAs ---------------------------------------------------------------------------

    def lora_paths(self) -> list[str]:
        """Absolute paths of every `.safetensors` file in the LoRA directory."""
        return sorted(str(p) for p in self.lora_dir.rglob("*.safetensors") if p.is_file())

    def loras(self) -> list[dict[str, Any]]:
        """The `lora_files` list of `GET /api/v1/loras`."""
        files = []
        for raw in self.lora_paths():
            path = Path(raw)
            data = path.read_bytes()
            folder = path.parent.relative_to(self.lora_dir).as_posix()
            files.append(
                {
                    "name": path.stem,
                    "path": raw,
                    "size_mb": round(len(data) / (1024 * 1024), 6),
                    "folder": None if folder == "." else folder,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "provenance": None,
                    "read_only": False,
                }
            )
        return files

    def install_lora(self, url: str, filename: str | None) -> dict[str, Any]:
        """Pretend to download a LoRA: the URL rules of the real server, a small local file."""
        parsed = urlparse(url)
        host = (parsed.hostname or "").lower()
        if not any(host == h or host.endswith("." + h) for h in LORA_HOSTS):
            raise AssetError(400, f"Unsupported host {host or '(none)'}")
        if "/blob/" in parsed.path:
            raise AssetError(400, "Use a /resolve/ URL, not a /blob/ URL")
        name = filename or Path(parsed.path).name
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise AssetError(400, "Cannot determine a safe file name")
        if not name.endswith(".safetensors"):
            raise AssetError(400, "Only .safetensors files are supported")
        target = self.lora_dir / name
        if target.exists():
            raise AssetError(409, f"LoRA file already exists: {name}")
        target.write_bytes(b"simulated LoRA weights from " + url.encode())
        return next(f for f in self.loras() if f["path"] == str(target))

    def delete_lora(self, stem: str) -> None:
        """Remove a LoRA by name stem, or raise AssetError(404)."""
        for raw in self.lora_paths():
            if Path(raw).stem == stem:
                Path(raw).unlink()
                return
        raise AssetError(404, f"LoRA not found: {stem}")
