# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXAMPLE := examples/karla-connector-example-adapter

.PHONY: demo test bench install system-tools clean

$(STAMP): pyproject.toml $(EXAMPLE)/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# the example plugin is installed like a third party's, so a test proves the entry-point path
	$(BIN)/python -m pip install --quiet -e $(EXAMPLE)
	touch $(STAMP)

install: $(STAMP)

# systemd-analyze checks the unit files in the test suite (Debian's systemd package; no running systemd needed)
system-tools:
	@command -v systemd-analyze >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing systemd (for systemd-analyze)"; \
	    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null; } \
	      || echo "could not install systemd: the unit-file tests will say so"; \
	  else echo "systemd-analyze missing: install Debian's systemd package (or set KARLA_SKIP_SYSTEMD_TESTS=1)"; fi; }

demo: $(STAMP)
	$(BIN)/karla-connector demo

test: $(STAMP) system-tools
	$(BIN)/python -m pytest -n 2 -q tests $(EXAMPLE)/tests

# scenarios 1-5 (CSV, 100k and 1M orders) and 6-7 (Shopify, Shopware); exits 1 when a target is missed
bench: $(STAMP)
	$(BIN)/python -m bench; main=$$?; $(BIN)/python -m bench --sources-only; sources=$$?; exit $$((main || sources))

clean:
	rm -rf $(VENV) .pytest_cache demo
