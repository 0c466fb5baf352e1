#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: migration_report
short_description: Keep one report of a storage migration - JSON, an offline HTML page and a timeline picture
version_added: 0.1.0
description:
  - Merges the records a migration leaves on each old server (the initial copy's statistics, lsyncd's
    catch-up and lag, the verify result, the cutover and rollback state) into C(report.json) in
    O(path), and renders from it C(report.html) and C(timeline.png).
  - B(One report for the whole migration.) Each record given in O(pairs) replaces the section of the
    report it feeds; every section not given this run is kept as it is in C(report.json). A run of
    the initial copy on Monday and one of the cutover on Saturday, each with its tags, end up in one
    report. The state file feeds C(state), C(cutover), C(rollback) and C(finished_at) together, so a
    section it no longer holds is gone from the report too.
  - B(The HTML page) is one file that opens offline - inline style, the picture embedded as a
    C(data:) URI, no script, no link out. Per pair it shows the downtime in large type, the state,
    and tables of the copy, the replication lag, the verify result and the steps of the cutover and
    the rollback. Every string from the records is escaped.
  - B(The picture) (matplotlib, drawn without a display) has two panels - the phases of each pair on
    a time axis (phases days apart keep their date and time, and a phase of seconds stays visible),
    and the steps of the cutover and the rollback in seconds from the start of the downtime. Without
    matplotlib on the controller there is no picture; the page says so and the module warns, but
    does not fail.
  - Runs where the report is kept, normally on the controller (C(delegate_to=localhost)).
author:
  - nodowntime.storage maintainers (@nodowntime)
extends_documentation_fragment:
  - nodowntime.storage.attributes
attributes:
  check_mode:
    support: full
    details:
      - Computes the merged report and whether any file would change; nothing is written.
  diff_mode:
    support: full
    details:
      - C(report.json) before and after.
options:
  path:
    description:
      - The report directory. C(report.json), C(report.html) and C(timeline.png) are kept in it.
        Created (mode C(0755)) when missing.
    type: path
    required: true
  pairs:
    description:
      - The records read this run, per old server (its inventory name). Each record is optional; give
        the content of the file as read on the old server.
      - C(pair) - C({old, new, share}), the pair as the inventory defines it now.
      - C(state) - the pair's state file (C(migration_pair.state_file)) - C({pair, state, cutover, rollback}).
      - C(initial_sync) - the initial copy's record (C(/var/lib/nodowntime/initial_sync/TARGET.json)) -
        C({src, dest, rsync_rc, stats, vanished, started, finished}); an older record without
        C(started) gets C(finished) minus the copy's C(elapsed).
      - C(replicate) - lsyncd's record (C(/var/lib/nodowntime/replicate/SHARE.json)) -
        C({started, caught_up, lag_samples, delay, overflows}).
      - C(verify) - the result M(nodowntime.storage.tree_verify) wrote with its C(report) option
        (C(/var/lib/nodowntime/verify/SHARE.json)).
      - A record that is missing or empty leaves its section of the report as it is.
    type: dict
    default: {}
  title:
    description: The report's title, at the top of the page.
    type: str
    default: Storage migration
  html:
    description:
      - Also write C(report.html) and C(timeline.png). They are rewritten only when C(report.json)
        changes or when one of them is missing, so a run that changes nothing leaves every file alone.
    type: bool
    default: true
notes:
  - C(report.json) holds no time of its own making, so the same records give the same file. The page
    says when it was generated.
  - The picture needs the Python library matplotlib where the module runs (C(pip install matplotlib)).
requirements:
  - matplotlib (for the picture only)
seealso:
  - module: nodowntime.storage.tree_verify
  - module: nodowntime.storage.rsync_copy
"""

EXAMPLES = r"""
- name: Read the pair's state on the old server
  ansible.builtin.slurp:
    src: /var/lib/nodowntime/cutover/data.json
  register: state_file
  failed_when: false

- name: Add it to the report on the controller
  nodowntime.storage.migration_report:
    path: "{{ playbook_dir }}/migration-reports"
    pairs:
      files1:
        pair: {old: files1, new: files1-new, share: data}
        state: "{{ state_file.content | b64decode | from_json if state_file.content is defined else {} }}"
  delegate_to: localhost
  run_once: true
  register: report

- name: Show what a person should know
  ansible.builtin.debug:
    msg: "{{ report.summary }}"

- name: Write only the JSON, no page, no picture
  nodowntime.storage.migration_report:
    path: /srv/reports/migration
    html: false
  delegate_to: localhost
"""

RETURN = r"""
report:
  description:
    - The merged report, as in C(report.json) - C(title) and, per old server under C(pairs),
      C(pair) C({old, new, share}), C(state), C(finished_at), C(initial_sync) C({started, finished, files,
      files_transferred, bytes_transferred, elapsed, rate, vanished, rsync_rc}), C(replicate) C({started,
      caught_up, lag_samples, lag_p50, lag_max, delay, overflows}), C(verify) C({started_at, finished_at,
      elapsed, clean, entries_checked, summary, differs_counts, totals}), C(cutover) and C(rollback)
      C({outcome, downtime_seconds, steps, error, final_full_pass}). Sections never recorded are absent.
  returned: always
  type: dict
  sample:
    title: Storage migration
    pairs:
      files1:
        pair: {old: files1, new: files1-new, share: data}
        state: cut_over
        cutover:
          outcome: done
          downtime_seconds: 3.8
          steps:
            - {name: stop writers, start: "2026-11-30T18:24:41.521Z", end: "2026-11-30T18:24:41.887Z"}
json_path:
  description: C(report.json).
  returned: always
  type: str
  sample: /home/ops/migration-reports/report.json
html_path:
  description: C(report.html), or null with O(html=false).
  returned: always
  type: str
  sample: /home/ops/migration-reports/report.html
picture_path:
  description: C(timeline.png), or null without matplotlib or with O(html=false).
  returned: always
  type: str
  sample: /home/ops/migration-reports/timeline.png
summary:
  description: Short lines a person can act on - per pair its state, the copy (files, bytes, rate), the
    replication lag, the verify result, the downtime of the cutover and the rollback, and what to do next.
  returned: always
  type: list
  elements: str
  sample:
    - "files1 -> files1-new::data: cut over - the clients use the new server, which replicates back to the old one"
    - "files1 cutover: done, 3.8 s without storage (longest: drain 2.1 s, switch clients 0.7 s), at 2026-11-30 18:24:41 UTC"
written:
  description: The files written this run (none in check mode).
  returned: always
  type: list
  elements: str
diff:
  description: C(report.json) before and after, in diff mode.
  returned: diff mode
  type: dict
"""

import datetime
import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.nodowntime.storage.plugins.module_utils import _migration_report as R
from ansible_collections.nodowntime.storage.plugins.module_utils import _timeline

JSON_NAME = "report.json"
HTML_NAME = "report.html"
PICTURE_NAME = "timeline.png"


def _read(path):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _replace(module, path, content):
    """Write ``content`` to a temporary file beside ``path`` and move it over ``path``."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)
        module.atomic_move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def plan(directory, pairs, title, html):
    """What the run does: ``(report, before_text, after_text, writes)``, the same in check mode."""
    json_path = os.path.join(directory, JSON_NAME)
    before = _read(json_path)
    stored = {}
    if before is not None:
        try:
            stored = json.loads(before)
        except ValueError as e:
            raise R.ReportInputError("path", "%s is not JSON (%s); move it away to start a new report"
                                     % (json_path, e))
    report = R.merge(stored, pairs, title)
    after = R.dumps(report)
    writes = []
    if html:
        picture_wanted = _timeline.missing() is None
        outputs = [os.path.join(directory, HTML_NAME)]
        if picture_wanted:
            outputs.append(os.path.join(directory, PICTURE_NAME))
        if after != before or not all(os.path.exists(p) for p in outputs):
            writes.extend(outputs)
    if after != before:
        writes.append(json_path)  # last: an interrupted run renders the page again next time
    return report, before, after, writes


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            pairs=dict(type="dict", default={}),
            title=dict(type="str", default="Storage migration"),
            html=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    directory = p["path"]
    if os.path.exists(directory) and not os.path.isdir(directory):
        module.fail_json(msg="path: %s is not a directory; give the directory to keep the report in" % directory)
    try:
        report, before, after, writes = plan(directory, p["pairs"], p["title"], p["html"])
    except R.ReportInputError as e:
        module.fail_json(msg=to_native(e), option=e.option)

    json_path = os.path.join(directory, JSON_NAME)
    html_path = os.path.join(directory, HTML_NAME) if p["html"] else None
    missing = _timeline.missing() if p["html"] else None
    if missing:
        module.warn("no timeline picture in the report: %s" % missing)
    picture_path = os.path.join(directory, PICTURE_NAME) if p["html"] and not missing else None
    result = dict(changed=bool(writes), report=report, json_path=json_path, html_path=html_path,
                  picture_path=picture_path, summary=R.summary(report), written=[])
    if module._diff:
        result["diff"] = dict(before=before or "", after=after,
                              before_header=json_path if before is not None else "/dev/null", after_header=json_path)

    if writes and not module.check_mode:
        try:
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o755)
            picture = None
            if picture_path:
                picture = _timeline.render_png(report)
            for target in writes:
                if target == picture_path:
                    _replace(module, target, picture)
                elif target == html_path:
                    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
                    note = ("no picture: %s" % missing) if missing else None
                    _replace(module, target, R.render_html(report, picture, generated, note))
                else:
                    _replace(module, target, after)
        except (OSError, IOError) as e:
            module.fail_json(msg="path: cannot write the report in %s: %s" % (directory, to_native(e)), **result)
        result["written"] = writes
    module.exit_json(**result)


if __name__ == "__main__":
    main()
