"""The rating page in a real headless browser: answer every clip, save the sheet, read it back with collect."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_user_study import GRID, fake_predictions

from perfex.core.schema import TRAITS
from perfex.tools.study.build import SelectConfig, create_study
from perfex.tools.study.collect import CollectConfig, collect
from perfex.data.synth import generate_perfex, write_table

pytestmark = pytest.mark.e2e

BROWSER_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no Chromium installed (apt-get install chromium)")


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=BROWSER_FLAGS)
        yield chromium
        chromium.close()


def rate_in_page(browser, page_file: Path, rater: str, answer_of, save_to: Path) -> list[str]:
    """Open the page from disk, pick ``rater``, answer every clip with ``answer_of(clip, trait)``, save; returns the order."""
    page = browser.new_page(accept_downloads=True)
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("request", lambda request: errors.append(request.url) if not request.url.startswith(("file:", "blob:", "data:")) else None)
    page.goto(page_file.as_uri())
    page.select_option("#rater", rater)
    page.click("#start")
    order = []
    while True:
        clip = page.text_content("#clip-title").split()[1]
        order.append(clip)
        assert page.locator("#media svg polyline").count() == 6
        for trait in TRAITS:
            page.check(f"input[name={trait}][value='{answer_of(clip, trait)}']")
        if page.is_disabled("#next"):
            break
        page.click("#next")
    assert page.text_content("#progress-text").endswith(f"{len(order)} of {len(order)} fully answered")
    with page.expect_download() as info:
        page.click("#save")
    assert info.value.suggested_filename == f"sheet_{rater}.csv"
    info.value.save_as(save_to)
    assert not errors, "script errors or network requests"
    page.close()
    return order


def test_rating_page_saves_sheets_that_collect_reads(browser, tmp_path):
    frame = generate_perfex(8, seed=9, min_frames=60, max_frames=80)
    write_table(frame, tmp_path / "input.csv")
    fake_predictions(frame, tmp_path / "pred.csv")
    study = tmp_path / "study"
    manifest = create_study(SelectConfig(predictions=str(tmp_path / "pred.csv"), data=[str(tmp_path / "input.csv")],
                                         out=str(study), raters="ann,ben", n=4, page=True))
    rng = np.random.default_rng(0)
    chosen = {(rater, clip, trait): f"{rng.choice(GRID):g}" for rater in manifest["raters"]
              for clip in manifest["clip_ids"] for trait in TRAITS}
    for rater in manifest["raters"]:
        blank = (study / f"sheet_{rater}.csv").read_text().splitlines()
        order = rate_in_page(browser, study / "rate.html", rater, lambda c, t, r=rater: chosen[(r, c, t)], study / f"sheet_{rater}.csv")
        assert order == [line.split(",")[2] for line in blank[1:]]
        saved = (study / f"sheet_{rater}.csv").read_text().splitlines()
        assert saved[0] == blank[0] and [s.split(",")[:3] for s in saved[1:]] == [b.split(",")[:3] for b in blank[1:]]
    collect(CollectConfig(study=str(study), out=str(tmp_path / "out"), bootstrap=5))
    aggregate = pd.read_csv(tmp_path / "out" / "aggregate.csv", dtype={"ID": str}).set_index("ID")
    for clip in manifest["clip_ids"]:
        for trait in TRAITS:
            mean = np.mean([float(chosen[(r, clip, trait)]) for r in manifest["raters"]])
            assert aggregate.loc[clip, f"{trait}_mean"] == pytest.approx(mean)
