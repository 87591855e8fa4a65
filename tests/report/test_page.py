"""The HTML report in a real headless Chromium: what a curator and a VJ see.

Every example show and a generated 500-scene show are rendered and opened; the DOM must show
no two text labels on top of each other, nothing outside the visible area at the default zoom,
a lane for every runtime value the show uses, the dark-scene mark where a reload blanks a scene,
and no network request at all. The cue sheet is printed to an A4 PDF, and its tagged structure
says on which page each row lies: no row may be cut.

Screenshots land in $SHOWRUNNER_ARTIFACTS (default tests/artifacts/, git-ignored) for review.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from browser import DevTools, chromium, needs_chromium

from showrunner.plan.compiler import compile_timeline
from showrunner.plan.timeline import Timeline
from showrunner.report.html import render_html
from showrunner.show.load import load
from showrunner.show.model import Show

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.stem for p in (ROOT / "shows").glob("*.yaml"))
# Read at import: the autouse fixture in conftest.py hides SHOWRUNNER_* while tests run.
ARTIFACTS = Path(os.environ.get("SHOWRUNNER_ARTIFACTS") or ROOT / "tests" / "artifacts")
WINDOW = (1280, 900)
NOW = datetime(2026, 1, 10, 20, 30, tzinfo=UTC)  # a Saturday night in Berlin: the gallery is closed


# ---------------------------------------------------------------------------------------------
# Shows
# ---------------------------------------------------------------------------------------------


def example(name: str) -> tuple[Timeline, Show]:
    result = load(ROOT / "shows" / f"{name}.yaml")
    return compile_timeline(result.show, source=f"shows/{name}.yaml"), result.show


def generated(tmp_path: Path, count: int = 500) -> tuple[Timeline, Show]:
    """A long show that uses everything: cues, sections, switches, keyframes, LoRAs, refs, weights."""
    (tmp_path / "ref.png").write_bytes(base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    ))
    scenes: list[dict[str, Any]] = []
    for i in range(count):
        scene: dict[str, Any] = {"name": f"s{i:03d}",
                                 "prompts": f"look number {i}, a long descriptive prompt",
                                 "duration": "8 bars", "transition": "1 bar"}
        if i % 50 == 25:
            scene["cue"] = True
            scene.pop("transition")
        if i % 100 == 60:
            scene["pipeline"] = "krea-realtime-video"
            scene["load"] = {"loras": []}
        if i % 100 == 61:
            scene["pipeline"] = "longlive"
            scene["load"] = {"loras": [{"lora": "ink", "scale": 0}]}
        if i % 7 == 3:
            scene["keyframes"] = {"noise_scale": [{"at": 0, "value": 0.4},
                                                  {"at": "4 bars", "value": 0.9, "ease": "cubic"}]}
        if i % 11 == 5:
            scene["manage_cache"] = False
            scene.setdefault("keyframes", {})["lora.ink"] = [{"at": 0, "value": 0},
                                                            {"at": "8 bars", "value": 1, "ease": "ease-out"}]
        if i % 5 == 1:
            scene["prompts"] = [{"text": f"look {i}", "weight": 0.7}, {"text": "fog", "weight": 0.3}]
        if i % 13 == 2:
            scene["vace"] = {"refs": ["ref"], "context_scale": 0.5 + (i % 3) / 4}
        if i % 17 == 9:
            scene["notes"] = f"lights cue {i}"
        scenes.append(scene)
    data = {
        "title": f"Generated ({count} scenes)",
        "bpm": 128,
        "defaults": {"noise_scale": 0.5,
                     "load": {"lora_merge_mode": "runtime_peft", "loras": [{"lora": "ink", "scale": 0}]}},
        "assets": {"images": {"ref": str(tmp_path / "ref.png")}, "loras": {"ink": "ink.safetensors"}},
        "sections": [{"name": "chorus", "start": "s010", "end": "s013", "repeat": 3}],
        "scenes": scenes,
    }
    path = tmp_path / "generated.yaml"
    path.write_text(json.dumps(data), "utf-8")
    result = load(path)
    return compile_timeline(result.show, source=str(path)), result.show


def expected_lanes(show: Show) -> set[str]:
    """Lane names the page must have, read from the show file alone (not from the renderer)."""
    lanes = {"scenes", "pipeline", "prompts"}
    if show.bpm:
        lanes.add(f"bars ({show.bpm:g} bpm)")
    values = [show.defaults, *show.scenes]
    for key in ("noise_scale", "vace_context_scale", "kv_cache_attention_bias"):
        if any(getattr(v, key) is not None for v in values) or any(key in s.keyframes for s in show.scenes):
            lanes.add(key)
    if any(s.vace and s.vace.context_scale is not None for s in show.scenes):
        lanes.add("vace_context_scale")
    loras = {lora.lora for lora in show.defaults.load.loras or []}
    for s in show.scenes:
        loras.update(s.loras)
        loras.update(k[5:] for k in s.keyframes if k.startswith("lora."))
        loras.update(lora.lora for lora in ((s.load.loras or []) if s.load else []))
    lanes.update(f"LoRA {name}" for name in loras)
    if any(s.cue for s in show.scenes):
        lanes.add("cues")
    if any(s.vace and s.vace.refs for s in show.scenes):
        lanes.add("VACE")
    if show.sections or show.loop not in (False, 1):
        lanes.add("loops")
    return lanes


def weighted(show: Show) -> bool:
    return any(
        bool(s.prompts and len({p.weight for p in s.prompts}) > 1)
        or any(k.startswith("prompt.") for k in s.keyframes)
        for s in show.scenes
    )


# ---------------------------------------------------------------------------------------------
# The browser side
# ---------------------------------------------------------------------------------------------


class Page:
    """A report page open in Chromium, with every request it tries recorded (and refused)."""

    def __init__(self, browser: DevTools) -> None:
        self.browser = browser
        self.requests: list[str] = []
        self.pending: list[asyncio.Future[Any]] = []

    async def open(self, html: str) -> None:
        b = self.browser
        b.on_event(self._event)
        await b.attach()
        await b.call("Network.enable")
        await b.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]})
        await b.call("Emulation.setDeviceMetricsOverride",
                     {"width": WINDOW[0], "height": WINDOW[1], "deviceScaleFactor": 1, "mobile": False})
        await b.call("Page.navigate", {"url": "about:blank"})
        frame = (await b.call("Page.getFrameTree"))["frameTree"]["frame"]["id"]
        await b.call("Page.setDocumentContent", {"frameId": frame, "html": html}, timeout=60)
        await b.wait_for("document.documentElement.dataset.timeline === 'ready'", timeout=30)

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Fetch.requestPaused":
            self.requests.append(params["request"]["url"])
            self.pending.append(asyncio.ensure_future(self.browser.call(
                "Fetch.failRequest", {"requestId": params["requestId"], "errorReason": "BlockedByClient"}
            )))

    def outside(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(("data:", "about:"))]


# Every visible SVG text label with its box, the timeline's box and what sticks out of it.
PROBE = r"""
(() => {
  const visible = el => {
    const cs = getComputedStyle(el);
    return el.textContent.trim() !== "" && cs.display !== "none" && cs.visibility !== "hidden"
      && !el.closest("[hidden]") && el.getBoundingClientRect().width > 0;
  };
  const box = el => { const r = el.getBoundingClientRect();
    return {l: r.left, t: r.top + scrollY, r: r.right, b: r.bottom + scrollY}; };
  const labels = [...document.querySelectorAll("svg text")].filter(visible)
    .map(el => ({text: el.textContent, svg: el.ownerSVGElement.id, ...box(el)}));
  const tl = document.getElementById("tl");
  const frame = tl.getBoundingClientRect();
  const out = [];
  for (const el of tl.querySelectorAll("rect, line, circle, path, text")) {
    if (el.closest("defs") || getComputedStyle(el).display === "none") continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.left < frame.left - 0.5 || r.right > frame.right + 0.5)
      out.push(`${el.tagName}.${el.getAttribute("class")} ${Math.round(r.left)}..${Math.round(r.right)}`);
  }
  const doc = document.documentElement;
  return {
    labels, outside: out,
    frame: [frame.left, frame.right], viewport: doc.clientWidth, scrollWidth: doc.scrollWidth,
    lanes: [...tl.querySelectorAll(".gutter text.lane")].map(t => t.dataset.full || t.textContent),
    nopic: [...tl.querySelectorAll("rect.nopic")].map(r => [r.dataset.scene, +r.dataset.seconds]),
    nopicLabels: [...tl.querySelectorAll("text.nopic-lbl")].filter(visible).map(t => t.textContent),
    view: window.showrunnerTimeline.view(),
    span: JSON.parse(document.getElementById("report-config").textContent).span,
  };
})()
"""


def overlaps(labels: Iterable[dict[str, Any]], slack: float = 0.5) -> list[str]:
    """Pairs of label boxes that intersect (more than `slack` px both ways)."""
    boxes = sorted(labels, key=lambda b: b["l"])
    found: list[str] = []
    for n, a in enumerate(boxes):
        for b in boxes[n + 1 :]:
            if b["l"] >= a["r"] - slack:
                break
            if min(a["b"], b["b"]) - max(a["t"], b["t"]) > slack and min(a["r"], b["r"]) - b["l"] > slack:
                found.append(f"{a['text']!r} ({a['svg']}) × {b['text']!r} ({b['svg']})")
    return found


async def probe(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.browser.evaluate(PROBE)
    return result


def shows(tmp_path: Path, name: str) -> tuple[Timeline, Show]:
    return generated(tmp_path) if name == "generated-500" else example(name)


# ---------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------


@needs_chromium
@pytest.mark.anyio
@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", [*EXAMPLES, "generated-500"])
async def test_the_report_page_reads_cleanly(tmp_path: Path, name: str) -> None:
    timeline, show = shows(tmp_path, name)
    html = render_html(timeline, now=NOW)
    async with chromium(tmp_path) as browser:
        page = Page(browser)
        await page.open(html)
        seen = await probe(page)
        if show.hours is not None:  # the week strip, the zone and the next opening
            status = await browser.evaluate("document.getElementById('hours').innerText")
            assert "Europe/Berlin" in status and "opens next Sun 11 Jan 11:00" in status
        if name in ("performance", "gallery", "generated-500"):
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            if name == "generated-500":  # the page is long: the picture is what to look at
                await browser.evaluate("document.getElementById('timeline').scrollIntoView()")
            shot = await browser.screenshot(full_page=name != "generated-500")
            (ARTIFACTS / f"report-{name}.png").write_bytes(shot)

        # Fits the page at the default zoom: the whole pass in view, nothing sticking out.
        assert seen["view"] == [0, seen["span"]]
        assert seen["scrollWidth"] <= seen["viewport"], "the page scrolls sideways"
        assert seen["frame"][1] <= seen["viewport"] + 0.5
        assert not seen["outside"], seen["outside"][:10]
        # No text over text.
        assert len(seen["labels"]) > 10
        assert not overlaps(seen["labels"]), overlaps(seen["labels"])[:10]
        # A lane for every value the show uses.
        lanes = set(seen["lanes"])
        assert expected_lanes(show) <= lanes, expected_lanes(show) - lanes
        assert weighted(show) == any(re.fullmatch(r"prompt \d+ weight", lane) for lane in lanes)

        # Zoomed in to a stretch, labels still never collide, and more of them show.
        end = seen["view"][1]
        a, b = end * 0.3, end * 0.3 + min(end, 60) / 2
        await browser.evaluate(f"window.showrunnerTimeline.setView({a}, {b})")
        zoomed = await probe(page)
        inside = [b for b in zoomed["labels"] if b["svg"] == "tl"]
        assert not overlaps(inside), overlaps(inside)[:10]
        if name == "performance":
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / "report-performance-zoomed.png").write_bytes(await browser.screenshot())
        if name == "generated-500":
            assert len([b for b in inside if b["t"] > 0]) > len(
                [b for b in seen["labels"] if b["svg"] == "tl"]
            ) // 2

        # No request left the page: only about:blank and nothing else.
        assert page.outside() == []


@needs_chromium
@pytest.mark.anyio
async def test_the_dark_scene_is_marked_on_the_performance_timeline(tmp_path: Path) -> None:
    timeline, _ = example("performance")
    async with chromium(tmp_path) as browser:
        page = Page(browser)
        await page.open(render_html(timeline))
        seen = await probe(page)
        assert seen["nopic"] == [["krea", 31.5]]
        assert any("krea" in t and "no picture" in t for t in seen["nopicLabels"])
        # Hovering the scene (a real mouse) tells what it is and that it will be dark ...
        x, y = await browser.evaluate(
            "(() => { const r = document.querySelector('rect.nopic'); r.scrollIntoView({block: 'center'});"
            " const b = r.getBoundingClientRect(); return [b.x + b.width / 2, b.y + b.height / 2]; })()"
        )
        await browser.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        await browser.wait_for("!document.getElementById('tip').hidden")
        tip = await browser.evaluate("document.getElementById('tip').innerText")
        assert "krea" in tip and "no picture for ~31.5 s" in tip
        # ... and a click opens its details, where the exact messages stay folded.
        await browser.click("rect.nopic")
        await browser.wait_for("document.getElementById('scene-5').open")
        assert not await browser.evaluate("document.querySelector('#scene-5 details.messages').open")
        assert page.outside() == []


# ---------------------------------------------------------------------------------------------
# Printing the cue sheet
# ---------------------------------------------------------------------------------------------


def _objects(pdf: bytes) -> dict[int, bytes]:
    """Object number -> dictionary text (stream data left out) of an uncompressed-xref PDF."""
    out: dict[int, bytes] = {}
    pattern = rb"(?m)^(\d+) 0 obj\s*(.*?)(?:\bstream\r?\n.*?\bendstream\s*)?endobj"
    for match in re.finditer(pattern, pdf, re.S):
        out[int(match.group(1))] = match.group(2)
    return out


def row_pages(pdf: bytes) -> tuple[int, list[set[int]]]:
    """(pages, per table row the pages its content is drawn on), from the PDF's structure tree
    (Chromium writes tagged PDF: /TR elements, their /TD kids and marked content with /Pg)."""
    objects = _objects(pdf)
    pages = [n for n, body in objects.items() if re.search(rb"/Type /Page\b(?!s)", body)]
    ignore = re.compile(rb"/(?:P|Pg|Obj|Parent|StructParent)\s+\d+ 0 R")

    def pages_of(n: int, seen: set[int]) -> set[int]:
        if n in seen or n not in objects:
            return set()
        seen.add(n)
        body = objects[n]
        found = {int(p) for p in re.findall(rb"/Pg (\d+) 0 R", body)}
        kids = re.findall(rb"(\d+) 0 R", ignore.sub(b"", body.split(b"/A [", 1)[0]))
        for kid in kids:
            found |= pages_of(int(kid), seen)
        return found

    def header(n: int) -> bool:  # a row of <th>: the table head, repeated on every page
        kids = re.findall(rb"(\d+) 0 R", ignore.sub(b"", objects[n]))
        return any(re.search(rb"/S /TH\b", objects.get(int(k), b"")) for k in kids)

    rows = sorted(n for n, body in objects.items() if re.search(rb"/S /TR\b", body) and not header(n))
    return len(pages), [pages_of(n, set()) for n in rows]


async def _print(browser: DevTools, html: str, *, css: str = "", tall: bool = False) -> bytes:
    page = Page(browser)
    await page.open(html)
    if tall:  # long notes in every row: rows get tall and some must meet a page boundary
        note = " ".join(["a long note for the operator"] * 16)
        await browser.evaluate(
            "document.querySelectorAll('table.cues tbody td:nth-child(4)')"
            f".forEach(td => {{ td.textContent = {json.dumps(note)}; }})"
        )
    if css:
        await browser.evaluate(
            "(() => { const s = document.createElement('style'); s.textContent = "
            f"{json.dumps(css)}; document.head.appendChild(s); }})()"
        )
    pdf = await browser.print_pdf(preferCSSPageSize=True, generateTaggedPDF=True)
    assert page.outside() == []
    return pdf


@needs_chromium
@pytest.mark.anyio
@pytest.mark.timeout(120)
async def test_the_cue_sheet_prints_on_a4_without_cut_rows(tmp_path: Path) -> None:
    timeline, show = example("performance")
    html = render_html(timeline)
    async with chromium(tmp_path) as browser:
        pdf = await _print(browser, html)
        # The print stylesheet: rows do not break, the header repeats, the picture stays home.
        await browser.call("Emulation.setEmulatedMedia", {"media": "print"})
        styles = await browser.evaluate(
            "[...document.querySelectorAll('table.cues tbody tr')].map(r => getComputedStyle(r).breakInside)"
            ".concat([getComputedStyle(document.querySelector('table.cues thead')).display,"
            " getComputedStyle(document.getElementById('timeline')).display])"
        )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "cue-sheet-performance.pdf").write_bytes(pdf)
    assert styles[:-2] and set(styles[:-2]) == {"avoid"}
    assert styles[-2:] == ["table-header-group", "none"]
    assert re.search(rb"/MediaBox \[0 0 59[45]\.\d+ 841\.\d+\]", pdf), "not A4"
    pages, rows = row_pages(pdf)
    # One row per scene and one loop marker, each on exactly one page.
    assert len(rows) == len(show.scenes) + 1
    assert all(len(r) == 1 for r in rows), rows
    assert pages == 1


@needs_chromium
@pytest.mark.anyio
@pytest.mark.timeout(120)
async def test_tall_rows_move_to_the_next_page_whole(tmp_path: Path) -> None:
    """The check above can see a cut row: without `break-inside: avoid` tall rows are cut."""
    timeline, _ = example("performance")
    html = render_html(timeline)
    async with chromium(tmp_path) as browser:
        kept = await _print(browser, html, tall=True)
    (tmp_path / "2").mkdir()
    async with chromium(tmp_path / "2") as browser:
        cut = await _print(browser, html, tall=True, css="table.cues tr { break-inside: auto !important; }")
    pages, rows = row_pages(kept)
    assert pages > 1 and all(len(r) == 1 for r in rows), rows
    _, cut_rows = row_pages(cut)
    assert any(len(r) > 1 for r in cut_rows), "a row should be cut when rows may break"
