# castd: the two commands of a fresh Debian 12 / Raspberry Pi OS (64-bit) set-up are
#   make run    install what is missing, then cast the embedded demo (no TV needed)
#   make test   install what is missing, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 8765
DEB_PACKAGES = chromium chromium-driver xvfb
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install system-deps venv run test bench bench-quick clean

install: system-deps venv

# Debian packages castd needs at run time; only what is missing is installed.
system-deps:
	@missing=""; for p in $(DEB_PACKAGES) $(EXTRA_DEB); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "castd: installing Debian packages:$$missing"; \
	  if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null; then \
	    echo "castd: not root and no sudo; run as root: apt-get install -y$$missing" >&2; exit 1; fi; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	@touch $@

run: install
	$(VENV)/bin/castd serve --port $(PORT) --demo

test: install
	$(VENV)/bin/python -m pytest -q

bench: EXTRA_DEB = ffmpeg
bench: install
	$(VENV)/bin/python -m bench

bench-quick: EXTRA_DEB = ffmpeg
bench-quick: install
	$(VENV)/bin/python -m bench --quick

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
