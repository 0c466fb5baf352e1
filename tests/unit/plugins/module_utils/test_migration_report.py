# SPDX-License-Identifier: GPL-3.0-or-later
"""_migration_report and _timeline: records as the lab's old server keeps them, merged into one
report, summed up in lines, rendered as an offline page and a picture."""
from __future__ import annotations

import copy
import datetime
import html.parser
import json
import sys

import pytest

from ansible_collections.nodowntime.storage.plugins.module_utils import _migration_report as R
from ansible_collections.nodowntime.storage.plugins.module_utils import _timeline

try:
    import matplotlib  # noqa: F401 pylint: disable=unused-import
    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# What the lab's old server keeps (roles/initial_sync/tasks/copy.yml, tree_verify's report option,
# roles/cutover/templates/record.json.j2), its times and numbers from a run of `make demo`.
INITIAL_SYNC = {
    "src": "/srv/data", "dest": "nodowntime@10.213.7.12::data", "rsync_rc": 0,
    "stats": {"files": 2176, "files_transferred": 2103, "bytes_transferred": 7274512, "elapsed": 7.12,
              "rate": 1021700.5, "literal_data": 7200000, "total_size": 7274512},
    "vanished": 3, "finished": "2026-11-28T09:12:33.123456+00:00",
}
REPLICATE = {"started": "2026-11-28T09:12:40.000Z", "caught_up": "2026-11-28T09:12:52.500Z",
             "lag_samples": [0.5, 1.2, 0.8, 3.1, 0.9], "delay": 1.0, "overflows": 0}
VERIFY = {
    "clean": True, "depth": "attributes", "differences": [], "differences_truncated": False, "differs_counts": {},
    "elapsed": 6.131, "entries_checked": 2176, "finished_at": "2026-11-30T18:24:24.408Z",
    "first_differences": [], "ignore": [],
    "in_flight": {"differences": [], "differences_truncated": False, "differs_counts": {},
                  "totals": dict.fromkeys(R.TOTAL_KEYS, 0)},
    "passes": [{"label": "tree", "rc": 0, "seconds": 0.13}], "settle": 6.0, "source": "/srv/data",
    "started_at": "2026-11-30T18:24:18.277Z",
    "summary": "the trees agree - 2176 entries compared at attributes depth in 6.1 s",
    "target": "nodowntime@10.213.7.12::data", "totals": dict.fromkeys(R.TOTAL_KEYS, 0), "vanished": 0,
}
STEPS = [
    {"name": "stop writers", "start": "2026-11-30T18:24:41.521Z", "end": "2026-11-30T18:24:41.887Z"},
    {"name": "drain", "start": "2026-11-30T18:24:41.887Z", "end": "2026-11-30T18:24:44.003Z"},
    {"name": "switch replication", "start": "2026-11-30T18:24:44.003Z", "end": "2026-11-30T18:24:44.381Z"},
    {"name": "switch clients", "start": "2026-11-30T18:24:44.381Z", "end": "2026-11-30T18:24:45.125Z"},
    {"name": "start writers", "start": "2026-11-30T18:24:45.125Z", "end": "2026-11-30T18:24:45.341Z"},
    {"name": "check writers", "start": "2026-11-30T18:24:45.341Z", "end": "2026-11-30T18:24:47.141Z"},
]
PAIR = {"old": "old", "new": "new", "share": "data"}
STATE_CUT_OVER = {
    "pair": PAIR, "state": "cut_over",
    "cutover": {"outcome": "done", "downtime_seconds": 3.82, "steps": STEPS, "final_full_pass": False,
                "replaced_mounts": [{"path": "/mnt/data", "src": "root@old:/srv/data"}]},
}
ROLLBACK_STEPS = [
    {"name": "stop writers", "start": "2026-12-01T08:00:00.100Z", "end": "2026-12-01T08:00:00.400Z"},
    {"name": "drain", "start": "2026-12-01T08:00:00.400Z", "end": "2026-12-01T08:00:03.100Z"},
    {"name": "switch clients", "start": "2026-12-01T08:00:03.100Z", "end": "2026-12-01T08:00:04.300Z"},
    {"name": "start writers", "start": "2026-12-01T08:00:04.300Z", "end": "2026-12-01T08:00:04.800Z"},
    {"name": "check writers", "start": "2026-12-01T08:00:04.800Z", "end": "2026-12-01T08:00:06.000Z"},
    {"name": "switch replication", "start": "2026-12-01T08:00:06.000Z", "end": "2026-12-01T08:00:06.900Z"},
]
STATE_ROLLED_BACK = {
    "pair": PAIR, "state": "replicating",
    "cutover": dict(STATE_CUT_OVER["cutover"], outcome="rolled_back"),
    "rollback": {"outcome": "done", "downtime_seconds": 4.7, "steps": ROLLBACK_STEPS},
}


def records(*only):
    """This run's input for pair ``old``: every record, or only the ones named."""
    every = {"pair": PAIR, "state": STATE_CUT_OVER, "initial_sync": INITIAL_SYNC, "replicate": REPLICATE,
             "verify": VERIFY}
    chosen = dict((k, every[k]) for k in only) if only else every
    return copy.deepcopy({"old": chosen})


def full_report():
    return R.merge({}, records(), "Storage migration")


# --- times and normalising ---------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("2026-11-30T18:24:41.521Z", "2026-11-30T18:24:41.521Z"),
    ("2026-11-30T18:24:41.521999+00:00", "2026-11-30T18:24:41.521Z"),
    ("2026-11-30T20:24:41+02:00", "2026-11-30T18:24:41.000Z"),
    ("2026-11-30 18:24:41", "2026-11-30T18:24:41.000Z"),
    ("2026-11-30T18:24:41.5-0130", "2026-11-30T19:54:41.500Z"),
])
def test_parse_time_reads_every_form_the_records_use(text, expected):
    assert R.iso(R.parse_time(text)) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01T00:00:00Z", None, 17])
def test_parse_time_refuses_what_is_no_time(text):
    assert R.parse_time(text) is None


def test_initial_sync_record_becomes_the_report_section():
    section = R.normalise_initial_sync(INITIAL_SYNC, "pairs.old.initial_sync")
    assert section == {"started": "2026-11-28T09:12:26.003Z", "finished": "2026-11-28T09:12:33.123Z",
                       "files": 2176, "files_transferred": 2103, "bytes_transferred": 7274512, "elapsed": 7.12,
                       "rate": 1021700.5, "vanished": 3, "rsync_rc": 0}


def test_initial_sync_keeps_a_recorded_start():
    raw = dict(INITIAL_SYNC, started="2026-11-28T09:00:00+00:00")
    assert R.normalise_initial_sync(raw, "x")["started"] == "2026-11-28T09:00:00.000Z"


def test_replicate_record_gets_its_lag_median_and_maximum():
    section = R.normalise_replicate(REPLICATE, "pairs.old.replicate")
    assert section == dict(REPLICATE, lag_p50=0.9, lag_max=3.1)
    assert "lag_p50" not in R.normalise_replicate(dict(REPLICATE, lag_samples=[]), "x")


def test_verify_result_keeps_the_verdict_and_leaves_the_lists_out():
    section = R.normalise_verify(dict(VERIFY, differs_counts={"mtime": 2}), "pairs.old.verify")
    assert set(section) == {"started_at", "finished_at", "elapsed", "clean", "entries_checked", "summary",
                            "differs_counts", "totals"}
    assert section["clean"] is True and section["entries_checked"] == 2176 and section["differs_counts"] == {"mtime": 2}


def test_state_file_cutover_keeps_its_steps_exactly_and_nothing_unknown():
    sections = R.normalise_state(STATE_CUT_OVER, "pairs.old.state")
    assert sections["state"] == "cut_over"
    assert sections["cutover"]["steps"] == STEPS
    assert "replaced_mounts" not in sections["cutover"] and sections["cutover"]["final_full_pass"] is False


@pytest.mark.parametrize("pairs, option", [
    ({"old": {"verify": ["not", "a", "dict"]}}, "pairs.old.verify"),
    ({"old": {"bogus": {}}}, "pairs.old"),
    ({"old": {"initial_sync": dict(INITIAL_SYNC, stats={"files": "many"})}}, "pairs.old.initial_sync.stats.files"),
    ({"old": {"state": {"state": "cut_over", "cutover": {"steps": "stop"}}}}, "pairs.old.state.cutover.steps"),
    ({"old": "text"}, "pairs.old"),
])
def test_unreadable_records_are_refused_naming_where_they_are(pairs, option):
    with pytest.raises(R.ReportInputError) as e:
        R.merge({}, pairs, "t")
    assert e.value.option == option and str(e.value).startswith(option + ": ")


@pytest.mark.parametrize("count, shown", [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1048575, "1.0 MiB"), (7274512, "6.9 MiB"),
    (1073741823, "1.0 GiB"), (5 * 1024 ** 4, "5.0 TiB"),
])
def test_human_bytes_never_shows_1024_of_a_unit(count, shown):
    assert R.human_bytes(count) == shown


@pytest.mark.parametrize("seconds, shown", [
    (3.82, "3.8 s"), (59.9, "59.9 s"), (432, "7 min 12 s"), (7500, "2 h 5 min"), (3 * 86400 + 4 * 3600, "3 d 4 h"),
])
def test_human_seconds(seconds, shown):
    assert R.human_seconds(seconds) == shown


# --- merging -----------------------------------------------------------------------------------

def test_merge_keeps_absent_sections_and_replaces_present_ones():
    monday = R.merge({}, records("pair", "initial_sync", "replicate"), "t")
    stored = json.loads(R.dumps(monday))
    newer_copy = dict(INITIAL_SYNC, stats=dict(INITIAL_SYNC["stats"], files_transferred=7))
    saturday = R.merge(stored, {"old": {"state": STATE_CUT_OVER, "verify": VERIFY, "initial_sync": newer_copy}}, "t")
    entry = saturday["pairs"]["old"]
    assert entry["replicate"] == monday["pairs"]["old"]["replicate"], "a section not read this run is kept"
    assert entry["initial_sync"]["files_transferred"] == 7, "a section read this run replaces the stored one"
    assert entry["state"] == "cut_over" and entry["cutover"]["downtime_seconds"] == 3.82
    assert entry["verify"]["clean"] is True and entry["pair"] == PAIR
    assert list(entry) == ["pair", "state", "initial_sync", "replicate", "verify", "cutover"]


def test_merge_keeps_other_pairs_and_empty_records_change_nothing():
    stored = json.loads(R.dumps(full_report()))
    merged = R.merge(stored, {"old": {"state": {}, "verify": None}, "files2": {"pair": {"old": "files2", "new": "f2n"}}},
                     "t")
    assert merged["pairs"]["old"] == stored["pairs"]["old"]
    assert merged["pairs"]["files2"] == {"pair": {"old": "files2", "new": "f2n"}}


def test_state_file_replaces_cutover_and_rollback_together():
    rolled_back = R.merge({}, {"old": {"state": STATE_ROLLED_BACK}}, "t")
    assert rolled_back["pairs"]["old"]["rollback"]["downtime_seconds"] == 4.7
    # a new cutover writes a state file without the rollback: the report drops it too
    again = R.merge(json.loads(R.dumps(rolled_back)), {"old": {"state": STATE_CUT_OVER}}, "t")
    assert "rollback" not in again["pairs"]["old"] and again["pairs"]["old"]["cutover"]["outcome"] == "done"


def test_merge_keeps_the_layout_the_lab_reads():
    report = json.loads(R.dumps(full_report()))
    entry = report["pairs"]["old"]
    assert entry["state"] == "cut_over" and entry["cutover"]["outcome"] == "done"
    assert 0 < entry["cutover"]["downtime_seconds"] < 5
    assert [s["name"] for s in entry["cutover"]["steps"]] == [s["name"] for s in STEPS]
    assert entry["cutover"]["steps"] == STATE_CUT_OVER["cutover"]["steps"]


def test_dumps_is_stable():
    assert R.dumps(full_report()) == R.dumps(R.merge(json.loads(R.dumps(full_report())), records(), "Storage migration"))
    assert "generated" not in R.dumps(full_report())


# --- summary -----------------------------------------------------------------------------------

def test_summary_lines_carry_the_real_numbers():
    lines = R.summary(full_report())
    text = "\n".join(lines)
    assert lines[0] == "old -> new::data: cut over - the clients use the new server, which replicates back to the old one"
    assert "old initial copy: 2,103 of 2,176 files, 6.9 MiB copied in 7.1 s at 997.8 KiB/s, 3 vanished" in text
    assert "rsync exit 0, finished 2026-11-28 09:12:33 UTC" in text
    assert "caught up after 12.5 s, lag median 0.9 s, max 3.1 s over 5 samples, delay 1.0 s, 0 queue overflows" in text
    assert "old verify: the trees agree - 2176 entries compared at attributes depth in 6.1 s" in text
    # the longest steps inside the downtime: the writers' check after it does not count
    assert "old cutover: done, 3.8 s without storage (longest: drain 2.1 s, switch clients 0.7 s)" in text
    assert "old next: check the applications on the new server" in text


def test_the_writers_check_is_no_part_of_the_downtime_even_when_the_times_round():
    """The state file's downtime is the clock's, the steps' times are rounded to milliseconds."""
    raw = records("state")
    raw["old"]["state"]["cutover"]["downtime_seconds"] = 3.8204  # check writers starts at +3.820
    raw["old"]["state"]["cutover"]["steps"][5]["end"] = "2026-11-30T18:24:49.341Z"  # 4 s, the longest
    text = "\n".join(R.summary(R.merge({}, raw, "t")))
    assert "(longest: drain 2.1 s, switch clients 0.7 s)" in text


def test_summary_of_a_rollback_and_an_undone_cutover():
    report = R.merge({}, {"old": {"state": STATE_ROLLED_BACK}}, "t")
    text = "\n".join(R.summary(report))
    assert "old cutover: rolled_back, 3.8 s without storage" in text
    assert "old rollback: done, 4.7 s without storage (longest: drain 2.7 s, switch clients 1.2 s)" in text
    undone = {"pair": PAIR, "state": "replicating",
              "cutover": {"outcome": "undone", "downtime_seconds": 2.5, "steps": STEPS[:3],
                          "error": "step 'switch clients' failed: injected failure"}}
    text = "\n".join(R.summary(R.merge({}, {"old": {"state": undone}}, "t")))
    assert "old cutover: undone, 2.5 s without storage" in text and "injected failure" in text
    assert "the cutover undid itself and the old server serves again" in text


def test_summary_asks_for_a_repair_after_lasting_differences():
    dirty = dict(VERIFY, clean=False, totals=dict(VERIFY["totals"], diff_file=1, diff_bytes=3328),
                 summary="lasting differences: 1 different (0 dirs, 1 file, 3328 bytes)")
    text = "\n".join(R.summary(R.merge({}, {"old": {"pair": PAIR, "verify": dirty}}, "t")))
    assert "not cut over yet (last phase recorded: verify)" in text
    assert "old verify: lasting differences: 1 different (0 dirs, 1 file, 3328 bytes)" in text
    assert "repair the lasting differences" in text


def test_summary_of_nothing():
    assert R.summary(R.merge({}, {}, "t")) == ["no migration pair recorded yet"]


# --- the page ----------------------------------------------------------------------------------

class _Collect(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []
        self.attrs = []
        self.text = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data):
        self.text.append(data)


def test_html_escapes_hostile_strings():
    hostile = '<script>alert("x")</script>&<img src=x onerror=alert(1)>'
    raw = records()
    raw[hostile] = raw.pop("old")
    raw[hostile]["pair"] = {"old": hostile, "new": "new\"'><b>", "share": "<i>data</i>"}
    raw[hostile]["state"]["cutover"]["error"] = hostile
    raw[hostile]["state"]["cutover"]["steps"][0]["name"] = hostile
    raw[hostile]["verify"]["summary"] = hostile
    report = R.merge({}, raw, hostile)
    page = R.render_html(report, None, "now", "no picture: " + hostile)
    parser = _Collect()
    parser.feed(page)
    assert "script" not in parser.tags and "i" not in parser.tags and "b" not in parser.tags
    assert parser.tags.count("img") == 0, "the hostile <img> stays text (and there is no picture)"
    assert not [a for a in parser.attrs if a[0].startswith("on")]
    assert hostile in "".join(parser.text), "shown as text, exactly"
    assert html_escaped(hostile) in page


def html_escaped(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def test_html_is_one_offline_file():
    picture = b"\x89PNG\r\n\x1a\nnot really"
    page = R.render_html(full_report(), picture, "2026-11-30 19:00:00 UTC")
    assert "<script" not in page.lower() and "http://" not in page and "https://" not in page
    assert 'src="data:image/png;base64,iVBORw0KGgpub3QgcmVhbGx5"' in page
    assert '<p class="downtime">3.8 s downtime</p>' in page
    for heading in ("Initial copy", "Replication (lsyncd)", "Verify", "Cutover"):
        assert "<h3>%s</h3>" % heading in page
    assert "<td>drain</td><td>2026-11-30T18:24:41.887Z</td><td>+0.366 s</td><td>2.116 s</td>" in page
    assert "7,274,512 (6.9 MiB)" in page


def test_html_without_picture_says_why():
    page = R.render_html(full_report(), None, "now", "no picture: matplotlib is not installed on the controller")
    assert "data:image/png" not in page and "matplotlib is not installed on the controller" in page


# --- the picture -------------------------------------------------------------------------------

def test_timeline_rows_and_step_groups():
    report = R.merge({}, records(), "t")
    report = R.merge(report, {"old": {"state": STATE_ROLLED_BACK}}, "t")
    rows = _timeline.phase_rows(report)
    assert [r[1] for r in rows] == ["initial_sync", "replicate", "verify", "cutover", "rollback"]
    assert rows[3][4] - rows[3][3] == datetime.timedelta(seconds=5.62)
    groups = _timeline.step_groups(report)
    assert [g[0] for g in groups] == ["old cutover (rolled_back)", "old rollback (done)"]
    assert groups[0][1] == 3.82 and groups[0][2][1] == ("drain", 0.366, 2.116)


def test_missing_matplotlib_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert "matplotlib is not installed" in _timeline.missing()
    with pytest.raises(ImportError):
        _timeline.render_png(full_report())


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib not installed")
def test_picture_is_a_png_and_the_same_report_draws_the_same_picture():
    assert _timeline.missing() is None
    report = R.merge(full_report(), {"old": {"state": STATE_ROLLED_BACK}}, "t")
    first = _timeline.render_png(report)
    assert first.startswith(PNG_MAGIC) and len(first) > 10000
    assert _timeline.render_png(json.loads(R.dumps(report))) == first
    assert b"matplotlib" not in first, "no version in the metadata"


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib not installed")
def test_picture_of_an_empty_report():
    assert _timeline.render_png(R.merge({}, {}, "t")).startswith(PNG_MAGIC)
