"""Reading the files a show names: regular files only, inside allowed folders, bounded."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from showrunner.show.files import (
    FileOutside,
    FileProblem,
    FileTooLarge,
    ReadPolicy,
    check_file,
    read_bytes,
)


def _problem(path: Path, policy: ReadPolicy | None = None) -> str:
    with pytest.raises(FileProblem) as info:
        read_bytes(path, policy or ReadPolicy())
    return info.value.message


def test_reads_a_regular_file(tmp_path: Path) -> None:
    show = tmp_path / "show.yaml"
    show.write_bytes(b"scenes: []\n")
    assert read_bytes(show, ReadPolicy.for_show(show)) == b"scenes: []\n"


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    done = threading.Event()
    result: list[str] = []

    def read() -> None:
        result.append(_problem(fifo))
        done.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    # A blocking open would wait for a writer forever; unblock it so the test can end either way.
    if not done.wait(5):
        with open(fifo, "wb"):
            pass
        thread.join(5)
        pytest.fail("reading a FIFO blocked")
    assert result == ["is a FIFO, not a regular file"]


def test_a_device_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    assert _problem(link) == "is a device, not a regular file"


def test_a_directory_is_refused(tmp_path: Path) -> None:
    assert _problem(tmp_path) == "is a directory, not a file"


def test_missing_file(tmp_path: Path) -> None:
    assert _problem(tmp_path / "nope.yaml") == "file not found"


def test_the_limit_is_counted_while_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"x" * (3 * 1024 * 1024))
    policy = ReadPolicy(limit=2 * 1024 * 1024)
    assert _problem(big, policy) == "file is too large (more than 2 MiB)"
    assert len(read_bytes(big, ReadPolicy(limit=4 * 1024 * 1024))) == 3 * 1024 * 1024


def test_paths_outside_the_show_folder_are_refused(tmp_path: Path) -> None:
    show_dir = tmp_path / "show"
    (show_dir / "lib").mkdir(parents=True)
    show = show_dir / "show.yaml"
    show.write_text("scenes: []\n")
    (show_dir / "lib" / "inc.yaml").write_text("a: 1\n")
    outside = tmp_path / "secret.txt"
    outside.write_text("secret\n")
    policy = ReadPolicy.for_show(show)
    assert read_bytes(show_dir / "lib" / "inc.yaml", policy) == b"a: 1\n"
    assert "outside the show's folder" in _problem(show_dir / ".." / "secret.txt", policy)
    assert "--allow-path" in _problem(Path("/etc/hostname"), policy)
    sneaky = show_dir / "link.yaml"
    sneaky.symlink_to(outside)
    assert "outside the show's folder" in _problem(sneaky, policy)


def test_allowed_folders_widen_the_policy(tmp_path: Path) -> None:
    show_dir, shared = tmp_path / "show", tmp_path / "shared"
    show_dir.mkdir()
    shared.mkdir()
    show = show_dir / "show.yaml"
    show.write_text("scenes: []\n")
    (shared / "prompts.yaml").write_text("a: 1\n")
    policy = ReadPolicy.for_show(show, [shared])
    assert read_bytes(shared / "prompts.yaml", policy) == b"a: 1\n"


def test_a_file_that_lies_about_its_size_is_cut_off() -> None:
    # /proc files say they are empty and then give more: the limit is counted while reading.
    maps = Path("/proc/self/maps")
    if not maps.exists() or maps.stat().st_size != 0:
        pytest.skip("needs a /proc file that reports size 0")
    with pytest.raises(FileTooLarge) as info:
        read_bytes(maps, ReadPolicy(limit=64))
    assert info.value.size == 65 and info.value.kind == "too-large"


def test_problems_say_what_kind_they_are(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "zero").symlink_to("/dev/zero")
    cases = {"pipe": "special", "zero": "special", "nope": "missing", ".": "directory"}
    for name, kind in cases.items():
        with pytest.raises(FileProblem) as info:
            read_bytes(tmp_path / name)
        assert info.value.kind == kind, name
    big = tmp_path / "big"
    big.write_bytes(b"x" * 100)
    with pytest.raises(FileTooLarge) as too_large:
        read_bytes(big, ReadPolicy(limit=10))
    assert (too_large.value.size, too_large.value.limit) == (100, 10)


def test_check_file_looks_without_opening(tmp_path: Path) -> None:
    show = tmp_path / "show" / "show.yaml"
    show.parent.mkdir()
    show.write_text("scenes: []\n")
    image = show.parent / "a.png"
    image.write_bytes(b"\x89PNG")
    os.mkfifo(show.parent / "pipe.png")
    policy = ReadPolicy.for_show(show)
    assert check_file(image, policy) == image.resolve()
    problems = {}
    for name in ("pipe.png", "nope.png", ".", "../secret.png", "/etc/passwd"):
        with pytest.raises(FileProblem) as info:
            check_file(show.parent / name, policy)
        problems[name] = info.value
    assert problems["pipe.png"].message == "is a FIFO, not a regular file"
    assert problems["nope.png"].kind == "missing"
    assert problems["."].kind == "directory"
    # Outside the folder nothing is looked at, not even whether the file exists.
    assert isinstance(problems["../secret.png"], FileOutside)
    assert isinstance(problems["/etc/passwd"], FileOutside)


def test_the_folder_of_a_symlinked_show_is_where_it_is_named(tmp_path: Path) -> None:
    real = tmp_path / "library" / "show.yaml"
    real.parent.mkdir()
    real.write_text("scenes: []\n")
    here = tmp_path / "stage"
    here.mkdir()
    (here / "show.yaml").symlink_to(real)
    assert ReadPolicy.for_show(here / "show.yaml").roots == (here.resolve(),)
