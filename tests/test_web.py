"""The web app in a real headless Chromium (Debian's chromium, driven by Playwright).

Send a message and watch the reply stream in, see the crisis banner on a crisis message, see the feelings
chart, see evidence highlighted on the analysis page, and check keyboard use, labels and a phone-sized screen.
Screenshots go to test-artifacts/web/ (kept by CI as artefacts).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from mentalens.server import ServerConfig
from mentalens.server.live import LiveServer
from mentalens.server.state import build_engine

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "web"
CRISIS = "I don't want to be alive anymore. I'm going to end my life tonight."


@pytest.fixture(scope="module")
def live(data_dir):
    from mentalens.analyze import get_analyzer

    analyzer = get_analyzer()
    config = ServerConfig(port=0)
    with LiveServer(config, engine=build_engine(config, analyzer), analyzer=analyzer) as srv:
        yield srv


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not executable:
        pytest.fail("Debian chromium is not installed (needed for the web tests): run `apt-get install -y chromium`"
                    " (.ci/run does this in CI)")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=executable, headless=True, args=ARGS,
            viewport={"width": 1280, "height": 900},
        )
        ctx.set_default_timeout(60_000)
        yield ctx
        ctx.close()


@pytest.fixture
def page(context):
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield pg
    pg.close()
    assert errors == [], errors  # no script error and nothing blocked by the content security policy


def send(page, text: str) -> None:
    page.get_by_label("Your message").fill(text)
    page.get_by_label("Your message").press("Enter")


def last_reply(page):
    reply = page.locator("li.msg.assistant").last
    page.wait_for_function("() => { const m = [...document.querySelectorAll('li.msg.assistant')].pop();"
                           " return m && !m.hasAttribute('aria-busy') && m.textContent.length > 40; }")
    return reply


def test_chat_streams_a_reply_and_draws_the_feelings_chart(page, live):
    page.goto(live.url + "/")
    page.wait_for_selector("body[data-ready=true]")
    assert page.get_by_role("note").first.inner_text().startswith("You are talking to an AI")
    send(page, "I feel so anxious before every exam that I can't sleep.")
    reply = last_reply(page)
    text = reply.inner_text()
    assert "Here is how counsellors have answered similar questions" in text
    assert int(reply.get_attribute("data-chunks")) >= 5  # appended sentence by sentence as the stream arrived
    assert page.locator("#announcer").inner_text().startswith("mentalens says:")
    page.wait_for_selector("#chart svg circle")
    assert page.locator("#chart svg").get_attribute("role") == "img"
    assert page.locator("#risk-banner").is_hidden()
    send(page, "Thank you. Talking about it makes me feel a bit calmer.")
    page.wait_for_function("() => document.querySelectorAll('li.msg.assistant').length === 2 &&"
                           " !document.querySelector('li.msg.assistant[aria-busy]')")
    page.wait_for_function("() => document.querySelectorAll('#chart rect[data-risk]').length === 2")
    page.screenshot(path=str(SHOTS / "chat.png"), full_page=True)


def test_a_crisis_message_shows_the_banner_with_resources(page, live):
    page.goto(live.url + "/")
    page.wait_for_selector("body[data-ready=true]")
    send(page, CRISIS)
    last_reply(page)
    banner = page.get_by_role("alert")
    banner.wait_for(state="visible")
    assert "alone" in banner.inner_text()
    assert page.locator("#risk-resources li").count() >= 1
    said = page.locator("li.msg.assistant").last.inner_text()
    assert "emergency" in said.lower() and "Are you safe right now?" in said
    page.screenshot(path=str(SHOTS / "crisis-banner.png"), full_page=True)


def test_end_deletes_the_conversation(page, live):
    page.goto(live.url + "/")
    page.wait_for_selector("body[data-ready=true]")
    send(page, "My roommate never cleans up and it drives me mad.")
    last_reply(page)
    old = page.evaluate("sessionStorage.getItem('mentalens.sessionId')")
    page.get_by_role("button", name="End and delete this conversation").click()
    page.wait_for_function(f"() => sessionStorage.getItem('mentalens.sessionId') !== '{old}'")
    assert page.locator("li.msg").count() == 0
    assert httpx.get(f"{live.url}/v1/sessions/{old}").status_code == 404


def test_analysis_page_highlights_evidence_with_probabilities(page, live):
    page.goto(live.url + "/analyze")
    page.wait_for_selector("body[data-ready=true]")
    post = ("I haven't left my room in weeks. I can't sleep and I feel worthless. "
            "Nothing I used to enjoy means anything to me now. My exams are next month.")
    page.get_by_label("Paste a post to analyse").fill(post)
    page.get_by_role("button", name="Analyse").click()
    page.wait_for_selector("body[data-analyzed=true]")
    rows = page.locator("#findings tr")
    assert rows.count() >= 1
    meters = page.get_by_role("meter")
    assert meters.count() == rows.count()
    values = [int(meters.nth(i).get_attribute("aria-valuenow")) for i in range(meters.count())]
    assert all(0 <= v <= 100 for v in values)
    # show each finding's evidence in turn until one has highlighted sentences
    marks = 0
    for i in range(rows.count()):
        rows.nth(i).get_by_role("button").click()
        marks = page.locator("#post mark.evidence").count()
        if marks:
            break
    assert marks >= 1
    highlighted = page.locator("#post mark.evidence").first.inner_text()
    assert any(s.strip(". ") in highlighted for s in post.split(". ") if s)
    assert page.locator("#post").inner_text().replace("(evidence for", "").startswith("I haven't left my room")
    page.screenshot(path=str(SHOTS / "analysis.png"), full_page=True)


def test_keyboard_labels_and_a_phone_screen(page, live):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live.url + "/")
    page.wait_for_selector("body[data-ready=true]")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "composer-input"
    unlabeled = page.evaluate("""() => [...document.querySelectorAll('textarea, input, select')]
        .filter(e => !e.closest('[hidden]') && e.labels.length === 0).map(e => e.id)""")
    assert unlabeled == []
    nameless = page.evaluate("""() => [...document.querySelectorAll('button')]
        .filter(b => !(b.textContent.trim() || b.getAttribute('aria-label'))).length""")
    assert nameless == 0
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.keyboard.type("Work has been overwhelming and I feel like I'm drowning.")
    page.keyboard.press("Enter")  # sends without touching the mouse
    last_reply(page)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(SHOTS / "chat-phone.png"), full_page=True)


def test_a_server_with_keys_asks_for_one(context, live):
    from mentalens.analyze import get_analyzer

    key = "web-test-key-0123456789"
    config = ServerConfig(port=0, api_keys=[key])
    analyzer = get_analyzer()
    with LiveServer(config, engine=build_engine(config, analyzer), analyzer=analyzer) as srv:
        page = context.new_page()
        page.goto(srv.url + "/")
        box = page.get_by_label("API key for this server")
        box.wait_for(state="visible")
        assert page.evaluate("document.activeElement.id") == "key-input"
        box.fill(key)
        box.press("Enter")
        page.wait_for_selector("body[data-ready=true]")
        send(page, "I keep procrastinating and then I hate myself for it.")
        assert "counsellors" in last_reply(page).inner_text()
        page.close()
