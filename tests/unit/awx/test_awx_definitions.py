# SPDX-License-Identifier: GPL-3.0-or-later
"""The AWX definitions in awx/ (job templates, the workflow, their surveys), checked without an AWX.

* Each job template and the workflow, as configure.yml passes it, against the argument spec the
  real awx.awx module gives ControllerAPIModule (captured by running the module's main() up to
  that call), with the module's mutually_exclusive/required_* if it passes any; the workflow's
  nodes against the suboptions the module documents for workflow_nodes (its Python spec only
  says "list of dicts").
* Each survey against the rules AWX applies when it saves one, and each question against the
  variable the playbooks read: a setting of playbooks/vars/migration_settings.yml, an option of a
  role's meta/argument_specs.yml, or a client-side variable of the cutover; the answer AWX would
  send (its default and each choice) must pass that variable's spec; a default must be the
  playbooks' default, and a question without one (AWX then sends nothing and the inventory's value
  applies) must say in its description which default applies then, and that must be the
  playbooks' default.
* The workflow graph: the phases in order, the approval right before the cutover, the rollback
  on the cutover's failure.
* Each job template's playbook is in awx/project and its job_tags are tags of migrate.yml.
* Functional: configure.yml itself, run against a stand-in awx.awx whose modules take the real
  argument specs, passes exactly the definitions checked above; and a survey's textarea answer
  for migration_exclude reaches the playbooks as the list they need (migration_pairs.yml).

Every check is a function returning the problems it finds; the negative tests break a copy of a
definition and show that the check reports it.
"""
from __future__ import annotations

import copy
import importlib
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.parsing.convert_bool import boolean

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
AWX_DIR = os.path.join(REPO, "awx")
PROJECT = os.path.join(AWX_DIR, "project")


def _collection_roots():
    roots = [p for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if p]
    roots.append(os.path.join(REPO, ".tmp", "collections"))
    return roots


def _find_awx():
    for root in _collection_roots():
        if os.path.isfile(os.path.join(root, "ansible_collections", "awx", "awx", "plugins", "modules", "job_template.py")):
            return root
    return None


AWX_ROOT = _find_awx()
pytestmark = pytest.mark.skipif(
    AWX_ROOT is None,
    reason="awx.awx is not installed: `make collections` puts it in .tmp/collections "
           "(tests/lab/install-test-collections.sh), or point ANSIBLE_COLLECTIONS_PATH at one that has it")


# --- the definitions as configure.yml passes them ------------------------------------------------

def _load(path):
    from ansible.parsing.dataloader import DataLoader
    try:  # ansible-core 2.19 templates only what is trusted, as a vars file is
        return DataLoader().load_from_file(path, trusted_as_template=True)
    except TypeError:  # 2.18 trusts everything
        return DataLoader().load_from_file(path)


def _plain(data):
    """Ansible's tagged values as the plain JSON types a module receives."""
    return json.loads(json.dumps(data))


def _configure_play():
    with open(os.path.join(AWX_DIR, "configure.yml")) as f:
        return yaml.safe_load(f)[0]


def definitions():
    """(job templates, workflow) rendered with configure.yml's variables and the example site settings."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    play = _configure_play()
    variables = dict(_load(os.path.join(AWX_DIR, "configure.yml"))[0]["vars"])  # play vars (lowest)
    for name in play["vars_files"]:
        variables.update(_load(os.path.join(AWX_DIR, name)))
    variables.update(_load(os.path.join(AWX_DIR, "vars", "site.example.yml")))  # -e @site.yml (highest)
    templar = Templar(loader=DataLoader(), variables=variables)
    return (_plain(templar.template(variables["nodowntime_awx_job_templates"])),
            _plain(templar.template(variables["nodowntime_awx_workflow"])))


JOB_TEMPLATES, WORKFLOW = definitions() if AWX_ROOT else ([], {})
JT_IDS = [jt["name"] for jt in JOB_TEMPLATES]


# --- the real awx.awx argument specs -----------------------------------------------------------

class _Captured(Exception):
    pass


def awx_module_spec(name):
    """The keyword arguments awx.awx's module `name` passes to ControllerAPIModule."""
    if AWX_ROOT not in sys.path:
        sys.path.insert(0, AWX_ROOT)
    module = importlib.import_module("ansible_collections.awx.awx.plugins.modules." + name)
    captured = {}

    def fake(**kwargs):
        captured.update(kwargs)
        raise _Captured()

    original = module.ControllerAPIModule
    module.ControllerAPIModule = fake
    try:
        module.main()
    except _Captured:
        pass
    finally:
        module.ControllerAPIModule = original
    assert "argument_spec" in captured, "awx.awx.%s did not build ControllerAPIModule" % name
    return module, captured


def _doc_options_to_spec(options):
    """A documented options block (DOCUMENTATION) as an argument spec."""
    spec = {}
    for name, doc in options.items():
        entry = {k: doc[k] for k in ("type", "elements", "choices", "required", "default", "aliases") if k in doc}
        entry.setdefault("type", "str")
        if "suboptions" in doc:
            entry["options"] = _doc_options_to_spec(doc["suboptions"])
        spec[name] = entry
    return spec


def validate(spec_kwargs, params):
    """Errors of `params` against an argument spec and the checks passed with it."""
    validator = ArgumentSpecValidator(
        spec_kwargs["argument_spec"],
        mutually_exclusive=spec_kwargs.get("mutually_exclusive"),
        required_together=spec_kwargs.get("required_together"),
        required_one_of=spec_kwargs.get("required_one_of"),
        required_if=spec_kwargs.get("required_if"),
        required_by=spec_kwargs.get("required_by"),
    )
    return [str(e) for e in validator.validate(copy.deepcopy(params)).errors]


@pytest.fixture(scope="module")
def job_template_spec():
    return awx_module_spec("job_template")[1]


@pytest.fixture(scope="module")
def workflow_spec():
    module, kwargs = awx_module_spec("workflow_job_template")
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]["workflow_nodes"]["suboptions"]
    return kwargs, {"argument_spec": _doc_options_to_spec(documented)}


def workflow_problems(workflow_kwargs, node_kwargs, workflow):
    problems = validate(workflow_kwargs, workflow)
    for node in workflow.get("workflow_nodes", []):
        problems += ["node %s: %s" % (node.get("identifier"), e) for e in validate(node_kwargs, node)]
    return problems


def test_the_argument_specs_are_the_real_ones(job_template_spec, workflow_spec):
    """The captured specs are awx.awx's (names only that module has), not an empty stand-in."""
    assert {"playbook", "job_tags", "survey_spec", "ask_variables_on_launch"} <= set(job_template_spec["argument_spec"])
    assert {"workflow_nodes", "survey_spec"} <= set(workflow_spec[0]["argument_spec"])
    assert {"identifier", "unified_job_template", "related"} <= set(workflow_spec[1]["argument_spec"])


@pytest.mark.parametrize("index", range(len(JOB_TEMPLATES)), ids=JT_IDS)
def test_job_template_matches_awx_argument_spec(job_template_spec, index):
    assert validate(job_template_spec, JOB_TEMPLATES[index]) == []


def test_workflow_matches_awx_argument_spec(workflow_spec):
    assert workflow_problems(*workflow_spec, WORKFLOW) == []


@pytest.mark.parametrize("change, expected", [
    ({"playbok": "migrate.yml"}, "playbok"),             # a misspelt option
    ({"verbosity": 7}, "verbosity"),                      # not one of the choices
    ({"timeout": "forever"}, "timeout"),                  # not an int
    ({"name": None}, "name"),                             # the required name missing
])
def test_a_bad_job_template_option_is_caught(job_template_spec, change, expected):
    broken = dict(JOB_TEMPLATES[0], **change)
    if change.get("name", "") is None:
        del broken["name"]
    errors = validate(job_template_spec, broken)
    assert errors and expected in " ".join(errors)


@pytest.mark.parametrize("breaks, expected", [
    (lambda wf: wf.update(destroy_current_schema_now=True), "destroy_current_schema_now"),
    (lambda wf: wf["workflow_nodes"][0].pop("identifier"), "identifier"),
    (lambda wf: wf["workflow_nodes"][4]["unified_job_template"].update(timeout="an hour"), "timeout"),
    (lambda wf: wf["workflow_nodes"][5]["related"].update(falure_nodes=[]), "falure_nodes"),
])
def test_a_bad_workflow_option_is_caught(workflow_spec, breaks, expected):
    broken = copy.deepcopy(WORKFLOW)
    breaks(broken)
    errors = workflow_problems(*workflow_spec, broken)
    assert errors and expected in " ".join(errors)


def test_configure_passes_every_option_a_definition_carries():
    """configure.yml names each parameter; one a definition carries but the task leaves out would be lost."""
    assert configure_problems(JOB_TEMPLATES, WORKFLOW) == []
    broken = [dict(JOB_TEMPLATES[0], start_at_task="Read the pair")] + JOB_TEMPLATES[1:]
    assert configure_problems(broken, WORKFLOW) == ["job template %s: start_at_task is not passed by configure.yml" % JT_IDS[0]]


def configure_problems(job_templates, workflow):
    tasks = {t["name"]: t for t in _configure_play()["tasks"]}
    jt_args = next(t["awx.awx.job_template"] for t in tasks.values() if "awx.awx.job_template" in t)
    wf_args = next(t["awx.awx.workflow_job_template"] for t in tasks.values() if "awx.awx.workflow_job_template" in t)
    problems = []
    for jt in job_templates:
        for key in jt:
            if jt_args.get(key) != "{{ item.%s | default(omit) }}" % key:
                problems.append("job template %s: %s is not passed by configure.yml" % (jt["name"], key))
    for key in workflow:
        if wf_args.get(key) != "{{ nodowntime_awx_workflow.%s | default(omit) }}" % key:
            problems.append("workflow: %s is not passed by configure.yml" % key)
    return problems


# --- surveys ------------------------------------------------------------------------------------

SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def survey_rule_problems(survey):
    """What AWX refuses when a survey is saved (awx/api/views: the survey spec validation)."""
    problems = []
    for key in ("name", "description", "spec"):
        if key not in survey:
            problems.append("survey lacks %s" % key)
    if not survey.get("spec"):
        problems.append("survey has no questions")
    seen = set()
    for q in survey.get("spec", []):
        var = q.get("variable")
        for key in ("question_name", "variable", "type", "required"):
            if key not in q:
                problems.append("%s: lacks %s" % (var, key))
            elif not isinstance(q[key], bool if key == "required" else str):
                problems.append("%s: %s must be a %s" % (var, key, "boolean" if key == "required" else "string"))
        for key in ("min", "max"):
            if q.get(key) is not None and not _is_int(q[key]):
                problems.append("%s: %s must be an integer" % (var, key))
        if var in seen:
            problems.append("%s: asked twice" % var)
        seen.add(var)
        kind, default = q.get("type"), q.get("default")
        if kind not in SURVEY_TYPES:
            problems.append("%s: type %r is not a survey type" % (var, kind))
        if kind in ("multiplechoice", "multiselect"):
            choices = q.get("choices")
            if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
                problems.append("%s: choices must be a list of strings" % var)
            elif default not in (None, "") and default not in choices:
                problems.append("%s: default %r is not a choice" % (var, default))
        if kind == "integer" and default not in (None, "") and not _is_int(default):
            problems.append("%s: default %r is not an integer" % (var, default))
        if kind == "float" and default not in (None, "") and not (_is_int(default) or isinstance(default, float)):
            problems.append("%s: default %r is not a number" % (var, default))
        if kind in ("text", "textarea", "password") and default not in (None, ""):
            if not isinstance(default, str):
                problems.append("%s: default %r is not a string" % (var, default))
            elif not q.get("min", 0) <= len(default) <= q.get("max", 1024):
                problems.append("%s: default %r is outside min..max length" % (var, default))
        if kind in ("integer", "float") and default not in (None, ""):
            if not q.get("min", default) <= default <= q.get("max", default):
                problems.append("%s: default %r is outside min..max" % (var, default))
    return problems


def _roles_options():
    options = {}
    roles = os.path.join(REPO, "roles")
    for role in sorted(os.listdir(roles)):
        path = os.path.join(roles, role, "meta", "argument_specs.yml")
        if os.path.isfile(path):
            with open(path) as f:
                for entry in yaml.safe_load(f)["argument_specs"].values():
                    for name, spec in entry.get("options", {}).items():
                        options.setdefault(name, spec)
    return options


def _client_side_variables():
    """Client host variables the cutover reads from hostvars (documented, not role options).

    cutover_method: its choices are the branches of the cutover's plan, its default the one the
    plan falls back to (roles/cutover/templates/plan.json.j2).
    """
    with open(os.path.join(REPO, "roles", "cutover", "templates", "plan.json.j2")) as f:
        plan = f.read()
    default = re.search(r"hv\.cutover_method \| default\('(\w+)'\)", plan).group(1)
    choices = re.findall(r"method == '(\w+)'", plan)
    return {"cutover_method": {"type": "str", "choices": choices, "default": default}}


def playbook_variables():
    """Every variable the migration and backup playbooks read, with its spec."""
    with open(os.path.join(REPO, "playbooks", "vars", "migration_settings.yml")) as f:
        known = dict(yaml.safe_load(f)["migration_settings_spec"])
    for name, spec in _roles_options().items():
        known.setdefault(name, spec)
    known.update(_client_side_variables())
    return known


# Settings of list type that the playbooks also take as one string, a pattern a line (how an AWX
# textarea answers): playbooks/migration_pairs.yml splits it; test_a_textarea_answer_... proves it.
TEXTAREA_LISTS = {"migration_exclude"}

# A question without a default sends nothing unless answered, so the inventory's value applies;
# its description says what applies then: "Empty: the inventory's VAR, else VALUE." (or "each
# client's own VAR" for a client setting), VALUE the playbooks' default.
EMPTY_MEANS = re.compile(r"Empty: (?:the inventory's|each client's own) (\w+), else (\S+?)[ .]")


def _stated_default(question):
    """The playbooks' default as a question without a default states it, or a problem."""
    found = EMPTY_MEANS.search(question.get("question_description", ""))
    if not found or found.group(1) != question["variable"]:
        return None, "%s: has no default, and its description does not say what applies when left empty" % (
            question["variable"])
    if question.get("required"):
        return None, "%s: has no default but is required" % question["variable"]
    return found.group(2), None


COMPATIBLE = {
    "integer": {"int", "float", "raw"},
    "float": {"float", "raw"},
    "text": {"str", "path", "raw"},
    "password": {"str", "raw"},
    "multiplechoice": {"str", "bool", "raw"},
}


def _as_sent(question, answer):
    """The value the playbook gets for `answer`, as the playbook converts it."""
    if question["type"] == "textarea" and question["variable"] in TEXTAREA_LISTS:
        return [line for line in answer.splitlines() if line.strip()]
    return answer


def _same(stype, value, expected):
    if stype == "bool":
        return boolean(value) == expected
    if stype == "float":
        return float(value) == float(expected)
    return value == expected


def question_problems(question, known):
    var, kind = question["variable"], question["type"]
    if var not in known:
        return ["%s: no playbook reads this variable" % var]
    spec = known[var]
    stype = spec.get("type", "str")
    problems = []
    compatible = COMPATIBLE.get(kind, set()) | ({"list"} if kind == "textarea" and var in TEXTAREA_LISTS else set())
    if kind == "textarea" and var not in TEXTAREA_LISTS:
        compatible = {"str", "raw"}
    if stype not in compatible:
        problems.append("%s: a %s question cannot answer a %s setting" % (var, kind, stype))
        return problems
    answers = []
    if kind == "multiplechoice":
        if "choices" in spec and not set(question["choices"]) <= set(spec["choices"]):
            problems.append("%s: choices %s are not all among %s" % (var, question["choices"], spec["choices"]))
        if stype == "bool":
            for choice in question["choices"]:
                try:
                    boolean(choice)
                except TypeError:
                    problems.append("%s: choice %r is not a boolean" % (var, choice))
        answers += question["choices"]
    expected = spec.get("default")
    if question.get("default") in (None, ""):
        stated, problem = _stated_default(question)
        if stated is not None and stype not in ("str", "path"):
            stated = yaml.safe_load(stated)
        if problem:
            problems.append(problem)
        elif not _same(stype, stated, expected):
            problems.append("%s: the description says %r applies when left empty, the playbooks' default is %r"
                            % (var, stated, expected))
    else:
        default = question["default"]
        answers.append(default)
        if not _same(stype, _as_sent(question, default), expected):
            problems.append("%s: survey default %r is not the playbooks' default %r" % (var, default, expected))
    single = {var: {k: v for k, v in spec.items() if k in ("type", "elements", "choices")}}
    for answer in answers:
        for error in ArgumentSpecValidator(single).validate({var: _as_sent(question, answer)}).errors:
            problems.append("%s: answer %r: %s" % (var, answer, error))
    return problems


def _surveys():
    surveys = [(jt["name"], jt["survey_spec"]) for jt in JOB_TEMPLATES if jt.get("survey_enabled")]
    return surveys + [(WORKFLOW["name"], WORKFLOW["survey_spec"])]


SURVEYS = _surveys() if AWX_ROOT else []


def test_every_template_with_a_survey_enabled_has_one_and_the_others_none():
    for jt in JOB_TEMPLATES + [WORKFLOW]:
        assert bool(jt.get("survey_enabled")) == bool(jt.get("survey_spec", {}).get("spec")), jt["name"]


@pytest.mark.parametrize("index", range(len(SURVEYS)), ids=[s[0] for s in SURVEYS])
def test_survey_follows_awx_rules(index):
    assert survey_rule_problems(SURVEYS[index][1]) == []


@pytest.mark.parametrize("index", range(len(SURVEYS)), ids=[s[0] for s in SURVEYS])
def test_survey_questions_ask_for_what_the_playbooks_read(index):
    known = playbook_variables()
    problems = [p for q in SURVEYS[index][1]["spec"] for p in question_problems(q, known)]
    assert problems == []


def test_the_surveys_ask_what_was_asked_for():
    asked = {q["variable"] for name, survey in SURVEYS for q in survey["spec"]}
    assert asked == {"migration_bwlimit", "migration_workers", "migration_exclude", "cutover_max_downtime",
                     "migration_verify_allow_differences", "cutover_method", "redis_backup_run_now"}


def _question(var):
    return copy.deepcopy(next(q for name, survey in SURVEYS for q in survey["spec"] if q["variable"] == var))


@pytest.mark.parametrize("change, expected", [
    (lambda q: q.update(variable="migration_bwlimt"), "no playbook reads this variable"),
    (lambda q: q.update(type="integer", default=0), "cannot answer a str setting"),
    (lambda q: q.update(default="10MiB"), "is not the playbooks' default"),
])
def test_a_bad_bwlimit_question_is_caught(change, expected):
    question = _question("migration_bwlimit")
    change(question)
    assert expected in " ".join(question_problems(question, playbook_variables()))


@pytest.mark.parametrize("var, change, expected", [
    ("migration_workers", lambda q: q.update(type="text", default="1"), "cannot answer a int setting"),
    ("migration_workers", lambda q: q.update(default=4), "is not the playbooks' default"),
    ("cutover_method", lambda q: q.update(choices=["mount", "nfs"]), "are not all among"),
    ("cutover_method", lambda q: q.update(question_description="Empty: each client's own cutover_method, else tasks."),
     "the description says 'tasks' applies"),
    ("cutover_method", lambda q: q.update(question_description="How the clients switch."), "does not say what applies"),
    ("cutover_method", lambda q: q.update(required=True), "has no default but is required"),
    ("cutover_method", lambda q: q.update(default="mount"), None),  # the plan's own default: fine
    ("migration_workers", lambda q: q.update(default=1), None),  # the playbooks' default: fine
    ("migration_exclude", lambda q: q.update(default=""), None),  # [] as the playbooks take it: fine
    ("migration_exclude", lambda q: q.update(default="cache/"), "is not the playbooks' default"),
    ("migration_verify_allow_differences", lambda q: q.update(choices=["false", "sometimes"]), "not a boolean"),
    ("migration_verify_allow_differences", lambda q: q.update(default="true"), "is not the playbooks' default"),
    ("cutover_max_downtime", lambda q: q.update(type="integer"), None),  # an int is a fine float
    ("cutover_max_downtime", lambda q: q.update(type="text", default="60"), "cannot answer a float setting"),
    ("migration_exclude", lambda q: q.update(variable="migration_workers"), "cannot answer a int setting"),
])
def test_a_bad_question_is_caught(var, change, expected):
    question = _question(var)
    change(question)
    problems = question_problems(question, playbook_variables())
    if expected is None:
        assert problems == []
    else:
        assert expected in " ".join(problems), problems


def test_a_textarea_for_a_list_setting_needs_the_playbooks_to_split_it():
    question = _question("migration_exclude")
    problems = question_problems(question, playbook_variables())
    assert problems == []
    TEXTAREA_LISTS.discard("migration_exclude")
    try:
        assert "cannot answer a list setting" in " ".join(question_problems(question, playbook_variables()))
    finally:
        TEXTAREA_LISTS.add("migration_exclude")


def _one_question(**question):
    return {"name": "x", "description": "", "spec": [dict({"question_name": "a", "variable": "v"}, **question)]}


@pytest.mark.parametrize("survey, expected", [
    (_one_question(type="bool", required=True), "not a survey type"),
    (_one_question(type="multiplechoice", required=True, choices=["a"], default="b"), "not a choice"),
    (_one_question(type="integer", required=True, default="1"), "not an integer"),
    (dict(_one_question(type="text", required=True), spec=_one_question(type="text", required=True)["spec"] * 2),
     "asked twice"),
    ({"name": "x", "spec": [{"variable": "v", "type": "text", "required": True}]}, "lacks"),
    (_one_question(type="float", required="yes"), "required must be a boolean"),
    (_one_question(type="float", required=False, max=0.5), "max must be an integer"),
    ({"name": "x", "description": "", "spec": []}, "no questions"),
])
def test_a_survey_awx_would_refuse_is_caught(survey, expected):
    assert expected in " ".join(survey_rule_problems(survey))


# --- the workflow graph -------------------------------------------------------------------------

EDGES = ("success_nodes", "failure_nodes", "always_nodes")
PHASES = ["prepare", "initial_sync", "replicate", "verify"]


def graph_problems(workflow, job_templates):
    nodes = workflow["workflow_nodes"]
    by_id = {}
    problems = []
    for node in nodes:
        if node["identifier"] in by_id:
            problems.append("identifier %s is used twice" % node["identifier"])
        by_id[node["identifier"]] = node
    edges = {i: {kind: [n["identifier"] for n in node.get("related", {}).get(kind, [])] for kind in EDGES}
             for i, node in by_id.items()}
    for i, kinds in edges.items():
        for kind, targets in kinds.items():
            problems += ["%s.%s names %s, which is no node" % (i, kind, t) for t in targets if t not in by_id]
    if problems:
        return problems
    templates = {jt["name"]: jt for jt in job_templates}
    for i, node in by_id.items():
        ujt = node["unified_job_template"]
        if ujt.get("type") == "job_template" and ujt["name"] not in templates:
            problems.append("%s runs %r, which is no job template defined here" % (i, ujt["name"]))
        elif ujt.get("type") not in ("job_template", "workflow_approval"):
            problems.append("%s: unexpected type %r" % (i, ujt.get("type")))
    if problems:
        return problems

    def tags(i):
        ujt = by_id[i]["unified_job_template"]
        return templates[ujt["name"]].get("job_tags") if ujt["type"] == "job_template" else None

    def template(i):
        ujt = by_id[i]["unified_job_template"]
        return templates.get(ujt["name"]) if ujt["type"] == "job_template" else None

    parents = {i: [(p, kind) for p in by_id for kind in EDGES if i in edges[p][kind]] for i in by_id}
    roots = [i for i in by_id if not parents[i]]
    # The success path from the single root: the phases in order, then approval, then cutover.
    if len(roots) != 1:
        problems.append("the workflow must start at one node, not %s" % roots)
    else:
        path, current = [], roots[0]
        while current is not None and current not in path:
            path.append(current)
            nexts = edges[current]["success_nodes"]
            current = nexts[0] if len(nexts) == 1 else None
        kinds = [tags(i) or by_id[i]["unified_job_template"]["type"] for i in path]
        if kinds != PHASES + ["workflow_approval", "cutover"]:
            problems.append("on success the workflow runs %s, not %s" % (kinds, PHASES + ["workflow_approval", "cutover"]))
    cutovers = [i for i in by_id if tags(i) == "cutover"]
    for cut in cutovers:
        for parent, kind in parents[cut]:
            if by_id[parent]["unified_job_template"]["type"] != "workflow_approval" or kind != "success_nodes":
                problems.append("%s can start without an approval (from %s on %s)" % (cut, parent, kind))
        if not parents[cut]:
            problems.append("%s can start without an approval" % cut)
        rollbacks = [t for t in edges[cut]["failure_nodes"]
                     if template(t) is not None and template(t)["playbook"] == "rollback.yml"]
        if not rollbacks:
            problems.append("a failed %s does not run the rollback" % cut)
        if edges[cut]["always_nodes"]:
            problems.append("%s has always_nodes: nothing may follow a cutover whatever its outcome" % cut)
    if not cutovers:
        problems.append("the workflow has no cutover")
    # Nothing but the cutover's failure leads to the rollback.
    for i in by_id:
        tpl = template(i)
        if tpl is not None and tpl["playbook"] == "rollback.yml":
            for parent, kind in parents[i]:
                if tags(parent) != "cutover" or kind != "failure_nodes":
                    problems.append("the rollback also runs after %s on %s" % (parent, kind))
    return problems


def test_workflow_graph():
    assert graph_problems(WORKFLOW, JOB_TEMPLATES) == []


def _node(workflow, identifier):
    return next(n for n in workflow["workflow_nodes"] if n["identifier"] == identifier)


@pytest.mark.parametrize("breaks, expected", [
    (lambda wf: wf["workflow_nodes"].append(copy.deepcopy(wf["workflow_nodes"][0])), "used twice"),
    (lambda wf: _node(wf, "verify")["related"].update(success_nodes=[{"identifier": "aprove"}]), "which is no node"),
    (lambda wf: _node(wf, "replicate")["unified_job_template"].update(name="Storage migration 3 - replicat"),
     "no job template defined here"),
    # the approval left out: verify straight to the cutover
    (lambda wf: _node(wf, "verify")["related"].update(success_nodes=[{"identifier": "cutover"}]),
     "without an approval"),
    # the rollback on the cutover's success instead of its failure
    (lambda wf: _node(wf, "cutover")["related"].update(failure_nodes=[], success_nodes=[{"identifier": "rollback"}]),
     "does not run the rollback"),
    # phases swapped
    (lambda wf: (_node(wf, "prepare")["related"].update(success_nodes=[{"identifier": "replicate"}]),
                 _node(wf, "replicate")["related"].update(success_nodes=[{"identifier": "initial_sync"}]),
                 _node(wf, "initial_sync")["related"].update(success_nodes=[{"identifier": "verify"}])),
     "on success the workflow runs"),
    (lambda wf: _node(wf, "verify")["related"].update(failure_nodes=[{"identifier": "rollback"}]),
     "the rollback also runs after verify"),
])
def test_a_bad_workflow_graph_is_caught(breaks, expected):
    broken = copy.deepcopy(WORKFLOW)
    breaks(broken)
    assert expected in " ".join(graph_problems(broken, JOB_TEMPLATES))


def test_the_approval_expires_before_the_verify_does():
    """The cutover refuses a verify older than cutover_verify_max_age: an approval that may take longer is useless."""
    approval = next(n for n in WORKFLOW["workflow_nodes"] if n["unified_job_template"]["type"] == "workflow_approval")
    timeout = approval["unified_job_template"]["timeout"]
    assert 0 < timeout < playbook_variables()["cutover_verify_max_age"]["default"]


# --- playbooks and tags -------------------------------------------------------------------------

def collection_playbook_tags(name, seen=None):
    """Tags of the plays of playbooks/NAME.yml, through its imports of nodowntime.storage playbooks."""
    seen = seen if seen is not None else set()
    if name in seen:
        return set()
    seen.add(name)
    with open(os.path.join(REPO, "playbooks", name + ".yml")) as f:
        plays = yaml.safe_load(f)
    tags = set()
    for play in plays:
        tags.update(play.get("tags", []))
        imported = play.get("ansible.builtin.import_playbook") or play.get("import_playbook")
        if imported and imported.startswith("nodowntime.storage."):
            tags |= collection_playbook_tags(imported.split(".")[-1], seen)
    return tags - {"always", "never"}


def project_imports(playbook):
    with open(os.path.join(PROJECT, playbook)) as f:
        plays = yaml.safe_load(f)
    return [p["ansible.builtin.import_playbook"] for p in plays]


def playbook_problems(job_templates):
    problems = []
    for jt in job_templates:
        if not os.path.isfile(os.path.join(PROJECT, jt["playbook"])):
            problems.append("%s: %s is not in awx/project" % (jt["name"], jt["playbook"]))
            continue
        tags = set(filter(None, (jt.get("job_tags") or "").split(",")))
        if tags:
            imports = project_imports(jt["playbook"])
            available = set().union(*(collection_playbook_tags(i.split(".")[-1]) for i in imports))
            if not tags <= available:
                problems.append("%s: job_tags %s are not tags of %s (%s)"
                                % (jt["name"], sorted(tags - available), jt["playbook"], sorted(available)))
    return problems


def test_migrate_tags_are_the_phases():
    assert {"prepare", "initial_sync", "replicate", "verify", "cutover", "finish"} <= collection_playbook_tags("migrate")


def test_each_job_template_runs_a_project_playbook_with_real_tags():
    assert playbook_problems(JOB_TEMPLATES) == []
    phases = {jt.get("job_tags") for jt in JOB_TEMPLATES if jt["playbook"] == "migrate.yml"}
    assert phases == {"prepare", "initial_sync", "replicate", "verify", "cutover", "finish"}
    assert {jt["playbook"] for jt in JOB_TEMPLATES} == {"migrate.yml", "rollback.yml", "redis_backup.yml"}


@pytest.mark.parametrize("change, expected", [
    ({"playbook": "migration.yml"}, "is not in awx/project"),
    ({"job_tags": "initial_sync,cut_over"}, "['cut_over'] are not tags"),
])
def test_a_bad_playbook_or_tag_is_caught(change, expected):
    broken = [dict(JOB_TEMPLATES[1], **change)]
    assert expected in " ".join(playbook_problems(broken))


@pytest.mark.parametrize("playbook", sorted(p for p in os.listdir(PROJECT) if p.endswith(".yml")))
def test_project_playbooks_import_collection_playbooks(playbook):
    for imported in project_imports(playbook):
        assert imported.startswith("nodowntime.storage.")
        target = os.path.join(REPO, "playbooks", imported.split(".")[-1] + ".yml")
        assert os.path.isfile(target), "%s imports %s: %s is missing" % (playbook, imported, target)


def test_project_installs_the_collections_it_needs():
    with open(os.path.join(PROJECT, "collections", "requirements.yml")) as f:
        names = [c["name"] for c in yaml.safe_load(f)["collections"]]
    assert any(n.endswith("nodowntime/storage.git") or n == "nodowntime.storage" for n in names)
    assert "ansible.posix" in names


# --- the textarea answer reaches the playbooks as a list ---------------------------------------

@pytest.mark.functional
@pytest.mark.parametrize("answer, expected", [
    ("cache/\n*.tmp\r\n\n  \nlogs/old,2024/", ["cache/", "*.tmp", "logs/old,2024/"]),  # a textarea answer
    ("", []),                                                                          # left empty
    (["a/", "b,c"], ["a/", "b,c"]),                                                    # a list, as before
])
def test_a_textarea_answer_for_migration_exclude_reaches_the_playbooks_as_a_list(tmp_path, answer, expected):
    """migration_pairs.yml turns the survey's one string into the list every phase uses."""
    inventory = tmp_path / "inventory.ini"
    python = sys.executable
    inventory.write_text(
        "[storage_old]\nold ansible_connection=local ansible_python_interpreter=%s migration_new_host=new\n"
        "[storage_new]\nnew ansible_connection=local ansible_python_interpreter=%s\n" % (python, python))
    playbook = tmp_path / "check.yml"
    playbook.write_text(
        "- ansible.builtin.import_playbook: nodowntime.storage.migration_pairs\n"
        "- hosts: storage_old\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.copy:\n        content: '{{ migration_pair.exclude | to_json }}'\n"
        "        dest: '%s'\n      delegate_to: localhost\n" % (tmp_path / "exclude.json"))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.pathsep.join(_collection_roots()),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    run = subprocess.run(
        [os.path.join(os.path.dirname(python), "ansible-playbook"), "-i", str(inventory), str(playbook),
         "-e", json.dumps({"migration_exclude": answer})],
        env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert json.loads((tmp_path / "exclude.json").read_text()) == expected


# --- configure.yml end to end, against a stand-in for awx.awx ----------------------------------

# Each stand-in module takes exactly the real module's argument spec (with the connection options
# ControllerModule adds), so Ansible checks what configure.yml passes as the real module would,
# then records the parameters instead of calling an AWX.
_STAND_IN = '''#!/usr/bin/python
from __future__ import annotations
import json, os
from ansible.module_utils.basic import AnsibleModule
NAME = %r
def main():
    with open(os.environ["STAND_IN_SPECS"]) as f:
        kwargs = json.load(f)[NAME]
    module = AnsibleModule(supports_check_mode=True, **kwargs)
    with open(os.environ["STAND_IN_RECORD"], "a") as f:
        f.write(json.dumps({"module": NAME, "params": module.params}) + "\\n")
    module.exit_json(changed=True)
if __name__ == "__main__":
    main()
'''
_CONFIGURE_MODULES = ["inventory", "group", "credential", "execution_environment", "project", "job_template",
                      "workflow_job_template"]


def _json_spec(spec):
    """An argument spec without what JSON cannot carry (env fallbacks; the test sets no such variable)."""
    out = {}
    for name, entry in spec.items():
        entry = {k: v for k, v in entry.items() if k != "fallback"}
        if "options" in entry:
            entry["options"] = _json_spec(entry["options"])
        out[name] = entry
    return out


def _run_configure(tmp_path, *extra):
    """configure.yml run for real against the stand-in: (the run, the recorded module calls)."""
    from ansible_collections.awx.awx.plugins.module_utils.controller_api import ControllerModule
    stand_in = tmp_path / "collections" / "ansible_collections" / "awx" / "awx"
    (stand_in / "plugins" / "modules").mkdir(parents=True)
    (stand_in / "meta").mkdir()
    (stand_in / "meta" / "runtime.yml").write_text(
        yaml.safe_dump({"requires_ansible": ">=2.15.0", "action_groups": {"controller": _CONFIGURE_MODULES}}))
    (stand_in / "galaxy.yml").write_text("namespace: awx\nname: awx\nversion: 0.0.1\n")
    specs = {}
    for name in _CONFIGURE_MODULES:
        kwargs = dict(awx_module_spec(name)[1])
        kwargs["argument_spec"] = _json_spec(dict(ControllerModule.AUTH_ARGSPEC, **kwargs["argument_spec"]))
        specs[name] = kwargs
        (stand_in / "plugins" / "modules" / (name + ".py")).write_text(_STAND_IN % name)
    (tmp_path / "specs.json").write_text(json.dumps(specs))
    record = tmp_path / "record.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROLLER_", "TOWER_"))}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "collections"), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), STAND_IN_SPECS=str(tmp_path / "specs.json"),
               STAND_IN_RECORD=str(record))
    python = sys.executable
    run = subprocess.run(
        [os.path.join(os.path.dirname(python), "ansible-playbook"), os.path.join(AWX_DIR, "configure.yml"),
         "-i", "localhost,", "-e", "ansible_python_interpreter=%s" % python,
         "-e", "@" + os.path.join(AWX_DIR, "vars", "site.example.yml"),
         "-e", "controller_host=https://awx.example.com", "-e", "controller_oauthtoken=not-a-token"] + list(extra),
        env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=300, check=False)
    calls = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return run, calls


@pytest.mark.functional
def test_configure_playbook_passes_the_checked_definitions(tmp_path):
    """configure.yml, run for real against the stand-in: each module gets what the checks above validated."""
    from ansible_collections.awx.awx.plugins.module_utils.controller_api import ControllerModule
    run, calls = _run_configure(tmp_path)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

    def given(params):
        return {k: v for k, v in params.items()
                if v is not None and k not in ControllerModule.AUTH_ARGSPEC and k != "controller_config_file"}

    for call in calls:
        assert call["params"]["controller_host"] == "https://awx.example.com", call["module"]
    by_module = {}
    for call in calls:
        by_module.setdefault(call["module"], []).append(call["params"])
    # What the job_template and workflow_job_template modules got is what the checks above validated
    # (the modules' own defaults, e.g. state, aside).
    got = [given(p) for p in by_module["job_template"]]
    assert [{k: v for k, v in g.items() if k in jt} for g, jt in zip(got, JOB_TEMPLATES)] == JOB_TEMPLATES
    assert all(set(g) - set(jt) <= {"state"} for g, jt in zip(got, JOB_TEMPLATES))
    wf = given(by_module["workflow_job_template"][0])
    assert {k: v for k, v in wf.items() if k in WORKFLOW} == WORKFLOW
    # The objects configure.yml only refers to are checked, never created.
    for name in ("inventory", "credential", "execution_environment", "group"):
        assert {p["state"] for p in by_module[name]} == {"exists"}, name
    assert sorted(p["name"] for p in by_module["group"]) == ["storage_clients", "storage_new", "storage_old"]
    assert by_module["project"][0]["scm_url"] == _load(os.path.join(AWX_DIR, "vars", "site.example.yml"))[
        "nodowntime_awx_project_scm_url"]


@pytest.mark.functional
def test_the_stand_in_refuses_what_the_real_module_would(tmp_path):
    run, calls = _run_configure(tmp_path, "-e", "nodowntime_awx_forks=many")
    assert run.returncode != 0
    assert "forks" in run.stdout and "int" in run.stdout, run.stdout[-3000:]
    assert "job_template" not in {c["module"] for c in calls}
