# kingpin — the two commands that matter: `make demo` and `make test`.

CARGO ?= cargo

.PHONY: all demo test bench doc lint layers fmt clean

all: test

## Start the echo server on loopback, drive it with many connections, verify every byte.
demo:
	$(CARGO) run --release --example demo

## The whole test suite: unit, integration and doc tests.
test:
	$(CARGO) test --all-targets
	$(CARGO) test --doc

## Benchmarks (BENCH_QUICK=1 for a short smoke run).
bench:
	$(CARGO) bench

## API docs, warnings as errors.
doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --features tls

## The structure: no import cycle between files, every arrow pointing down the layers.
layers:
	$(CARGO) test --test layers -- --nocapture

## Formatting and lints, as CI checks them.
lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --lib --no-default-features -- -D warnings

fmt:
	$(CARGO) fmt

clean:
	$(CARGO) clean
