# confab: the two commands a newcomer runs are `make run` and `make test`.
# Everything builds in release mode into one persistent target dir outside the clone, so that
# RocksDB's C++ (about 12 minutes cold on 2 cores) is compiled once per machine, not per clone.

export CARGO_TARGET_DIR ?= $(HOME)/.cache/confab-target
CARGO ?= cargo

.PHONY: run test build prereqs fmt clippy bench check

prereqs:
	@if ! command -v clang >/dev/null 2>&1 || ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1; then \
		echo "installing libclang-dev and clang (needed by RocksDB's bindgen)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev clang; \
	fi

build: prereqs
	$(CARGO) build --release --workspace

run: prereqs
	$(CARGO) run --release --bin confab -- serve

test: prereqs
	$(CARGO) test --release --workspace

fmt:
	$(CARGO) fmt --all

clippy: prereqs
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

check: fmt clippy test

bench: prereqs
	$(CARGO) bench -p confab-bench
