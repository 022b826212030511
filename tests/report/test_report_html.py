"""The HTML report of a failing drill answers "what went wrong, where" (parsed, no browser)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from harness.checks import Verdict
from harness.report import render_html
from harness.report.model import build_model
from harness.report.svg import STATE_COLOURS


class Page(HTMLParser):
    """Every element's id, tag and attributes in document order, and every in-page link."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.ids: dict[str, dict[str, str]] = {}
        self.links: list[str] = []
        self.order: list[str] = []
        self.data = ""
        self._in_data = False

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        a["<tag>"] = tag
        self.elements.append((tag, a))
        if "id" in a:
            assert a["id"] not in self.ids, f"duplicate id {a['id']}"
            self.ids[a["id"]] = a
            self.order.append(a["id"])
        if tag == "a" and a.get("href", "").startswith("#"):
            self.links.append(a["href"][1:])
        self._in_data = tag == "script" and a.get("id") == "routechaos-data"

    def handle_endtag(self, tag):
        self._in_data = False

    def handle_data(self, data):
        if self._in_data:
            self.data += data

    def classes(self, id_: str) -> set[str]:
        return set(self.ids[id_].get("class", "").split())


def parse(html: str) -> Page:
    p = Page()
    p.feed(html)
    return p


def test_the_failing_check_links_to_the_call_it_cites_and_the_timeline_marks_it(failing):
    m = build_model(failing.journal, failing.report, failing.profile)
    page = parse(render_html(failing.journal, failing.report, profile=failing.profile))
    c2 = next(c for c in m.calls if c.key == "c2")
    # the check's problem links to the call's bar on the timeline, and to the cut attempt's bar
    assert f"tl-{c2.anchor}" in page.links
    assert "tl-a000002" in page.links
    # the bar is marked by verdict and state: outlined as cited by a failure, not drawn green
    bar = page.ids[f"tl-{c2.anchor}"]
    assert {"v-fail", "st-truncated"} <= page.classes(f"tl-{c2.anchor}")
    assert bar["fill"] == STATE_COLOURS["truncated"] != STATE_COLOURS["ok"]
    assert "v-fail" in page.classes("tl-a000002")
    # calls nobody cites carry no verdict mark
    for c in m.calls:
        if c.key != "c2":
            assert not {"v-fail", "v-unknown"} & page.classes(f"tl-{c.anchor}")


def test_every_in_page_link_resolves(failing):
    page = parse(render_html(failing.journal, failing.report, profile=failing.profile))
    assert page.links
    missing = [h for h in page.links if h not in page.ids]
    assert not missing, missing


def test_failures_come_first_and_passing_checks_are_folded(failing):
    html = render_html(failing.journal, failing.report, profile=failing.profile)
    page = parse(html)
    order = page.order
    assert order.index("check-no_truncated_success") < order.index("timeline") < order.index("check-no_lost_calls")
    assert page.ids["check-no_lost_calls"]["<tag>"] == "details"  # passed: collapsed
    assert "open" not in page.ids["check-no_lost_calls"]
    assert page.ids["check-no_truncated_success"]["<tag>"] == "div"  # failed: open
    # passing evidence of the failing check is folded too
    failing_block = html.split('id="check-no_truncated_success"', 1)[1].split('id="timeline"', 1)[0]
    assert "<details><summary class='muted'>2 passing item(s)</summary>" in failing_block


def test_every_lane_of_the_profile_gets_a_row_and_the_axis_says_its_unit(failing):
    html = render_html(failing.journal, failing.report, profile=failing.profile)
    lanes = re.findall(r'class="lane-label">([^<]+)<', html)
    assert lanes == ["fast", "stable", "spare"]
    assert "no attempts" in html  # the lane never tried
    facts = html.split('id="facts">', 1)[1].split("</div>", 1)[0]
    assert "seed <b>7</b>" in facts and "time scale 1" in facts
    assert ">profile s</text>" in html
    assert "(spare never tried)" in html


def test_the_latency_view_has_one_total_point_per_call_and_shades_fault_windows(failing):
    page = parse(render_html(failing.journal, failing.report, profile=failing.profile))
    latency = [a for _, a in page.elements if "pt-total" in a.get("class", "").split()]
    calls = json.loads(page.data)["calls"]
    assert len(latency) == len(calls) == 4
    assert sorted(a["data-call"] for a in latency) == sorted(c["anchor"] for c in calls)
    ttft = [a for _, a in page.elements if "pt-ttft" in a.get("class", "").split()]
    assert len(ttft) == 3  # c4 never streamed a token
    windows = [a for t, a in page.elements if t == "rect" and "window" in a.get("class", "").split()]
    assert len(windows) == 2  # the overloaded window, once on the timeline's fast row and once here


def test_each_call_has_a_detail_with_its_attempts_and_text_lengths(failing):
    m = build_model(failing.journal, failing.report, failing.profile)
    html = render_html(failing.journal, failing.report, profile=failing.profile)
    c2 = next(c for c in m.calls if c.key == "c2")
    detail = html.split(f'id="{c2.anchor}"', 1)[1].split("</details>", 1)[0]
    assert detail.startswith(" open>")  # cited by a failure: open
    assert "truncated" in detail and "cited by no_truncated_success" in detail
    assert f"{c2.accepted_chars} / {c2.canonical_chars}" in detail and c2.accepted_chars < c2.canonical_chars
    assert ">a000002<" in detail and ">cut<" in detail and ">stream_cut<" in detail and "3/10" in detail


def test_the_page_is_self_contained(failing):
    html = render_html(failing.journal, failing.report, profile=failing.profile)
    page = parse(html)
    for tag, a in page.elements:
        assert tag != "link", a
        assert not (tag == "script" and "src" in a), a
        for key in ("src", "href"):
            assert not a.get(key, "").startswith(("http:", "https:", "//")), a
    assert "@import" not in html and "url(" not in html


def test_a_call_id_from_another_process_cannot_break_the_page(jb):
    weird = 'x"><script>alert(1)</script> #1'
    jb.ok("fast", 0.0, 0.5, call=weird)
    jb.call(weird, 0.0, 0.6, outcome="error", error="</script><b>", error_type="E")
    from harness.checks import evaluate_all

    report = evaluate_all(jb.j, ["no_lost_calls"])
    html = render_html(jb.j, report)
    assert "<script>alert(1)" not in html
    page = parse(html)
    assert all(h in page.ids for h in page.links)
    assert json.loads(page.data)["calls"][0]["id"] == weird


def test_unknown_evidence_is_outlined_as_unknown(jb):
    jb.timeout("fast", 0.0, 1.0, call="c1")
    jb.call("c1", 0.0, 1.1, outcome="unknown")
    from harness.checks import evaluate_all

    report = evaluate_all(jb.j, ["no_lost_calls"])
    assert report.verdict is Verdict.UNKNOWN
    m = build_model(jb.j, report)
    page = parse(render_html(jb.j, report))
    assert "v-unknown" in page.classes(f"tl-{m.calls[0].anchor}")
    assert "v-unknown" in page.classes("tl-a000001")
