"""The web page of ``nsctl serve`` in a real browser, against a real server and kernel.

Headless Chromium is Debian's (/usr/bin/chromium, installed by scripts/setup),
driven by Playwright; Playwright never downloads a browser here.  The server is
``python -m nsctl serve`` on a free loopback port.  The page must find a network
namespace the fixture pins, show its details and what it sees, and drop it once
the fixture unpins it, all from the live event stream; it must stay usable in a
400 px window and ask nothing of any other site.
"""
from __future__ import annotations

import os
import queue
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import IO, TYPE_CHECKING

import pytest
from support import root_only
from support.namespaces import netns_bindmount
from support.processes import descendants, terminate
from support.views import ip, netns_add, netns_del

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
BROWSER_COMMS = ("chrom", "node")     # what Chromium's and Playwright's processes call themselves
SHOW_MS = 60_000      # a change reaches the page within a rescan (max-age 5 s) and a refetch;
                      # generous, for a host busy with thousands of namespaces

pytestmark = [
    root_only,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"needs Debian's chromium at {CHROMIUM} "
                              "(scripts/setup test installs it)"),
]
playwright = pytest.importorskip("playwright.sync_api",
                                 reason="needs Playwright (pip install -e '.[test]')")
expect = playwright.expect


@pytest.fixture
def server() -> Iterator[str]:
    """``nsctl serve`` on a port the kernel picks; its base URL."""
    with serving() as url:
        yield url


@contextmanager
def serving() -> Iterator[str]:
    """``nsctl serve`` on a port the kernel picks, until the end of the block; its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "nsctl", "serve", "--listen", "127.0.0.1:0",
                             "--no-token"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None   # stderr=PIPE
    lines: queue.Queue = queue.Queue()

    def read_all(stream: IO[str]) -> None:
        for line in stream:
            lines.put(line)

    # Read stderr to its end all along (a full pipe would stall the server).
    reader = threading.Thread(target=read_all, args=(proc.stderr,), daemon=True)
    reader.start()
    try:
        yield _listening(proc, lines)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        reader.join(timeout=10)
        proc.stderr.close()


def _listening(proc: subprocess.Popen, lines: queue.Queue, timeout: float = 60.0) -> str:
    """The URL from the server's "listening on" line (it binds before it scans)."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if found:
            return found.group(1)
    raise RuntimeError(f"nsctl serve did not start: {''.join(seen)!r}")


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Chromium; Playwright gives it a throwaway profile under TMPDIR and removes it
    on close (the leak check would see it otherwise)."""
    before = set(descendants(os.getpid()))
    try:
        with playwright.sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                          args=CHROMIUM_ARGS)
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        # close() returns before the browser's helpers (crashpad, zygotes) are reaped;
        # they come back to us (a subreaper): give them a moment, then reap them.
        terminate([pid for pid in descendants(os.getpid())
                   if pid not in before and _comm(pid).startswith(BROWSER_COMMS)], grace=10)


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def open_page(browser, url: str, width: int = 1280, height: int = 800):
    """A page on the server, recording every URL it asks for and every script error."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.asked = []
    page.errors = []
    page.on("request", lambda request: page.asked.append(request.url))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(url + "/")
    expect(page.locator("#live")).to_have_text("live", timeout=SHOW_MS)
    return page


def only_the_server(page, url: str) -> None:
    elsewhere = [u for u in page.asked if not u.startswith(url + "/")]
    assert not elsewhere, f"the page asked other sites: {elsewhere}"
    assert not page.errors, f"script errors: {page.errors}"


def test_page_finds_shows_and_drops_a_namespace(server, browser, scratch):
    page = open_page(browser, server)
    details = page.locator("#details")
    with netns_bindmount(scratch) as pinned:
        ino = os.stat(pinned.path).st_ino
        assert ino == pinned.net.ino
        # Find it by its inode (the search box keeps it in view on a busy host too).
        page.fill("#search", str(ino))
        row = page.locator(f'#pane-users [data-ns="{ino}"]')
        expect(row).to_be_visible(timeout=SHOW_MS)
        expect(row).to_have_attribute("data-type", "net")
        expect(row).to_contain_text("bindmount")
        page.select_option("#filter-type", "pid")                          # filters apply
        expect(row).to_have_count(0)
        page.select_option("#filter-type", "net")
        expect(row).to_be_visible()
        row.click()
        expect(details).to_have_attribute("data-selected", str(ino))
        expect(details.locator(".subtitle")).to_contain_text(f"net:[{ino}]")
        # Named by its bind mount (what holds it), once the page knows it.
        expect(details.locator("h2")).to_have_text(pinned.path, timeout=SHOW_MS)
        expect(details).to_contain_text(pinned.path)                      # what holds it
        expect(details.locator("[data-view=net] .interfaces")).to_contain_text(
            "lo", timeout=SHOW_MS)
        # The topology has its box (the server's first /net reads every network
        # namespace: seconds on a host with a thousand); clearing the search keeps the
        # selection.
        page.click("#tab-net")
        expect(page.locator(f'#pane-net [data-ns="{ino}"]')).to_be_visible(timeout=SHOW_MS)
        page.click("#tab-users")
        page.fill("#search", "")
        expect(page.locator(f'#pane-users [data-ns="{ino}"].selected')).to_have_count(1)
    # Unpinned and gone: the page drops it without a reload.
    expect(page.locator(f'main [data-ns="{ino}"]')).to_have_count(0, timeout=SHOW_MS)
    expect(details).to_contain_text("gone", timeout=SHOW_MS)
    only_the_server(page, server)


def test_narrow_window_and_keyboard(server, browser):
    page = open_page(browser, server, width=400, height=800)
    # A compact header; the filters behind a button; one scroll (the page's).
    assert page.locator("header.top").bounding_box()["height"] < 80
    expect(page.locator("#filter-type")).to_be_hidden()
    page.click("#more-filters")
    expect(page.locator("#filter-type")).to_be_visible()
    page.click("#more-filters")
    expect(page.locator("#filter-type")).to_be_hidden()
    assert page.evaluate("getComputedStyle(document.getElementById('pane-users')).overflowY") \
        == "visible"
    first = page.locator("#pane-users .item").first
    expect(first).to_be_visible(timeout=SHOW_MS)
    for tab, content in (("pids", "[data-type=pid]"), ("net", "[data-type=net]"),
                         ("events", ":is(.events, .empty)"), ("users", "[data-type=user]")):
        page.click(f"#tab-{tab}")
        expect(page.locator(f"#pane-{tab} {content}").first).to_be_visible(timeout=SHOW_MS)
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= 400, f"the {tab} tab makes the page {wide} px wide"
    # Keyboard only: tabs by arrow keys, rows by arrow keys, Enter selects, Escape closes.
    page.focus("#tab-events")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-users")).to_be_focused()
    expect(page.locator("#pane-users")).to_be_visible()
    first.focus()
    start = first.get_attribute("data-key")
    page.keyboard.press("ArrowDown")
    key = page.evaluate("document.activeElement.dataset.key")    # rows may come and go meanwhile
    assert key and key != start
    for _ in range(20):             # past type groups (rows that open, not select)
        if page.evaluate("document.activeElement.dataset.ns"):
            break
        page.keyboard.press("ArrowDown")
    key = page.evaluate("document.activeElement.dataset.key")
    page.keyboard.press("Enter")
    ino = page.evaluate("document.activeElement.dataset.ns")
    expect(page.locator("#details")).to_have_attribute("data-selected", ino)
    expect(page.locator("#details .subtitle")).to_contain_text(ino)
    # The details are a sheet over the whole window.
    box = page.locator("#details").bounding_box()
    assert box["x"] == 0 and box["width"] == 400 and box["height"] >= 790, box
    page.keyboard.press("Escape")
    expect(page.locator("#details")).to_have_attribute("data-selected", "")
    page.focus("#tab-users")
    page.keyboard.press("Tab")      # one tab stop per tree: the row last used
    expect(page.locator(f'#pane-users [data-key="{key}"]')).to_be_focused()
    page.keyboard.press("/")
    expect(page.locator("#search")).to_be_focused()
    only_the_server(page, server)


def test_details_read_right_and_the_page_says_when_the_server_is_gone(browser):
    """A process reference's link reads as the ns link it is ("net"), never
    "undefined"; a network namespace shows no parent; once the server stops the
    header says disconnected within a few failed tries, and the model's age goes on
    counting."""
    own = os.stat("/proc/self/ns/net").st_ino
    with serving() as url:
        page = open_page(browser, url)
        page.fill("#search", str(own))
        row = page.locator(f'#pane-users [data-ns="{own}"]')
        expect(row).to_be_visible(timeout=SHOW_MS)
        row.click()
        details = page.locator("#details")
        expect(details).to_have_attribute("data-selected", str(own))
        refs = details.locator("section", has_text="References").locator("td")
        expect(refs.filter(has_text=re.compile(r"^net$")).first).to_be_visible(timeout=SHOW_MS)
        expect(details).not_to_contain_text("undefined")
        expect(details.locator("dl.kv > dt").filter(has_text=re.compile(r"^parent$"))
               ).to_have_count(0)
        generation = page.locator("#generation")
        expect(generation).to_contain_text("scanned")
    said = generation.inner_text()
    expect(page.locator("#live")).to_have_text("disconnected", timeout=20_000)
    expect(generation).not_to_have_text(said)
    assert not page.errors, f"script errors: {page.errors}"


def test_a_named_netns_by_name_from_a_fresh_load_and_the_url_keeps_it(server, browser):
    """An `ip netns add` name is found by the search on a page just opened, on the
    user tab and in the Network tab's loopback-only group; Enter steps to it; its
    details are named by it and free of "undefined"; the URL restores the
    selection, tab and search in a new page, and the back button undoes them."""
    name = f"nsctl-c19-{secrets.token_hex(4)}"
    netns_add(name)
    try:
        ino = os.stat(f"/run/netns/{name}").st_ino
        page = open_page(browser, server)
        page.fill("#search", name)
        row = page.locator(f'#pane-users [data-ns="{ino}"]')
        expect(row).to_be_visible(timeout=SHOW_MS)
        expect(row.locator(".name")).to_have_text(name, timeout=SHOW_MS)
        expect(page.locator("#count")).to_contain_text("match")
        page.press("#search", "Enter")
        expect(page.locator("#count")).to_contain_text(re.compile(r"^\d+ of \d+ match"))
        expect(page.locator("#pane-users .item.current")).to_have_count(1)
        before = page.url
        row.click()
        details = page.locator("#details")
        expect(details).to_have_attribute("data-selected", str(ino))
        expect(details.locator("h2")).to_have_text(name)
        expect(details.locator("[data-view=net] .interfaces")).to_contain_text(
            "lo", timeout=SHOW_MS)
        expect(details).not_to_contain_text("undefined")
        # The host's partial flag and problems are the banner's; no process is in this
        # namespace, so none of them is about it.
        expect(details.locator("dl.kv > dt").filter(has_text=re.compile(r"^(partial|problems)$"))
               ).to_have_count(0)
        # What it sees is read again only when it changed (or on request), not on
        # every change of the host: new processes in new namespaces change the model.
        def views() -> int:
            return sum(1 for u in page.asked if "view=1" in u and str(ino) in u)

        seen = views()
        generation = page.locator("#generation").inner_text()
        for _ in range(3):
            subprocess.run(["unshare", "--uts", "true"], check=True, timeout=30)
            time.sleep(0.5)
        expect(page.locator("#generation")).not_to_have_text(generation, timeout=SHOW_MS)
        page.wait_for_timeout(2000)     # a refetch of the details would have come by now
        assert views() == seen
        # "read again" asks once (waited for as a request: what it shows was there before).
        with page.expect_request(lambda r: "view=1" in r.url and str(ino) in r.url,
                                 timeout=SHOW_MS):
            details.locator("[data-reread]").click()
        expect(details.locator("[data-view=net] .interfaces")).to_contain_text(
            "lo", timeout=SHOW_MS)
        assert views() == seen + 1
        # The Network tab: a namespace with only a loopback is in the folded group.
        page.click("#tab-net")
        group = page.locator("#pane-net details.lo-group")
        expect(group).to_be_visible(timeout=SHOW_MS)
        box = group.locator(f'[data-ns="{ino}"]')
        expect(box).to_be_visible()
        expect(box).to_contain_text(name)
        expect(page.locator(f'#pane-net svg [data-ns="{ino}"]')).to_have_count(0)
        page.check("#only-matches")
        expect(page.locator("#pane-net .lo-group button.ns")).to_have_count(
            page.locator("#pane-net .lo-group button.ns.match").count())
        # The URL: a new page opens on the same tab, selection and search.
        assert f"sel={ino}" in page.url and "#net" in page.url
        again = browser.new_page(viewport={"width": 1280, "height": 800})
        again.goto(page.url)
        expect(again.locator("#tab-net")).to_have_attribute("aria-selected", "true")
        expect(again.locator("#search")).to_have_value(name)
        expect(again.locator("#details")).to_have_attribute("data-selected", str(ino))
        expect(again.locator("#details h2")).to_have_text(name, timeout=SHOW_MS)
        again.close()
        # Back: the users tab again, then without the selection.
        page.go_back()
        expect(page.locator("#tab-users")).to_have_attribute("aria-selected", "true")
        page.go_back()
        assert page.url == before
        expect(details).to_have_attribute("data-selected", "")
        only_the_server(page, server)
    finally:
        netns_del(name)


def test_hostile_names_render_as_text(server, browser, scratch):
    """A bind mount path with quotes, markup, a control character and 200 bytes
    names its namespace on the page as plain text: no element, no script run."""
    hostile = "q'\"<script>window.__pwned=1<img src=x onerror=window.__pwned=2>\x01" + "L" * 150
    with netns_bindmount(scratch, name=hostile) as pinned:
        ino = pinned.net.ino
        page = open_page(browser, server)
        page.fill("#search", "window.__pwned")
        row = page.locator(f'#pane-users [data-ns="{ino}"]')
        expect(row).to_be_visible(timeout=SHOW_MS)
        expect(row.locator(".name")).to_contain_text("<script>window.__pwned=1<img",
                                                     timeout=SHOW_MS)
        row.click()
        expect(page.locator("#details h2")).to_contain_text("<img src=x", timeout=SHOW_MS)
        page.click("#tab-net")
        expect(page.locator(f'#pane-net [data-ns="{ino}"]')).to_contain_text(
            "<script>", timeout=SHOW_MS)
        assert page.evaluate("window.__pwned") is None
        assert page.locator("body script, body img").count() == 0
        only_the_server(page, server)


def test_events_namespace_level_by_default_process_rows_folded(server, browser):
    """The Events tab shows a new namespace's `born` and no per-process rows; asked
    for entered/left, a process's rows of one moment are one row listing the types;
    pause holds new events back."""
    page = open_page(browser, server)
    page.click("#tab-events")
    proc = subprocess.Popen(["unshare", "--net", "--uts", "sleep", "60"],
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:   # unshare execs sleep once it has unshared
            if _comm(proc.pid) == "sleep":
                break
            time.sleep(0.05)
        ino = os.stat(f"/proc/{proc.pid}/ns/net").st_ino
        events = page.locator("#events-list")
        born = events.locator(f'li.ev-born:has([data-goto="{ino}"])')
        expect(born).to_have_count(1, timeout=SHOW_MS)
        expect(events.locator("li.ev-entered")).to_have_count(0)
        page.select_option("#ev-kind", "process")
        # The types it entered at once (as it started): one row that lists them.
        mine = events.locator("li.ev-entered", has_text=f"({proc.pid})")
        expect(mine.filter(has_text="namespaces (").first).to_be_visible(timeout=SHOW_MS)
        expect(events.locator("li.ev-born")).to_have_count(0)
        # A process that starts with fds to two of its namespaces: one held row.  (It
        # opens both, then execs: the exec's event has it read again with both open,
        # whenever a rescan caught it before.)
        page.select_option("#ev-kind", "held")
        opener = subprocess.Popen(
            [sys.executable, "-c", "import os, sys; "
             "fds = [os.open(f'/proc/{sys.argv[1]}/ns/{t}', os.O_RDONLY) for t in ('net', 'uts')]; "
             "os.set_inheritable(fds[0], True); os.set_inheritable(fds[1], True); "
             "os.execv('/bin/sleep', ['sleep', '60'])", str(proc.pid)], stdin=subprocess.DEVNULL)
        try:
            held = events.locator("li.ev-held", has_text=f"({opener.pid})")
            expect(held.filter(has_text="namespaces (").first).to_be_visible(timeout=SHOW_MS)
        finally:
            opener.kill()
            opener.wait(10)
        page.select_option("#ev-kind", "")
        page.click("#ev-pause")
        expect(page.locator("#ev-count")).to_contain_text("paused")
        page.click("#ev-pause")
        expect(page.locator("#ev-count")).not_to_contain_text("paused")
    finally:
        proc.kill()
        proc.wait(10)
    only_the_server(page, server)


def test_links_from_one_namespace_run_in_lanes_of_their_own(server, browser):
    """Two veth pairs from one namespace (as into a bridge): their lines leave its
    box in two lanes of the gutter, not as one trunk."""
    tag = f"nsctl-test-{os.getpid()}-lane"
    with ExitStack() as stack:
        paths = {}
        for s in "abc":     # a's name sorts first: it is placed first, its lines start at it
            paths[s] = netns_add(f"{tag}{s}")
            stack.callback(netns_del, f"{tag}{s}")
        for s in "bc":
            ip(paths["a"], "link", "add", f"l{s}", "type", "veth", "peer", "name", f"l{s}p")
            ip(paths["a"], "link", "set", f"l{s}p", "netns", f"{tag}{s}")
        a_ino = os.stat(paths["a"]).st_ino
        page = open_page(browser, server)
        page.click("#tab-net")
        lines = page.locator(f'#pane-net path[data-a="{a_ino}"], '
                             f'#pane-net path[data-b="{a_ino}"]')
        expect(lines).to_have_count(2, timeout=SHOW_MS)
        ds = [lines.nth(k).get_attribute("d") or "" for k in range(2)]
        out = [re.match(r"M[-\d.]+,[-\d.]+ H([-\d.]+)", d) for d in ds]
        assert all(out), ds
        assert out[0].group(1) != out[1].group(1), ds
    only_the_server(page, server)
