# nodowntime.storage developer entry points. Every target does its own set-up on a fresh
# Debian 12 machine (root): Debian packages, the virtualenv, test collections, lab image.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
BIN         := $(CURDIR)/$(VENV)/bin
COLLECTIONS := $(CURDIR)/.tmp/collections
ANSIBLE_VERSION_FOR_TEST_COLLECTIONS := 12.3.0
export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH := false

.PHONY: help host venv collections image test unit sanity lint molecule integration lab-up lab-down demo bench changelog ee clean

help:
	@echo "make test        every check: sanity, unit, ansible-lint, all Molecule scenarios"
	@echo "make demo        a real zero-downtime migration between the lab hosts (KEEP_LAB=1 leaves them up)"
	@echo "make unit | sanity | lint | molecule | integration [TARGETS='a b']"
	@echo "make lab-up | lab-down   start or remove the lab hosts (old, new, client) by hand"
	@echo "make ee          the execution environment for AWX (localhost/nodowntime-ee:current)"
	@echo "make bench       benchmarks side by side with rsync, cp and stock lsyncd (QUICK=1: a smoke run, about 8 minutes)"

host:
	@bash tests/lab/prepare-host.sh

$(VENV)/.installed: requirements-dev.txt
	@test -x $(BIN)/python || python3 -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: host $(VENV)/.installed

# The collection index is not reachable from the project's machines: the test-only
# collections come out of the `ansible` community package wheel on PyPI.
# The marker names the script's hash: a changed script (another collection) installs again.
COLLECTIONS_MARKER := $(COLLECTIONS)/.installed-$(ANSIBLE_VERSION_FOR_TEST_COLLECTIONS)-$(shell sha256sum tests/lab/install-test-collections.sh | cut -c1-12)
$(COLLECTIONS_MARKER): | $(VENV)/.installed
	@bash tests/lab/install-test-collections.sh $(ANSIBLE_VERSION_FOR_TEST_COLLECTIONS) $(COLLECTIONS)
	@touch $@

collections: venv $(COLLECTIONS_MARKER)

image: host
	@bash tests/lab/build-image.sh

# The execution environment of ee/execution-environment.yml, built with ansible-builder and
# Podman from this checkout (localhost/nodowntime-ee:current); docs/awx.md.
ee: venv collections
	@bash tests/ee/build.sh

test: venv collections image ee
	@bash tests/run-all.sh

unit: venv collections
	@bash tests/run-all.sh unit

sanity: venv collections
	@bash tests/run-all.sh sanity

lint: venv collections
	@bash tests/run-all.sh lint

molecule: venv collections image ee
	@bash tests/run-all.sh molecule integration

integration: venv collections image
	@TARGETS="$(TARGETS)" bash tests/run-all.sh integration

# Results in bench/results/DATE.json, charts in docs/images/bench/ (see docs/performance.md).
bench: venv collections image
	@$(BIN)/python bench/run.py $(if $(QUICK),--quick) $(if $(CASES),--cases $(CASES))

# CHANGELOG.rst of the upcoming release (galaxy.yml's version) from changelogs/fragments. The
# fragments stay until the release: antsibull-changelog releases in a throw-away copy of what it
# reads, and only CHANGELOG.rst comes back (CHANGELOG_OUT=FILE writes it there instead; the
# unit tests compare that with the committed one).
CHANGELOG_OUT ?= $(CURDIR)/CHANGELOG.rst
changelog: venv
	@work=$$(mktemp -d) && trap 'rm -rf "$$work"' EXIT && \
	  copy=$$work/ansible_collections/nodowntime/storage && mkdir -p "$$copy" && \
	  cp -a galaxy.yml changelogs meta plugins roles playbooks "$$copy/" && \
	  rm -f "$$copy/changelogs/.plugin-cache.yaml" && \
	  (cd "$$copy" && ANSIBLE_COLLECTIONS_PATH="$$work" antsibull-changelog release --reload-plugins) && \
	  cp "$$copy/CHANGELOG.rst" "$(CHANGELOG_OUT)" && \
	  echo "$(CHANGELOG_OUT): the release notes of $$(sed -n 's/^version: *//p' galaxy.yml), from $$(ls changelogs/fragments | wc -l) fragments"

lab-up: venv collections image
	@molecule create -s lab
	@echo "lab hosts are up: old 10.213.7.11, new 10.213.7.12, client 10.213.7.13"
	@echo "  ssh -i $(CURDIR)/.tmp/lab/id_ed25519 root@10.213.7.12    (make lab-down removes them)"

lab-down: venv collections
	@molecule destroy -s lab

demo: venv collections image
	@bash tests/run-all.sh demo

clean:
	rm -rf .tmp $(VENV)
