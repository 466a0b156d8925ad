# kingpin — the two commands that matter: `make demo` and `make test`.

CARGO ?= cargo

PREFIX ?= /usr/local

.PHONY: all demo test bench doc lint layers fmt clean install header

all: test

## Start the echo server on loopback, drive it with many connections, verify every byte.
demo:
	$(CARGO) run --release --example demo

## The whole test suite: unit, integration and doc tests, the C and C++ API and its examples.
test:
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

## The C and C++ API: libkingpin.so, libkingpin.a, kingpin.h, kingpin.hpp and the CMake
## package (find_package(kingpin) → kingpin::kingpin) under $(PREFIX).
install:
	$(CARGO) build --release -p kingpin-capi
	capi/install.sh "$(PREFIX)" release

## Regenerate capi/include/kingpin.h from the C API's source (cbindgen); a test checks it.
header:
	KINGPIN_BLESS=1 $(CARGO) test -p kingpin-capi --test header

## Benchmarks (BENCH_QUICK=1 for a short smoke run).
bench:
	$(CARGO) bench

## API docs, warnings as errors.
doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --features tls
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps -p kingpin-capi

## The structure: no import cycle between files, every arrow pointing down the layers.
layers:
	$(CARGO) test --test layers -- --nocapture

## Formatting and lints, as CI checks them.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --lib --no-default-features -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
