#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Runs the project's checks and ends with one line `N passed, N failed` summing all of them.
#   tests/run-all.sh                 every stage
#   tests/run-all.sh unit lint ...   only those stages (sanity unit lint build molecule integration)
#   tests/run-all.sh demo            the main job: the migration scenario, shown as it runs
# Called by make, which has already set up the venv, test collections and lab image.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo" || exit 1
results=$(mktemp)
failures=$(mktemp)  # short excerpts of what failed, printed again just before the final line
logs="$repo/.tmp/logs"
mkdir -p "$logs"
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(sanity unit lint build molecule integration)

record() {  # record <passed> <failed> <label>
  echo "$1 $2" >>"$results"
  printf '== %-28s %s passed, %s failed\n' "$3" "$1" "$2"
}

excerpt() {  # excerpt <label> <log>: the lines that say why, kept for the closing summary
  {
    echo "-- $1 ($2)"
    # Molecule frames its output in colours and box drawing: strip both before looking.
    sed -E 's/\x1b\[[0-9;]*m//g; s/^ *│ ?//' "$2" |
      grep -E '^(FAILED|ERROR|FATAL|CRITICAL|E  )|fatal:|FAILED!|failed=[1-9]|Traceback|"msg":|msg:' |
      grep -v 'FAILED - RETRYING' | head -n 25
  } | tee -a "$failures"
}

lab_cleanup() {
  # Only what our lab created carries the nodowntime-lab label or the lab network's name.
  podman ps -aq --filter label=nodowntime-lab | xargs -r podman rm -f >/dev/null 2>&1
  podman network ls -q --filter name='^nodowntime-lab$' | xargs -r podman network rm >/dev/null 2>&1
  return 0
}

stage_sanity() {
  local stage="$repo/.tmp/sanity/ansible_collections/nodowntime/storage" log="$logs/sanity.log"
  mkdir -p "$stage"
  rsync -a --delete --exclude-from=<(printf '%s\n' .venv .tmp .git .pytest_cache __pycache__ tests/output) ./ "$stage/"
  # ansible-test considers the files git knows of, and bootstraps pip from a host we cannot
  # reach: give it a throwaway git index and a stand-in bootstrap script.
  (cd "$stage" && rm -rf .git && git init -q && git add -A)
  local pipver
  pipver=$(python -c "from ansible_test._internal.python_requirements import get_venv_packages as g; import inspect, re; print(re.search(r\"pip='([0-9.]+)'\", inspect.getsource(g)).group(1))")
  mkdir -p ~/.ansible/test/cache
  cp tests/lab/get-pip-offline.py ~/.ansible/test/cache/"get_pip_${pipver//./_}.py"
  (cd "$stage" && timeout 1200 ansible-test sanity --python 3.11 --requirements --color no) >"$log" 2>&1
  local rc=$? total failed
  total=$(grep -c '^Running sanity test' "$log")
  # ansible-test's closing line counts the failed tests; if it never got there (a crash),
  # count the tests that reported issues, plus one for the crash.
  failed=$(sed -nE 's/^(ERROR|FATAL): The ([0-9]+) sanity test\(s\) listed below \(out of [0-9]+\) failed.*/\2/p' "$log")
  if [ -z "$failed" ]; then
    failed=$(grep -oE '^ERROR: Found [0-9]+ [a-z0-9-]+ issue' "$log" | awk '{print $4}' | sort -u | wc -l)
    [ "$rc" -ne 0 ] && failed=$((failed + 1))
  fi
  [ "$total" -lt "$failed" ] && total=$failed
  [ "$failed" -gt 0 ] && excerpt "ansible-test sanity" "$log"
  record $((total - failed)) "$failed" "ansible-test sanity"
}

stage_unit() {
  local xml="$repo/.tmp/unit.xml"
  timeout 1200 python -m pytest -q -p no:cacheprovider --junitxml="$xml" tests/unit >"$logs/unit.log" 2>&1 ||
    excerpt "pytest unit" "$logs/unit.log"
  tail -n 1 "$logs/unit.log"
  python - "$xml" >>"$results" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    print("0 1"); sys.exit()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
tests = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(tests - bad - skipped, bad if tests else 1)
PY
  printf '== %-28s %s\n' "pytest unit" "$(tail -n1 "$results" | awk '{print $1" passed, "$2" failed"}')"
}

stage_lint() {
  if timeout 900 ansible-lint --profile production --offline >"$logs/ansible-lint.log" 2>&1; then
    record 1 0 "ansible-lint (production)"
  else
    { echo "-- ansible-lint ($logs/ansible-lint.log)"; tail -25 "$logs/ansible-lint.log"; } | tee -a "$failures"
    record 0 1 "ansible-lint (production)"
  fi
}

stage_build() {
  local out="$repo/.tmp/build" ok=1
  rm -rf "$out" && mkdir -p "$out/installed"
  { ansible-galaxy collection build --force --output-path "$out" . &&
    ansible-galaxy collection install --offline --no-deps --force -p "$out/installed" "$out"/nodowntime-storage-*.tar.gz &&
    ANSIBLE_COLLECTIONS_PATH="$out/installed" ansible-doc -l nodowntime.storage; } >"$logs/build.log" 2>&1 || ok=0
  if [ $ok -eq 1 ]; then record 1 0 "galaxy build/install/doc"; else excerpt "galaxy build" "$logs/build.log"; record 0 1 "galaxy build/install/doc"; fi
}

holding_lab=0
with_lab_lock() {
  exec 9>/run/lock/nodowntime-lab.lock
  flock 9
  holding_lab=1
  lab_cleanup
  "$@"
  lab_cleanup
  holding_lab=0
  flock -u 9
}

molecule_scenarios() {
  local s
  for s in molecule/*/molecule.yml; do
    s=$(basename "$(dirname "$s")")
    # integration: the targets' hosts (integration stage); bench*: the labs of `make bench`
    case "$s" in integration | bench*) continue ;; esac
    if timeout 1800 molecule test -s "$s" >"$logs/molecule-$s.log" 2>&1; then
      record 1 0 "molecule $s"
    else
      excerpt "molecule $s" "$logs/molecule-$s.log"
      record 0 1 "molecule $s"
    fi
  done
}

integration_targets() {
  local targets=() t host
  read -r -a targets <<<"${TARGETS:-}"
  if [ ${#targets[@]} -eq 0 ]; then
    for t in tests/integration/targets/*/; do
      t=$(basename "$t")
      case "$t" in setup_*|prepare_*) continue ;; esac
      grep -qx 'disabled' "tests/integration/targets/$t/aliases" 2>/dev/null && continue
      targets+=("$t")
    done
  fi
  if ! timeout 600 molecule create -s integration >"$logs/integration-create.log" 2>&1; then
    excerpt "integration lab create" "$logs/integration-create.log"
    record 0 ${#targets[@]} "integration lab create"
    return
  fi
  for t in "${targets[@]}"; do
    host=$(sed -n 's#^lab_host/##p' "tests/integration/targets/$t/aliases" 2>/dev/null | head -n1)
    if NODOWNTIME_TARGET="$t" NODOWNTIME_TARGET_HOST="${host:-old}" \
        timeout 1200 molecule converge -s integration >"$logs/integration-$t.log" 2>&1; then
      record 1 0 "integration $t"
    else
      excerpt "integration $t" "$logs/integration-$t.log"
      record 0 1 "integration $t"
    fi
  done
  timeout 300 molecule destroy -s integration >"$logs/integration-destroy.log" 2>&1
}

demo_migration() {
  # The main job, shown as it runs: a live migration between the lab hosts old -> new while client
  # keeps writing (molecule/migration tells the story): molecule create, prepare and converge, which
  # runs playbooks/migrate.yml, every phase, the cutover included. Molecule's own output goes to
  # .tmp/logs/demo.log only; the terminal follows the plays, tasks and progress lines and ends with
  # what the migration did (tests/lab/demo-summary.py, from the report). The lab is removed at the
  # end unless KEEP_LAB=1.
  local log="$logs/demo.log" reports="$repo/.tmp/migration-reports" runner rc
  rm -rf "$reports"  # the report tells this run only
  : >"$log"
  echo "   molecule's whole output: ${log#"$repo"/}"
  (
    for step in destroy create prepare converge; do
      echo "== molecule $step -s migration"
      COLUMNS=200 timeout 1800 molecule "$step" -s migration || exit 1
    done
  ) >>"$log" 2>&1 &
  runner=$!
  # Colours and molecule's box drawing off; one line per play, the progress lines (the copy's,
  # lsyncd's catch-up and lag, the verify's), the cutover's downtime, and whatever failed.
  tail -n +1 -F --pid="$runner" "$log" 2>/dev/null |
    sed -u -E 's/\x1b\[[0-9;]*m//g; s/^ *[│┌└] ?//' |
    grep --line-buffered -E '^(== molecule |PLAY \[|fatal:|failed:)|FAILED!|^ERROR|^CRITICAL|^(ok|changed): .*(%|ETA [0-9]|caught up|event\(s\) queued| s\)$)|msg: .*(caught up|cut over: clients without storage)' |
    grep --line-buffered -v -E 'FAILED - RETRYING|glob failed|Validating arguments against arg spec|^(ok|skipping|changed): \[[^]]*\]$' |
    sed -u -E 's/^PLAY \[(.*)\]?.*$/  \1/; s/^TASK \[(.*)$/      \1/; s/\] \**$//; s/\]$//; s/^ *- /        /;
              s/nodowntime\.storage\.//; s/^(ok|changed): \[([^]]*)\] => \(item=(.*)\)$/        \2: \3/; s/^ *msg: \x27?/        /' |
    awk '/%/ && seen[$0]++ { next } { print; fflush() }'  # a poll may repeat the progress so far
  wait "$runner"
  rc=$?
  # Kept apart from .tmp/migration-reports, which the next lab run writes to.
  rm -rf "$repo/.tmp/demo-report"
  [ -d "$reports" ] && cp -a "$reports" "$repo/.tmp/demo-report"
  echo
  python tests/lab/demo-summary.py "$repo/.tmp/demo-report/report.json" --log "${log#"$repo"/}"
  if [ "$rc" -eq 0 ]; then
    record 1 0 "demo: migration old -> new"
  else
    excerpt "demo: migration old -> new" "$log"
    record 0 1 "demo: migration old -> new"
  fi
  if [ "${KEEP_LAB:-0}" = 1 ]; then
    echo "   KEEP_LAB=1: the lab stays up (old 10.213.7.11, new 10.213.7.12, client 10.213.7.13; make lab-down removes it)"
    # shellcheck disable=SC2317  # called by with_lab_lock, which removes the lab after the stage: not this time
    lab_cleanup() { return 0; }
  else
    timeout 300 molecule destroy -s migration >>"$log" 2>&1
  fi
}

trap '[ "$holding_lab" -eq 1 ] && lab_cleanup; rm -f "$results" "$failures"' EXIT
for stage in "${stages[@]}"; do
  echo "== stage: $stage (log: .tmp/logs/)"
  case "$stage" in
    sanity) stage_sanity ;;
    unit) stage_unit ;;
    lint) stage_lint ;;
    build) stage_build ;;
    molecule) with_lab_lock molecule_scenarios ;;
    integration) with_lab_lock integration_targets ;;
    demo) with_lab_lock demo_migration ;;
    *) echo "unknown stage $stage"; record 0 1 "$stage" ;;
  esac
done

if [ -s "$failures" ]; then
  echo "== what failed (whole logs in .tmp/logs/)"
  cat "$failures"
fi
read -r passed failed < <(awk '{p+=$1; f+=$2} END {print p+0, f+0}' "$results")
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
