"""The pages of `hierarchy serve` in a real headless Chromium (Debian's, driven by Selenium) against the real
server: upload a photo and see its regions, crop and ask again, filter and sort the review grid, correct a row
with the keyboard and see it survive a reload and a server restart, export the corrections."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from conftest import BUS, labelled_folder
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from benchmarks.serve_process import ServerProcess

pytestmark = pytest.mark.slow  # a trained model, a server process and a headless browser


@pytest.fixture(scope="module")
def site(tmp_path_factory, folder_runs):
    """A tiny fine model, photos labelled by it, and a server that also detects people in uploads."""
    base = tmp_path_factory.mktemp("browser")
    photos, labels = labelled_folder(base, folder_runs["fine"], 12, "labels.parquet")
    args = ["--model", str(folder_runs["fine"]), "--labels", str(labels), "--crop", "person"]
    shared = {"args": args, "server": ServerProcess(*args)}
    yield shared
    shared["server"].stop()


def url(site, path: str) -> str:
    return f"http://127.0.0.1:{site['server'].port}{path}"


def wait_for(driver, condition, seconds: float = 60):
    """Wait until ``condition`` holds; the grid re-renders under it, so a stale element only means "not yet"."""
    return WebDriverWait(driver, seconds, ignored_exceptions=[StaleElementReferenceException]).until(condition)


def test_upload_a_photo_see_regions_crop_and_ask_again(browser, site):
    browser.get(url(site, "/"))
    browser.find_element(By.ID, "file-input").send_keys(str(BUS))
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#regions .region[data-kind='person']"))
    people = browser.find_elements(By.CSS_SELECTOR, "#regions .region[data-kind='person']")
    assert len(people) >= 3  # the bus photo has four people; stage one finds them
    labels = people[0].find_elements(By.CSS_SELECTOR, ".head[data-head='fine'] .label")
    assert labels and labels[0].text  # every region shows its heads' labels
    assert browser.find_elements(By.CSS_SELECTOR, "#overlay > *")  # the boxes are drawn over the photo
    browser.find_element(By.ID, "crop-button").click()
    wait_for(browser, ec.visibility_of_element_located((By.ID, "ask-again"))).click()
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#regions .region[data-kind='manual']"))
    assert not browser.find_element(By.ID, "error").is_displayed()


def test_a_file_that_is_not_an_image_shows_the_reason(browser, site, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    browser.get(url(site, "/"))
    browser.find_element(By.ID, "file-input").send_keys(str(bad))
    error = wait_for(browser, ec.visibility_of_element_located((By.ID, "error")))
    assert "not an image" in error.text


def cards(browser) -> list:
    return browser.find_elements(By.CSS_SELECTOR, "#grid .card")


def fine_label(card) -> str:
    return card.find_element(By.CSS_SELECTOR, ".head[data-head='fine'] .label").text


def test_review_filter_and_sort(browser, site):
    browser.get(url(site, "/review"))
    wait_for(browser, lambda d: len(cards(d)) == 24)
    assert browser.find_element(By.ID, "total").get_attribute("data-total") == "24"
    probs = [float(c.find_element(By.CSS_SELECTOR, ".head[data-head='fine'] .prob").text) for c in cards(browser)]
    assert probs == sorted(probs)  # lowest probability first
    Select(browser.find_element(By.ID, "sort")).select_by_value("prob_desc")
    wait_for(browser, lambda d: float(cards(d)[0].find_element(By.CSS_SELECTOR, ".head[data-head='fine'] .prob").text)
             == max(probs))  # fmt: skip
    label = fine_label(cards(browser)[0])
    Select(browser.find_element(By.ID, "filter-label")).select_by_value(label)
    wait_for(browser, lambda d: all(fine_label(c) == label for c in cards(d)))
    expected = str(sum(1 for p in cards(browser)))
    assert browser.find_element(By.ID, "total").get_attribute("data-total") == expected


def test_keyboard_correction_survives_reload_and_restart_and_exports(browser, site):
    browser.get(url(site, "/review?sort=path"))
    wait_for(browser, lambda d: len(cards(d)) == 24)
    first = cards(browser)[0]
    row_id, before = first.get_attribute("data-id"), fine_label(first)
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("e")  # the type-ahead over the fine names
    other = next(n for n in ("Trouser", "Bag", "T-shirt/top") if n != before)
    typeahead = wait_for(browser, ec.visibility_of_element_located((By.ID, "typeahead-input")))
    typeahead.send_keys(other[:4], Keys.ENTER)
    card = f"#grid .card[data-id='{row_id}']"
    wait_for(browser, lambda d: fine_label(d.find_element(By.CSS_SELECTOR, card)) == other)
    body.send_keys(Keys.ARROW_RIGHT, "a")  # accept the next row as it is
    second = cards(browser)[1].get_attribute("data-id")
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, f"#grid .card[data-id='{second}'] .head[data-head="
                                               "'fine']").get_attribute("data-status") == "accepted")  # fmt: skip
    browser.refresh()
    wait_for(browser, lambda d: len(cards(d)) == 24)
    assert fine_label(browser.find_element(By.CSS_SELECTOR, card)) == other
    site["server"].stop()
    site["server"] = ServerProcess(*site["args"])
    browser.get(url(site, "/review?sort=path"))
    wait_for(browser, lambda d: len(cards(d)) == 24)
    assert fine_label(browser.find_element(By.CSS_SELECTOR, card)) == other
    href = browser.find_element(By.ID, "export-link").get_attribute("href")
    status, data = site["server"].get(href.split(str(site["server"].port), 1)[1])
    manifest = pd.read_csv(io.BytesIO(data))
    assert status == 200 and len(manifest) == 2 and other in set(manifest["label"])
