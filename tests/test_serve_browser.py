"""The drawing page in a real headless chromium (Debian's), driven by Playwright.

Strokes are drawn with the mouse and with touch events on a phone-sized
viewport; the page must read them live, clear, compare two models, save a
digit, train a small run, and never log a console error or ask another host
for anything. The desktop test saves docs/serve.png, the README's screenshot.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytest.importorskip("fastapi")
playwright_api = pytest.importorskip("playwright.sync_api")

from serve_helpers import running_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")

# Strokes in fractions of the canvas.
SEVEN = [[(0.22, 0.22), (0.78, 0.22), (0.42, 0.85)]]
ONE = [[(0.5, 0.15), (0.5, 0.85)]]
ZERO = [[(0.5 + 0.22 * math.cos(2 * math.pi * k / 24), 0.5 + 0.32 * math.sin(2 * math.pi * k / 24))
         for k in range(25)]]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from nnscratch import io as nnio

    from nnscratch.datasets import load_mnist
    from nnscratch.runs import RunSettings, fit

    # A second model worth comparing with: an MLP trained for a second on 10,000 digits (about 91%).
    (x, t), _ = load_mnist(normalize=True, flatten=True, limit=10_000)
    mlp = fit(RunSettings(model="mlp", hidden=[100], epochs=2).resolved(), (x, t, None, None),
              eval_samples=1000).model
    runs = tmp_path_factory.mktemp("runs")
    (runs / "mlp-small").mkdir()
    nnio.save_model(mlp, runs / "mlp-small" / "model.npz")
    digits = tmp_path_factory.mktemp("digits")
    with running_server(runs_dir=runs, digits_dir=digits) as (base, app):
        yield base, digits


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield browser
        browser.close()


class Watch:
    """Console errors, page errors and requests to any host but the test server."""

    def __init__(self, page, base):
        self.problems = []
        host = urlsplit(base).netloc
        page.on("console", lambda m: m.type in ("error", "warning") and self.problems.append(f"console {m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))

        def guard(route):
            url = route.request.url
            if url.startswith("data:") or urlsplit(url).netloc == host:
                route.continue_()
            else:
                self.problems.append(f"request to another host: {url}")
                route.abort()

        page.route("**/*", guard)

    def check(self):
        assert self.problems == []


def open_page(browser, base, **context):
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    watch = Watch(page, base)
    page.goto(base + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    return ctx, page, watch


def canvas_box(page):
    return page.locator("[data-testid=canvas]").bounding_box()


def draw_with_mouse(page, strokes, *, release=True):
    box = canvas_box(page)
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=8)
        if release:
            page.mouse.up()


def save_screenshot(page) -> None:
    """docs/serve.png, the README's picture: the page as it is now, rewritten when it looks different.

    Chromium's renderings of the same page differ in a few anti-aliased pixels
    from run to run, and the saliency maps in many more: their faint
    background is float32 rounding of tiny gradients, shown at sqrt scale, and
    it changes between runs while the page does not. Rewriting the file for
    those would leave the checkout modified after every test run. So outside
    the saliency maps at most 50 pixels may differ visibly, and inside them
    only the average difference counts.
    """
    import io

    import numpy as np
    from PIL import Image

    path = ROOT / "docs" / "serve.png"
    png = page.screenshot()
    if path.exists():
        old = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
        new = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
        if old.shape == new.shape:
            difference = np.abs(old - new).max(axis=2)
            maps = np.zeros(difference.shape, bool)
            for testid in ("saliency", "saliency-ink"):
                box = page.locator(f"[data-testid={testid}]").bounding_box()
                x, y = int(box["x"]), int(box["y"])
                inside = (slice(max(0, y - 1), y + int(box["height"]) + 2),
                          slice(max(0, x - 1), x + int(box["width"]) + 2))
                maps[inside] = True
                if difference[inside].mean() > 4:
                    break
            else:
                if np.count_nonzero(difference[~maps] > 16) <= 50:
                    return
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(png)


def prediction(page):
    return page.locator("[data-testid=prediction]")


def settled(page):
    """Wait until the reading of the drawing as it is now is shown (a live reading of part of a
    stroke can still be on the page right after the mouse is released)."""
    playwright_api.expect(page.locator("#reading-1")).to_have_attribute("aria-busy", "false", timeout=15_000)


def test_draw_read_live_clear_and_screenshot(server, browser):
    base, _ = server
    ctx, page, watch = open_page(browser, base, viewport={"width": 1280, "height": 1180})
    assert prediction(page).inner_text() == "?"
    assert "draw a digit" in page.locator("#verdict").inner_text()
    # Nothing drawn: empty frames and a hint, not black squares that look like a reading.
    playwright_api.expect(page.locator("#stages")).to_have_class(re.compile(r"\bempty\b"))
    playwright_api.expect(page.locator("#inside-hint")).to_be_visible()
    assert page.locator("[data-testid=saliency]").is_hidden()

    # Live: the reading appears while the button is still held.
    draw_with_mouse(page, SEVEN, release=False)
    playwright_api.expect(prediction(page)).to_have_text("7", timeout=15_000)
    page.mouse.up()
    settled(page)
    playwright_api.expect(prediction(page)).to_have_text("7")
    best = page.locator("#bars .bar.best")             # one bar marked, the 7's, with its percentage
    assert best.count() == 1 and best.locator(".k").inner_text() == "7"
    assert re.fullmatch(r"\d+\.\d%", best.locator(".pct").inner_text())
    assert page.locator("#verdict").inner_text().startswith("reads 7 · ")
    assert page.locator("#bars .bar").count() == 10
    # The preparation and the inside of the network are shown.
    for stage in ("stage-crop", "stage-fitted", "stage-field"):
        assert page.locator(f"[data-testid={stage}]").get_attribute("src").startswith("data:image/png")
    assert "empty" not in page.locator("#stages").get_attribute("class")
    assert page.locator("#inside-hint").is_hidden() and page.locator("[data-testid=saliency]").is_visible()
    playwright_api.expect(page.locator("#activations figure")).to_have_count(8)
    assert "16 filters 3×3" in page.locator("#filters").inner_text()

    # Compare with a second model, reading the same drawing.
    page.select_option("#compare", "run-mlp-small")
    playwright_api.expect(page.locator("[data-testid=prediction-2]")).to_have_text(
        re.compile(r"^\d$"), timeout=15_000)
    settled(page)
    # Every picture decoded and sized (the layers' widths are set when they load), however busy the machine.
    page.wait_for_function("""() => [...document.images].every(i => !i.getAttribute('src') ||
                                                                  (i.complete && i.naturalWidth > 0 &&
                                                                   (!i.closest('.layer') || i.style.width)))""",
                           timeout=15_000)
    save_screenshot(page)

    page.locator("[data-testid=clear]").click()
    playwright_api.expect(prediction(page)).to_have_text("?")
    assert page.locator("#verdict").inner_text() == "draw a digit"
    assert page.locator("#bars .bar.best").count() == 0
    assert "empty" in page.locator("#stages").get_attribute("class") and page.locator("#inside-hint").is_visible()
    # An empty canvas asks no question of the server and shows no guess.
    page.wait_for_timeout(500)
    assert prediction(page).inner_text() == "?"

    # Throttled: a long stroke asks for readings while it is drawn, at most one per 120 ms.
    asked = []
    page.on("request", lambda r: "/api/predict?details" in r.url and asked.append(r.url))
    box = canvas_box(page)
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.1 * box["height"])
    page.mouse.down()
    started = time.monotonic()
    moves = 80
    for k in range(moves):
        page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + (0.1 + 0.01 * k) * box["height"])
    elapsed = time.monotonic() - started
    page.mouse.up()
    playwright_api.expect(prediction(page)).to_have_text("1", timeout=15_000)
    assert 1 <= len(asked) <= elapsed / 0.12 + 2 and len(asked) < moves / 2, (len(asked), elapsed)
    page.locator("[data-testid=clear]").click()
    draw_with_mouse(page, ZERO)
    playwright_api.expect(prediction(page)).to_have_text("0", timeout=15_000)

    # A scribbled blot is no digit: the reading says it is uncertain.
    page.locator("[data-testid=clear]").click()
    draw_with_mouse(page, [[(0.3 + 0.4 * (k % 2), 0.3 + 0.02 * k) for k in range(21)]])
    settled(page)
    playwright_api.expect(page.locator("#verdict")).to_contain_text("uncertain")
    assert "uncertain" in prediction(page).get_attribute("class")
    watch.check()
    ctx.close()


def _touch(cdp, kind, points):
    cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y} for x, y in points]})


def test_touch_on_a_phone(server, browser):
    base, _ = server
    ctx, page, watch = open_page(browser, base, viewport={"width": 390, "height": 844}, device_scale_factor=3,
                                 is_mobile=True, has_touch=True)
    box = canvas_box(page)
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390        # the pad fits the screen
    assert box["width"] >= 250
    assert page.evaluate("document.documentElement.scrollWidth") <= 390   # nothing sticks out sideways
    cdp = ctx.new_cdp_session(page)
    kinds = page.evaluate("""() => { window.__kinds = [];
        document.querySelector('[data-testid=canvas]').addEventListener('pointerdown',
            e => window.__kinds.push(e.pointerType)); return true; }""")
    assert kinds
    (x0, y0), *rest = ONE[0]
    at = lambda x, y: (box["x"] + x * box["width"], box["y"] + y * box["height"])  # noqa: E731
    _touch(cdp, "touchStart", [at(x0, y0)])
    for i in range(1, 13):
        _touch(cdp, "touchMove", [at(x0, y0 + (rest[0][1] - y0) * i / 12)])
    _touch(cdp, "touchEnd", [])
    playwright_api.expect(prediction(page)).to_have_text("1", timeout=15_000)
    assert page.evaluate("window.__kinds") == ["touch"]
    assert page.evaluate("window.scrollY") == 0                     # drawing did not scroll the page
    page.locator("[data-testid=clear]").tap()
    playwright_api.expect(prediction(page)).to_have_text("?")
    watch.check()
    ctx.close()


def test_it_was_a_button_saves_the_drawing(server, browser):
    from nnscratch.datasets.idx import read_idx

    base, digits = server
    ctx, page, watch = open_page(browser, base, viewport={"width": 1000, "height": 800})
    draw_with_mouse(page, SEVEN)
    playwright_api.expect(prediction(page)).to_have_text("7", timeout=15_000)
    page.locator("[data-testid=truth-7]").click()
    playwright_api.expect(page.locator("#saved")).to_contain_text("saved as a 7", timeout=15_000)
    assert read_idx(digits / "t10k-labels-idx1-ubyte").tolist()[-1] == 7
    assert prediction(page).inner_text() == "?"                     # cleared for the next one
    # A double click (or a double tap) saves the drawing once, not twice.
    before = len(read_idx(digits / "t10k-labels-idx1-ubyte"))
    draw_with_mouse(page, ONE)
    playwright_api.expect(prediction(page)).to_have_text("1", timeout=15_000)
    page.locator("[data-testid=truth-1]").dblclick()
    playwright_api.expect(page.locator("#saved")).to_contain_text("saved as a 1", timeout=15_000)
    page.wait_for_load_state("networkidle")                           # a second save would have landed
    assert len(read_idx(digits / "t10k-labels-idx1-ubyte")) == before + 1
    watch.check()
    ctx.close()


def test_train_view_runs_and_adds_the_model_to_the_picker(server, browser):
    base, _ = server
    ctx, page, watch = open_page(browser, base, viewport={"width": 1100, "height": 900})
    page.locator("#tab-train").click()
    page.fill("input[name=hidden]", "16")
    page.fill("input[name=epochs]", "1")
    page.fill("input[name=limit]", "1000")
    page.locator("#train-start").click()
    playwright_api.expect(page.locator("#train-state")).to_contain_text("finished", timeout=90_000)
    assert page.locator("#epochs tbody tr").count() == 1
    assert page.locator("#train-filters").get_attribute("src").startswith("data:image/png")
    options = page.locator("#model option").all_inner_texts()
    assert any(text.startswith("page-mlp-") for text in options)
    watch.check()
    ctx.close()


def test_train_view_stop_ends_a_long_run_and_says_what_is_kept(server, browser):
    """Stop ends the run at the end of a batch; like Ctrl-C on nnscratch train it keeps the checkpoint
    and writes no model.npz, and the page says so instead of implying the model is in the picker."""
    base, _ = server
    ctx, page, watch = open_page(browser, base, viewport={"width": 1100, "height": 900})
    page.locator("#tab-train").click()
    page.select_option("select[name=model]", "simple-cnn")
    page.fill("input[name=epochs]", "20")
    page.fill("input[name=limit]", "60000")                  # many minutes: only Stop ends it in time
    page.locator("#train-start").click()
    playwright_api.expect(page.locator("#train-state")).to_contain_text("running · epoch 1 · batch", timeout=60_000)
    page.locator("#train-stop").click()
    playwright_api.expect(page.locator("#train-state")).to_contain_text("stopped: page-simple-cnn-", timeout=60_000)
    playwright_api.expect(page.locator("#train-start")).to_be_enabled()
    assert page.locator("#train-stop").is_disabled()
    text = page.locator("#train-state").inner_text()
    assert "checkpoint is kept" in text and "only a finished run joins the model picker" in text
    run = text.split("stopped: ")[1].split(" ")[0]
    assert not any(option.startswith(run) for option in page.locator("#model option").all_inner_texts())
    watch.check()
    ctx.close()


def test_a_pen_draws_too(server, browser):
    base, _ = server
    ctx, page, watch = open_page(browser, base, viewport={"width": 800, "height": 900})
    page.evaluate("""() => { window.__kinds = [];
        document.querySelector('[data-testid=canvas]').addEventListener('pointerdown',
            e => window.__kinds.push(e.pointerType)); }""")
    cdp = ctx.new_cdp_session(page)
    box = canvas_box(page)
    x = box["x"] + 0.5 * box["width"]

    def pen(kind, y, **extra):
        cdp.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": box["y"] + y * box["height"],
                                              "pointerType": "pen", "button": "left", "force": 0.8, **extra})

    pen("mousePressed", 0.15, clickCount=1)
    for k in range(1, 15):
        pen("mouseMoved", 0.15 + 0.05 * k, buttons=1)
    pen("mouseReleased", 0.85, clickCount=1)
    playwright_api.expect(prediction(page)).to_have_text("1", timeout=15_000)
    assert page.evaluate("window.__kinds") == ["pen"]
    watch.check()
    ctx.close()


def test_train_view_reports_bad_settings_and_a_failed_run(browser, tmp_path):
    """Bad settings are refused with the server's message; a run that fails (here its runs folder
    cannot be made: a file is in the way) ends the stream with the reason, and Start works again."""
    blocked = tmp_path / "runs"
    blocked.write_text("a file where the runs folder should be")
    with running_server(runs_dir=blocked, digits_dir=tmp_path / "digits") as (base, app):
        ctx, page, watch = open_page(browser, base, viewport={"width": 1100, "height": 900})
        page.locator("#tab-train").click()
        page.fill("input[name=hidden]", "0")
        page.locator("#train-start").click()
        playwright_api.expect(page.locator("#train-state")).to_contain_text("not started: hidden must be",
                                                                            timeout=15_000)
        page.fill("input[name=hidden]", "16")
        page.fill("input[name=limit]", "500")
        page.fill("input[name=epochs]", "1")
        page.locator("#train-start").click()
        playwright_api.expect(page.locator("#train-state")).to_contain_text("failed: ", timeout=60_000)
        assert page.locator("#train-state").inner_text() == (
            f"failed: cannot use the runs folder {blocked}: is a file, not a folder")
        playwright_api.expect(page.locator("#train-start")).to_be_enabled()
        assert page.locator("#train-stop").is_disabled()
    # The server gone: Start says so instead of failing silently in the console.
    page.locator("#train-start").click()
    playwright_api.expect(page.locator("#train-state")).to_contain_text("not started: cannot reach the server",
                                                                        timeout=15_000)
    # Chromium logs each 4xx answer and refused connection as a console error by itself.
    watch.problems = [p for p in watch.problems
                      if "status of 422" not in p and "ERR_CONNECTION_REFUSED" not in p]
    watch.check()
    ctx.close()


def test_a_second_model_that_cannot_read_does_not_hide_the_first_ones_reading(browser, tmp_path):
    runs = tmp_path / "runs"
    (runs / "broken").mkdir(parents=True)
    (runs / "broken" / "model.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with running_server(runs_dir=runs, digits_dir=tmp_path / "digits") as (base, app):
        ctx, page, watch = open_page(browser, base, viewport={"width": 1280, "height": 900})
        page.select_option("#compare", "run-broken")
        draw_with_mouse(page, SEVEN)
        playwright_api.expect(prediction(page)).to_have_text("7", timeout=15_000)
        playwright_api.expect(page.locator("#verdict-2")).to_contain_text("could not read the drawing: ",
                                                                          timeout=15_000)
        assert "model.npz" in page.locator("#verdict-2").inner_text()
        assert page.locator("[data-testid=prediction-2]").inner_text() == "·"
        assert page.locator("#status").inner_text() == ""
        watch.problems = [p for p in watch.problems if "status of 422" not in p]   # chromium logs each 4xx
        watch.check()
        ctx.close()
        # On a phone the message (a long path) wraps inside its card instead of sticking out.
        ctx, page, watch = open_page(browser, base, viewport={"width": 390, "height": 844}, is_mobile=True,
                                     has_touch=True, device_scale_factor=2)
        page.select_option("#compare", "run-broken")
        draw_with_mouse(page, SEVEN)
        playwright_api.expect(page.locator("#verdict-2")).to_contain_text("model.npz", timeout=15_000)
        card = page.locator("#reading-2").bounding_box()
        text = page.locator("#verdict-2").bounding_box()
        assert text["x"] + text["width"] <= card["x"] + card["width"]
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        ctx.close()
