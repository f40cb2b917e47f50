"""The web page end to end in headless Chromium: the form is generated from the schema, filled, submitted, and
the page shows the stay's warnings above a probability, the band, highlighted words and the explanation; a text
too short to read is refused with the reason. Skipped without Chromium."""

from __future__ import annotations

import shutil

import pytest

from alfia.serving.app import create_app
from alfia.serving.service import RiskService
from tests.serving.conftest import serve_in_thread


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def base_url(tiny_run):
    url, server = serve_in_thread(create_app(RiskService.load(tiny_run["run"])))
    yield url
    server.should_exit = True


def test_form_submit_shows_warnings_risk_band_highlights_and_explanation(base_url, tiny_run):
    browser_path = _chromium()
    if browser_path is None:
        pytest.skip("chromium is not installed (apt-get install chromium); CI installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency")
    outside = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: None if r.url.startswith(base_url) else outside.append(r.url))
        page.goto(base_url + "/")
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator("#fields .field").count() > 30  # one input per feature of the physionet2012 schema
        assert page.locator("#f-gcs_min").get_attribute("min") == "3"
        page.fill("#f-age", "78")
        page.select_option("#f-gender", "male")
        page.select_option("#f-icu_type", "Medical ICU")
        page.fill("#f-gcs_min", "6")
        page.fill("#f-gcs_max", "11")
        page.fill("#f-lactate_max", "6.4")
        page.fill("#f-hr_max", "290")  # inside the schema's 20-300, above every training stay
        page.click("#submit")
        page.wait_for_selector("#answer:not([hidden])")
        # the warnings come first: above the probability, each with its kind
        assert page.is_visible("#warnings")
        shown = {li.get_attribute("data-kind"): li.inner_text() for li in page.locator("#warnings li").all()}
        assert {"outside_training_range", "missing_variables"} <= set(shown)
        assert "hr_max 290" in shown["outside_training_range"] and "not recorded" in shown["missing_variables"]
        assert page.locator("#warnings").bounding_box()["y"] < page.locator("#probability").bounding_box()["y"]
        probability = page.inner_text("#probability")
        assert probability.endswith("%") and 0 <= float(probability.rstrip(" %")) <= 100
        assert page.inner_text("#band") in ("low", "elevated", "high")
        spans = page.locator("#text span")
        assert spans.count() > 10
        shades = [spans.nth(i).evaluate("e => getComputedStyle(e).backgroundColor") for i in range(spans.count())]
        assert any(s != "rgba(255, 170, 0, 0)" for s in shades)  # attended words are shaded
        assert page.locator("#text span.attended").count() >= 1
        assert "lactate" in page.inner_text("#text").lower()
        assert page.locator("#explanation tr").count() >= 2  # header + at least one finding
        # a value outside its range is stopped by the form itself ...
        page.fill("#f-gcs_min", "2")
        page.click("#submit")
        assert page.eval_on_selector("#f-gcs_min", "e => e.validity.rangeUnderflow")
        # the pasted-text tab
        page.click("#tab-text")
        page.click("#submit")  # ... and the service's refusal of an empty text is shown with its reason
        page.wait_for_function("document.getElementById('error').textContent.length > 0")
        assert "text" in page.inner_text("#error")
        page.fill("#free-text", "the patient is a 67 year old male admitted to icu with sepsis")
        page.click("#submit")  # twelve words: refused, with the reason
        page.wait_for_function("document.getElementById('error').textContent.includes('words')")
        assert "texts under" in page.inner_text("#error")
        page.fill("#free-text", tiny_run["cohort"].df["text"].iloc[0] + " with sepsis")
        page.click("#submit")
        page.wait_for_function("document.getElementById('text').textContent.includes('sepsis')")
        assert page.inner_text("#error") == ""
        assert "Explanations need a structured record" in page.inner_text("#explanation")
        browser.close()
    assert not errors
    assert not outside  # no external asset: the page works offline
