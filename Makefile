# confab: the two commands a newcomer runs are `make run` and `make test`.
# Everything builds in release mode into one persistent target dir outside the clone, so that
# RocksDB's C++ (about 12 minutes cold on 2 cores) is compiled once per machine, not per clone.

export CARGO_TARGET_DIR ?= $(HOME)/.cache/confab-target
CARGO ?= cargo

.PHONY: run test build prereqs web chromium fmt clippy bench load check chaos client-tests client-tests-run client-tests-js client-tests-python client-tests-browser bench-web test-venv fuzz

prereqs:
	@if ! command -v clang >/dev/null 2>&1 || ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1; then \
		echo "installing libclang-dev and clang (needed by RocksDB's bindgen)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev clang; \
	fi

# The browser client (web/): type-checked and bundled into web/dist, which the release binary
# embeds (src/web.rs). Built before every cargo build so the binary serves the current page.
web:
	cd web && npm ci --no-audit --no-fund && npm run typecheck && npm run build

# Debian's Chromium for the browser tests (tests/browser), like libclang above.
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "installing chromium (the browser tests drive it)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

build: prereqs web
	$(CARGO) build --release --workspace

run: prereqs web
	$(CARGO) run --release --bin confab -- serve

test: prereqs test-venv web chromium
	$(CARGO) test --release --workspace
	$(MAKE) client-tests-run

# The real Mattermost client libraries against real confab processes (tests/clients/):
# @mattermost/client (npm ci, node --test) and mattermostdriver (venv, pytest). Each suite
# starts and stops its own nodes from $(CARGO_TARGET_DIR)/release/confab. `client-tests` builds
# that binary the way `make test` does (a plain `cargo build` resolves other features and
# would relink it every time the two alternate).
client-tests: prereqs web chromium
	$(CARGO) test --release --workspace --no-run
	$(MAKE) client-tests-run

client-tests-run: client-tests-js client-tests-python client-tests-browser

client-tests-js:
	cd tests/clients/js && npm ci --no-audit --no-fund && npm test

# The web client in headless Chromium (puppeteer-core, no browser download); screenshots of the
# main screens land in tests/browser/output/.
client-tests-browser:
	cd tests/browser && npm ci --no-audit --no-fund && npm test

# The web client's channel switch on a big database (tests/browser/bench/channel-switch.js):
# fills one node with POSTS posts over the API, then times switches in Chromium.
POSTS ?= 1000000
bench-web: prereqs web chromium
	$(CARGO) build --release --bin confab
	cd tests/browser && npm ci --no-audit --no-fund && POSTS=$(POSTS) node bench/channel-switch.js

# The tests' Python: mattermostdriver and pytest for the client suite, aiosmtpd for the real
# SMTP server the email tests start (tests/common/smtp_sink.py).
PY_VENV := tests/clients/python/.venv
test-venv:
	test -x $(PY_VENV)/bin/python || python3 -m venv $(PY_VENV)
	$(PY_VENV)/bin/python -m pip install -q --disable-pip-version-check -r tests/clients/python/requirements.txt

client-tests-python: test-venv
	cd tests/clients/python && .venv/bin/python -m pytest -q

# Seeded fault schedules (tests/faults.rs) against real 3-node clusters, checked as a history;
# `make test` runs two short ones. E.g. make chaos SEEDS="$$(seq 1 100)" CHAOS_SECONDS=20
SEEDS ?= 1 2 3 4 5 6 7 8
CHAOS_SECONDS ?= 15
chaos: prereqs
	CONFAB_CHAOS_SEEDS="$(SEEDS)" CONFAB_CHAOS_SECONDS=$(CHAOS_SECONDS) \
		$(CARGO) test --release -p confab --test faults -- --nocapture

fmt:
	$(CARGO) fmt --all

clippy: prereqs
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

check: fmt clippy test

bench: prereqs
	$(CARGO) bench -p confab-bench

# The load tool (benches/README.md), e.g. make load ARGS="fanout --profile seed-extreme --find-max".
# Built with the same command as `make test`, so the binaries are not relinked between the two.
ARGS ?= --help
load: prereqs web
	$(CARGO) test --release --workspace --no-run
	$(CARGO_TARGET_DIR)/release/confab-load $(ARGS)

# Coverage-guided fuzzing (fuzz/, cargo-fuzz + libFuzzer on the nightly toolchain, its own
# target dir fuzz/target), e.g. make fuzz TARGET=command SECONDS=600. Targets: log_entry,
# command, snapshot_stream, snapshot_import, raft_wire (storage and Raft) and http_api,
# ws_stream (the server, in-process). New inputs land in fuzz/corpus/$(TARGET), crashes in
# fuzz/artifacts/$(TARGET); `make test` replays fuzz/corpus and fuzz/regressions.
TARGET ?= command
SECONDS ?= 600
fuzz: prereqs
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	cd fuzz && unset CARGO_TARGET_DIR && $(CARGO) +nightly fuzz run -O $(TARGET) -- -max_total_time=$(SECONDS)
