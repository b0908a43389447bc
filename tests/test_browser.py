"""The pack as a user meets it in the editor: headless Chromium on the real frontend, served by a real ComfyUI server.

Opens every example workflow from the template route the template browser reads, runs the CPU demo as the Run
button does, and checks what TAPE draws: the schedule plot on TAPE Budget Schedule, the run's summary on TAPE
Patch Model (sent by the server), the image of TAPE Mask Preview. Screenshots go to $TAPE_SCREENSHOTS when set
(docs/ holds the ones the README shows).
"""

import json
import os
from pathlib import Path

import pytest
from browser import CHROMIUM, Browser
from workflow_server import ComfyServer

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian: apt-get install chromium)")
PACK = "ComfyUI-TAPE"
CI_LATENT = (128, 128, 21)  # 6 frames of 32x32 tokens... of 16x16 latent: small enough for a CPU run in the browser
CI_STEPS = 6


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    server = ComfyServer(tmp_path_factory.mktemp("comfy_ui")).start()
    browser = Browser(server.url, width=2000, height=1000)
    try:
        browser.wait_for("window.app?.graph && document.querySelector('canvas') !== null", timeout=120)
        # a returning user's editor: no first-run template dialog, no missing-model dialog for the official
        # workflows whose (big) models the test server does not have
        browser.eval(
            """(async () => {
                const s = app.extensionManager?.setting;
                if (s) {
                    await s.set('Comfy.TutorialCompleted', true);
                    await s.set('Comfy.Workflow.ShowMissingModelsWarning', false);
                }
                return true;
            })()"""
        )
        yield server, browser
    finally:
        browser.close()
        server.stop()


def _close_dialogs(browser):
    browser.eval(
        "document.querySelectorAll('.p-dialog-close-button, .p-dialog-header-close').forEach((b) => b.click()); true"
    )
    browser.wait_for("document.querySelectorAll('.p-dialog-mask').length === 0", timeout=10)


def _shot(browser, name):
    folder = os.environ.get("TAPE_SCREENSHOTS")
    if folder:
        _close_dialogs(browser)
        Path(folder).mkdir(parents=True, exist_ok=True)
        browser.screenshot(Path(folder) / name)


def _open_template(browser, name):
    """What the template browser does: fetch the pack's workflow from its template route and load it."""
    return browser.eval(
        f"""(async () => {{
            const r = await fetch('/api/workflow_templates/{PACK}/{name}.json');
            if (!r.ok) return 'HTTP ' + r.status;
            await app.loadGraphData(await r.json());
            return app.graph._nodes.map((n) => n.type);
        }})()"""
    )


def test_every_example_workflow_opens_from_the_template_browser(page):
    server, browser = page
    listed = browser.eval("fetch('/api/workflow_templates').then((r) => r.json())")
    shipped = sorted(p.stem for p in (Path(__file__).parents[1] / "example_workflows").glob("*.json"))
    assert sorted(listed.get(PACK, [])) == shipped
    for name in shipped:
        types = _open_template(browser, name)
        assert isinstance(types, list) and "TAPEPatchModel" in types, (name, types)
        missing = browser.eval("app.graph._nodes.filter((n) => n.has_errors || n.type === undefined).length")
        assert missing == 0, name


def test_demo_runs_from_the_run_button_and_shows_what_tape_did(page):
    server, browser = page
    types = _open_template(browser, "tape_testbed_demo")
    assert {"TAPEBudgetSchedule", "TAPEMaskPreview", "PreviewImage"} <= set(types)
    # CPU-sized run: shrink the latent and the steps the way a user would edit the widgets
    browser.eval(
        f"""(() => {{
            const w = (type, name, v) => app.graph._nodes.filter((n) => n.type === type)
                .forEach((n) => {{ n.widgets.find((x) => x.name === name).value = v; }});
            w('EmptyHunyuanLatentVideo', 'width', {CI_LATENT[0]});
            w('EmptyHunyuanLatentVideo', 'height', {CI_LATENT[1]});
            w('EmptyHunyuanLatentVideo', 'length', {CI_LATENT[2]});
            w('KSampler', 'steps', {CI_STEPS});
            app.graph.setDirtyCanvas(true, true);
            return true;
        }})()"""
    )
    # the schedule plot: ratios from the server's schedule for the connected keep ratio and the sampler's steps
    # (the plot redraws when its inputs change: wait for the one made after the steps edit, not an earlier one)
    plot = browser.wait_for(
        "(() => { const n = app.graph._nodes.find((n) => n.type === 'TAPEBudgetSchedule');"
        f" app.graph.setDirtyCanvas(true, true); return n.tapePlot?.ratios?.length === {CI_STEPS} && n.tapePlot; }})()",
        timeout=30,
    )
    assert len(plot["ratios"]) == CI_STEPS and plot["ratios"][0] == 1.0 and min(plot["ratios"]) < 0.5
    # the Run button (queue the prompt the way the button does when the DOM button is not found)
    clicked = browser.eval(
        """(() => { const b = [...document.querySelectorAll('button')].find((b) =>
              /^(Run|Queue)/.test((b.innerText || b.getAttribute('aria-label') || '').trim()));
            if (b) { b.click(); return 'button'; } app.queuePrompt(0); return 'api'; })()"""
    )
    summary = browser.wait_for(
        "app.graph._nodes.find((n) => n.type === 'TAPEPatchModel')?.tapeSummary", timeout=240, poll=1.0
    )
    assert f"pruned {CI_STEPS - 1}/{CI_STEPS} steps" in summary, summary
    images = browser.wait_for(
        "(() => { const n = app.graph._nodes.find((n) => n.type === 'PreviewImage');"
        " return n?.imgs?.length && n.imgs[0].complete && n.imgs[0].naturalWidth; })()",
        timeout=120,
    )
    assert images > 0
    browser.eval("app.graph.setDirtyCanvas(true, true); app.canvas.draw(true, true); true")
    _shot(browser, "editor_demo_after_run.png")
    history = server.get("/history")
    assert any(json.dumps(h).count("TAPEMaskPreview") for h in history.values()), clicked
