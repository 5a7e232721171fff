# castd: the two commands of a fresh Debian 12 / Raspberry Pi OS (64-bit) set-up are
#   make run    install what is missing, then cast the embedded demo (no TV needed)
#   make test   install what is missing, then run the test suite
# and, to run castd as a service:  sudo make install-service  (sudo make uninstall-service reverses it)
PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 8765
# Debian packages castd needs at run time, without their recommends (with them, chromium brings cups, samba
# libraries, avahi-daemon, upower...). The fonts a dashboard needs are named, not left to chance: DejaVu (the
# default sans/serif/mono), Liberation (metric-compatible Arial, Helvetica, Times, Courier), colour emoji.
DEB_PACKAGES = chromium chromium-driver xvfb fonts-dejavu-core fonts-liberation fonts-noto-color-emoji
APT_INSTALL = $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# the service: castd in its own venv, PREFIX/.venv (readable by the service user, unlike a home
# folder: the unit has ProtectHome), its config in SYSCONFDIR, the unit in UNITDIR. DESTDIR stages the files elsewhere
# (no user, no systemctl) for packaging and for the tests.
PREFIX     ?= /opt/castd
SYSCONFDIR ?= /etc/castd
UNITDIR    ?= /etc/systemd/system
BINDIR     ?= /usr/local/bin
SERVICE_USER ?= castd
DESTDIR    ?=
PYTEST_ARGS ?=

.PHONY: install system-deps glass-deps venv run test lint test-debian13 bench bench-quick clean install-service \
        uninstall-service \
        service-root service-user service-venv service-config service-unit service-start

install: system-deps venv

# only what is missing is installed
system-deps:
	@missing=""; for p in $(DEB_PACKAGES) $(EXTRA_DEB); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "castd: installing Debian packages:$$missing"; \
	  if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null; then \
	    echo "castd: not root and no sudo; run as root: apt-get install -y --no-install-recommends$$missing" >&2; exit 1; fi; \
	  $(APT_INSTALL) $$missing; \
	fi

# Shaka Player (the Cast receiver's HLS engine) for the tests at the glass: npm packages pinned in
# tests/glass/package-lock.json, installed with Debian's nodejs/npm (Debian 12: node 18 + npm 9;
# Debian 13: node 20 + npm 9) unless a node with npm is already there.
GLASS = tests/glass
glass-deps: $(GLASS)/node_modules/.package-lock.json

$(GLASS)/node_modules/.package-lock.json: $(GLASS)/package-lock.json $(GLASS)/package.json
	@command -v npm >/dev/null || { \
	  echo "castd: installing Debian packages: nodejs npm"; \
	  if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null; then \
	    echo "castd: not root and no sudo; run as root: apt-get install -y --no-install-recommends nodejs npm" >&2; exit 1; fi; \
	  $(APT_INSTALL) nodejs npm; }
	cd $(GLASS) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	@touch $@

run: install
	$(VENV)/bin/castd serve --port $(PORT) --demo

# the fake Cast device's and the test broker's TLS certificates are made with the openssl command line;
# the MQTT tests run Debian's mosquitto broker (on a free loopback port, with a config they write); the camera
# tests a test camera on GStreamer's RTSP server (tests/rtspserver.py, run by Debian's python3 with gi; x264enc
# is in -ugly, rtph264pay in -good, appsrc and videoconvert in -base; its sound: audiotestsrc and opus in -base,
# alawenc and rtpmp4gpay in -good, voaacenc (AAC) in -bad; the same names on Debian 12 and 13);
# tests/test_unit.py applies the unit's seccomp rules with libseccomp's Python binding (python3-seccomp, 0.1 MB);
# tests/test_docs.py runs the README's curl examples with curl
CAMERA_TEST_DEB = gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
                  gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad
test: EXTRA_DEB = openssl mosquitto $(CAMERA_TEST_DEB) python3-seccomp curl
test: install glass-deps lint
	$(VENV)/bin/python -m pytest -q $(PYTEST_ARGS)

# ruff (pycodestyle + pyflakes) and mypy, configured in pyproject.toml; part of `make test`
lint: install
	$(VENV)/bin/ruff check castd tests bench platforms
	$(VENV)/bin/mypy

# the README's two commands in a fresh Debian 13 made with debootstrap (root; ~15 min on 2 cores; removed
# afterwards); the second part of .ci/run
test-debian13:
	$(SUDO) platforms/debian.sh trixie

# `sudo make install-service`: the castd user, castd in PREFIX (linked from BINDIR), a commented config (an existing one is
# never overwritten), the systemd unit; then enable it and (re)start it: an upgrade replaces the code under a running
# castd, which must restart to run it.
install-service: system-deps service-user service-venv service-config service-unit service-start

# systemd is running when SYSTEMD_DIR exists; SYSTEMCTL and SYSTEMD_DIR are variables so that a test can stand in for both
SYSTEMCTL   ?= systemctl
SYSTEMD_DIR ?= /run/systemd/system
service-start:
	@if [ -n "$(DESTDIR)" ]; then echo "castd: staged in $(DESTDIR)"; \
	elif [ -d $(SYSTEMD_DIR) ]; then \
	  $(SYSTEMCTL) daemon-reload && $(SYSTEMCTL) enable castd && \
	  if $(SYSTEMCTL) is-active --quiet castd; then $(SYSTEMCTL) restart castd && echo "castd: restarted (new code)"; \
	  else $(SYSTEMCTL) start castd; fi && \
	  echo "castd: running; check it with: castd doctor --config $(SYSCONFDIR)/castd.toml; journalctl -u castd"; \
	else echo "castd: installed, but systemd is not running here; start it with: systemctl enable --now castd"; fi

service-root:
	@[ "$$(id -u)" = 0 ] || [ -n "$(DESTDIR)" ] || { echo "castd: run it as root: sudo make install-service" >&2; exit 1; }

service-user: service-root
	@if [ -z "$(DESTDIR)" ] && ! id -u $(SERVICE_USER) >/dev/null 2>&1; then \
	  echo "castd: adding system user $(SERVICE_USER)"; \
	  useradd --system --user-group --home-dir /var/lib/castd --no-create-home \
	          --shell /usr/sbin/nologin --comment "castd service" $(SERVICE_USER); fi

# A venv writes its own path into its scripts' #! lines (and pip into the .pyc files it compiles), so one made
# under DESTDIR would name the staging folder: a package built from it fails with "required file not found".
# Staged, the #! lines are rewritten to PREFIX and the .pyc files compiled as if they lived there.
service-venv: service-root
	@[ -x $(DESTDIR)$(PREFIX)/.venv/bin/python ] || $(PYTHON) -m venv $(DESTDIR)$(PREFIX)/.venv
	$(DESTDIR)$(PREFIX)/.venv/bin/pip install -q --upgrade $(if $(DESTDIR),--no-compile) .
	@if [ -n "$(DESTDIR)" ]; then \
	  grep -rlI --null -F '$(DESTDIR)$(PREFIX)/.venv' $(DESTDIR)$(PREFIX)/.venv/bin $(DESTDIR)$(PREFIX)/.venv/pyvenv.cfg | \
	    xargs -0 -r sed -i 's#$(DESTDIR)$(PREFIX)/.venv#$(PREFIX)/.venv#g' && \
	  $(DESTDIR)$(PREFIX)/.venv/bin/python -m compileall -f -q -s $(DESTDIR) -p / $(DESTDIR)$(PREFIX)/.venv/lib >/dev/null; fi
	@[ README.md -ef $(DESTDIR)$(PREFIX)/README.md ] || install -m 0644 README.md $(DESTDIR)$(PREFIX)/README.md
	@install -d $(DESTDIR)$(BINDIR) && ln -sfn $(PREFIX)/.venv/bin/castd $(DESTDIR)$(BINDIR)/castd

service-config: service-root
	@install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/castd.toml ]; then \
	  echo "castd: keeping the existing $(SYSCONFDIR)/castd.toml"; \
	else \
	  $(DESTDIR)$(PREFIX)/.venv/bin/python -m castd config-example > $(DESTDIR)$(SYSCONFDIR)/castd.toml.new && \
	  chmod 0640 $(DESTDIR)$(SYSCONFDIR)/castd.toml.new && \
	  { [ -n "$(DESTDIR)" ] || chgrp $(SERVICE_USER) $(DESTDIR)$(SYSCONFDIR)/castd.toml.new; } && \
	  mv $(DESTDIR)$(SYSCONFDIR)/castd.toml.new $(DESTDIR)$(SYSCONFDIR)/castd.toml && \
	  echo "castd: wrote $(SYSCONFDIR)/castd.toml (every key commented, with its default)"; fi

service-unit: service-root
	@install -d $(DESTDIR)$(UNITDIR)
	sed 's#/opt/castd#$(PREFIX)#g; s#/etc/castd#$(SYSCONFDIR)#g' systemd/castd.service > $(DESTDIR)$(UNITDIR)/castd.service
	@chmod 0644 $(DESTDIR)$(UNITDIR)/castd.service

# `sudo make uninstall-service`: stop and remove the service, castd's venv in PREFIX and the user;
# the config (your settings, perhaps a token) stays.
uninstall-service:
	@[ "$$(id -u)" = 0 ] || [ -n "$(DESTDIR)" ] || { echo "castd: run it as root: sudo make uninstall-service" >&2; exit 1; }
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl disable --now castd 2>/dev/null || true; fi
	rm -f $(DESTDIR)$(UNITDIR)/castd.service
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	rm -rf $(DESTDIR)$(PREFIX)/.venv
	@[ README.md -ef $(DESTDIR)$(PREFIX)/README.md ] || rm -f $(DESTDIR)$(PREFIX)/README.md
	@rmdir $(DESTDIR)$(PREFIX) 2>/dev/null || true
	@[ "$$(readlink $(DESTDIR)$(BINDIR)/castd)" != "$(PREFIX)/.venv/bin/castd" ] || rm -f $(DESTDIR)$(BINDIR)/castd
	@if [ -z "$(DESTDIR)" ] && id -u $(SERVICE_USER) >/dev/null 2>&1; then userdel $(SERVICE_USER); fi
	@echo "castd: removed; kept $(SYSCONFDIR)/castd.toml (delete it yourself if you no longer need it)"

bench: EXTRA_DEB = ffmpeg mosquitto $(CAMERA_TEST_DEB)
bench: install glass-deps
	$(VENV)/bin/python -m bench

bench-quick: EXTRA_DEB = ffmpeg mosquitto
bench-quick: install glass-deps
	$(VENV)/bin/python -m bench --quick

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
