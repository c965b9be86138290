"""Every page in headless Chromium over a materialised day: no Streamlit exception box, a screenshot each."""

from __future__ import annotations

import pytest

from tests.dashboard.browser.harness import ROOT, exceptions, open_and_settle, screenshot
from tests.dashboard.support import PAGES

SCREENSHOTS = ROOT / "var" / "screenshots"


@pytest.mark.slow
def test_every_page_opens_in_a_real_browser(served_day, driver):
    base, day = served_day
    from selenium.webdriver.common.by import By

    seen = {}
    for page in PAGES:
        url = f"{base}/{'' if page == 'overview' else page}?date={day}"
        open_and_settle(driver, url)
        assert not exceptions(driver), (page, exceptions(driver))
        seen[page] = driver.find_element(By.CSS_SELECTOR, "h1").text
        path = screenshot(driver, SCREENSHOTS, page)
        assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    assert seen["overview"].startswith("Overview") and seen["approvals"].startswith("Approvals")
    assert seen["dr"].startswith("DR readiness") and seen["settings"].startswith("Settings")
    # a link reproduces a view: the site filter in the URL opens that site's page
    open_and_settle(driver, f"{base}/sites?date={day}&site=lon1")
    assert not exceptions(driver)
    assert "lon1" in [h.text for h in driver.find_elements(By.CSS_SELECTOR, "h2")]
