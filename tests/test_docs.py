"""The docs and the example config say exactly what the Config struct holds."""

import json
import re
import tomllib

from helpers import ROOT

import msgspec

from castd.config import Config
from castd.mqtt.settings import MqttSettings

README = (ROOT / "README.md").read_text()
EXAMPLE = (ROOT / "castd" / "example.toml").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


TABLES = {"mqtt": ("The `[mqtt]` table", MqttSettings)}  # table-valued keys, documented in their own table


def subsection(title: str) -> str:
    start = README.index(f"\n### {title}")
    end = README.find("\n##", start + 1)
    return README[start:end if end != -1 else None]


def check_key_table(text: str, kind: type) -> None:
    keys = re.findall(r"^\| `([a-z_]+)` \|", text, re.M)
    assert len(keys) == len(set(keys)), "a key is documented twice"
    assert set(keys) == set(kind.__struct_fields__), (
        f"undocumented: {sorted(set(kind.__struct_fields__) - set(keys))}, "
        f"not in {kind.__name__}: {sorted(set(keys) - set(kind.__struct_fields__))}")
    defaults = kind()
    for key, shown in re.findall(r"^\| `([a-z_]+)` \| ([^|]+) \|", text, re.M):
        shown = shown.strip()
        value = getattr(defaults, key)
        if key in TABLES and kind is Config:
            assert shown == "(table)", key
            continue
        if shown == "(empty)":
            assert value == "", key
            continue
        if shown == "(unset)":  # no TOML value means "not set" (castd/sharing.py's volume, mute)
            assert value is None, key
            continue
        try:  # numbers, booleans, lists are shown as TOML; strings bare
            documented = tomllib.loads(f"v = {shown.strip('`')}")["v"]
        except tomllib.TOMLDecodeError:
            documented = shown.strip("`")
        assert documented == value, (key, shown, value)


def test_readme_config_table_lists_every_field_with_its_default():
    check_key_table(section("Configuration"), Config)


def test_readme_tables_of_table_keys_list_every_field_with_its_default():
    for title, kind in TABLES.values():
        check_key_table(subsection(title), kind)


def test_example_config_shows_every_key_with_its_default():
    parts = re.split(r"^# \[([a-z_]+)\]$", EXAMPLE, flags=re.M)
    top, tables = parts[0], dict(zip(parts[1::2], parts[2::2]))
    assert set(tables) == set(TABLES)
    commented = re.findall(r"^# ([a-z_]+) = (.+)$", top, re.M)
    assert sorted([key for key, _ in commented] + list(TABLES)) == sorted(Config.__struct_fields__)
    assert tomllib.loads(EXAMPLE) == {}  # everything commented out: the file changes nothing
    text = "\n".join(f"{k} = {v}" for k, v in commented if v != "(unset)")
    for name, body in tables.items():
        table = re.findall(r"^# ([a-z_]+) = (.+)$", body, re.M)
        assert sorted(k for k, _ in table) == sorted(TABLES[name][1].__struct_fields__), name
        text += f"\n[{name}]\n" + "\n".join(f"{k} = {v}" for k, v in table)
    assert msgspec.convert(tomllib.loads(text), Config) == Config()


def test_quick_start_is_two_make_commands():
    block = re.search(r"## Quick start.*?```sh\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["make run", "make test"]


# ---- the README as a contract: its examples run against a live castd ------------------------------------
# Every command and request the README shows is run here against real castds (one without a token, as the
# API section's examples assume, one with, as the webhook recipes do) with the README's own dashboards and
# playlist, and a fake Cast device under the README's device name: an example that stops working fails
# the suite. A kind of example this test does not run must be named in NOT_RUN with the reason.
import contextlib  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

from castd.cli import _parser  # noqa: E402
from fakecast import FakeCastDevice  # noqa: E402
from helpers import Daemon, PageHandler, PageServer, wait_for  # noqa: E402

TOKEN = "readme-contract-token-0123"
DEVICE = "Living Room TV"
NOT_RUN = {  # the first word of an example this test does not run -> why
    "mosquitto_pub": "MQTT, with Debian's mosquitto-clients: tests/test_mqtt*.py send the same messages with paho",
    "mosquitto_sub": "MQTT, as above",
    "sudo": "installs the service (root, systemd): tests/test_quickstart.py stages it with DESTDIR",
    "sudoedit": "an editor",
    "make": "the quick start: tests/test_quickstart.py runs it",
    "journalctl": "journald: tests/test_logs.py checks the lines journald reads",
    "python3": "makes a token (the standard library's secrets module)",
    "echo": "`echo $?` shows the exit code of the command above it: the test of that command checks it",
}
SUBCOMMANDS = {"serve", "start", "stop", "next", "previous", "status", "devices", "dashboards", "config-example",
               "doctor", "mqtt-forget"}


def fenced_examples() -> list[str]:
    """Each command line of the README's sh blocks and untyped blocks (continuations joined, comments cut),
    `$ castd ...` from a shown session, and the bare URLs of the one-URL sender recipe."""
    found = []
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", README, re.S):
        if lang not in ("sh", ""):
            continue
        pending = ""
        for line in re.sub(r"\\\n\s*", " ", body).splitlines():
            line = (pending + "\n" + line) if pending else line.strip()
            if line.startswith("$ "):
                line = line[2:]
            elif lang == "" and not line.startswith("https://castd.example.net/"):
                continue  # program output and diagrams
            try:
                words = shlex.split(line, comments=True)
            except ValueError:  # a quoted string goes on on the next line (a JSON body over two lines)
                pending = line
                continue
            pending = ""
            if words:
                found.append(_without_comment(line, words))
    return found


def _without_comment(line: str, words: list[str]) -> str:
    """The line as written (its quoting kept: "$TOKEN" must expand), cut before a trailing # comment."""
    for cut in [m.start() for m in re.finditer(r"\s#", line)]:
        if shlex.split(line[:cut]) == words:
            return line[:cut].rstrip()
    return line


def inline_castd_commands() -> set[str]:
    """`castd <subcommand> ...` in the README's text and tables (not in fenced blocks)."""
    text = re.sub(r"```.*?```", "", README, flags=re.S)
    return {c for c in re.findall(r"`(?:sudo )?(castd [^`]+)`", text) if c.split()[1] in SUBCOMMANDS}


def test_every_readme_example_is_run_here_or_named_with_a_reason():
    kinds = {"curl", "castd", "https:"} | set(NOT_RUN)
    for example in fenced_examples():
        first = example.split()[0].split("//")[0]
        assert first in kinds, f"a README example this test neither runs nor names in NOT_RUN: {example}"
    assert sum(e.startswith("curl ") for e in fenced_examples()) >= 9
    assert sum(e.startswith("https://") for e in fenced_examples()) == 4


def test_the_command_tables_options_are_the_clis():
    """Each `castd <sub> [--flag ...]` row of the command-line table names options `castd <sub> --help` has."""
    table = section("The command line").replace("\\|", "/")  # a `\|` inside a cell is no column break
    cells = re.findall(r"^\| (`castd [^|]*)\|", table, re.M)  # first cells
    rows = [span for cell in cells for span in re.findall(r"`(castd [^`]+)`", cell)]
    assert {row.split()[1] for row in rows} >= SUBCOMMANDS
    for row in rows:
        for sub in re.findall(r"castd ([a-z-]+)", row):
            out = io.StringIO()
            with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
                _parser().parse_args([sub, "--help"])  # what `castd <sub> --help` prints
            assert done.value.code == 0, row
            for flag in re.findall(r"--[a-z-]+", row):
                assert flag in out.getvalue(), (row, flag)


class ReadmePages(PageHandler):
    """The README's example URLs (homeassistant.local:8123/...) as pages: one colour each."""

    def do_GET(self):  # noqa: N802
        if not self.path.startswith(("/color/", "/status/")):
            self.path = "/color/" + f"{abs(hash(self.path.split('?')[0])) % 0xFFFFFF:06x}"
        super().do_GET()


@pytest.fixture(scope="module")
def readme_world(tmp_path_factory):
    """Two castds with the README's dashboards and playlist (its schedules left out: they act on the wall
    clock), the README's device name on a fake Cast device, the README's page host on a local server."""
    tmp = tmp_path_factory.mktemp("readme")
    pages = PageServer(ReadmePages)
    name = f"{DEVICE} {os.getpid()}"  # mDNS on loopback is shared by every test run on the machine
    block = next(b for b in re.findall(r"```toml\n(.*?)```", README, re.S) if 'name = "kitchen"' in b)
    config = tmp / "castd.toml"
    config.write_text(block.split("[[schedules]]")[0].replace("http://homeassistant.local:8123", pages.base))
    plain = Daemon(runtime_dir=tmp / "plain", env_extra={"CASTD_CONFIG": str(config)})
    tokened = Daemon(runtime_dir=tmp / "tokened", token=TOKEN, env_extra={"CASTD_CONFIG": str(config)})
    with FakeCastDevice(name=name) as tv:
        tv.advertise()
        plain.start()
        tokened.start()
        try:
            yield {"plain": plain, "tokened": tokened, "pages": pages, "config": config, "device": name, "tv": tv}
        finally:
            for d in (plain, tokened):
                d.post("/stop")
            plain.finish()
            tokened.finish()
            pages.close()


def localize(example: str, world: dict, daemon: Daemon) -> str:
    """The example as run here: the README's addresses, token, device and config file are the test's."""
    return (example.replace("http://127.0.0.1:8765", daemon.base).replace("https://castd.example.net", daemon.base)
            .replace("http://castd.lan:8765", daemon.base).replace("http://castd.local:8765", daemon.base)
            .replace("YOUR_TOKEN", TOKEN).replace("http://homeassistant.local:8123", world["pages"].base)
            .replace(DEVICE, world["device"]).replace("/etc/castd/castd.toml", str(world["config"])))


def run(command: str, daemon: Daemon, timeout: float = 90) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTD_")}
    env.update({"TOKEN": TOKEN, "CASTD_PORT": str(daemon.port), "CASTD_RUNTIME_DIR": str(daemon.runtime_dir),
                **({"CASTD_TOKEN": TOKEN} if daemon.token else {})})
    if command.startswith("castd "):
        command = f"{shlex.quote(sys.executable)} -m {command}"
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=ROOT)


def curl(example: str, world: dict, daemon: Daemon) -> tuple[int, dict]:
    command = localize(example, world, daemon)
    if command.startswith(daemon.base):  # a one-URL sender's URL: what such a sender does with it
        command = f"curl {shlex.quote(command)}"
    done = run(command.replace("curl ", "curl -sS -w '\\n%{http_code}' ", 1), daemon)
    assert done.returncode == 0, (example, done.stderr)
    body, _, code = done.stdout.rpartition("\n")
    return int(code), json.loads(body) if body else {}


def test_every_curl_and_url_example_works(readme_world):
    """In README order, each against the castd its auth fits (the token in it: the tokened one)."""
    answers = []
    for example in fenced_examples():
        if not example.startswith(("curl ", "https://")):
            continue
        if '"camera"' in example or "camera=" in example:
            continue  # a camera needs an RTSP server: tests/test_cameras.py sends these requests
        daemon = readme_world["tokened" if ("$TOKEN" in example or "YOUR_TOKEN" in example) else "plain"]
        code, body = curl(example, readme_world, daemon)
        assert code == 200, (example, code, body)
        answers.append((example, body))
        if "/start" in example:
            assert body["session"] and body["state"] in ("starting", "streaming"), (example, body)
            named = re.search(r'dashboard(?:=|": ")(\w+)', example)  # what the example asked for is on screen
            assert named is None or body["dashboard"] == named.group(1), (example, body)
        if "/next" in example:
            assert body["playlist"] == "lobby" and body["item"] == 1, (example, body)
        if "/dashboards" in example:
            assert [b["name"] for b in body["dashboards"]] == ["kitchen", "weather", "doorbell"], body
    # what the examples asked for is what castd did: the doorbell interrupt (JSON sent as curl -d's form)
    doorbell = [body for example, body in answers if "doorbell" in example and "/start" in example]
    assert doorbell and all(b["dashboard"] == "doorbell" and b["then"] == "resume" for b in doorbell)
    # the recipes left the doorbell interrupt over the lobby playlist: `castd next` says why it does not step
    tokened = readme_world["tokened"]
    wait_for(lambda: ((s := tokened.status())["source"], s["dashboard"], s["interrupts"])
             == ("interrupt", "doorbell", 1), 10, message="the doorbell interrupt over the playlist")
    step = run("castd next", tokened)
    assert step.returncode == 1, step.stderr  # a request refused for now (409), not a usage error
    assert "an interrupt is on screen (doorbell); the playlist lobby is paused underneath" in step.stderr


def shown(example: str) -> tuple[list[str], int]:
    """What the README shows a `$ castd ...` example print (before any next `$ `), and its exit code (0, or
    what a `$ echo $?` after it shows)."""
    at = README.find(f"$ {example}\n")
    if at < 0:
        return [], 0
    block = README[at + len(example) + 3:README.index("```", at)].splitlines()
    lines = []
    for i, line in enumerate(block):
        if line.startswith("$ echo $?"):
            return lines, int(block[i + 1])
        if line.startswith("$ "):
            break
        lines.append(line)
    return lines, 0


def busy_with_netflix(world: dict) -> None:
    """The README's takeover example: Netflix is on the TV."""
    from fakecast import APP_NETFLIX

    world["tv"].switch_app(APP_NETFLIX, "Netflix")


SETUP = {"--takeover when-idle": busy_with_netflix}  # what an example's story assumes of the TV


def test_every_castd_command_works(readme_world):
    d = readme_world["plain"]
    for example in [e for e in fenced_examples() if e.startswith("castd ")]:
        output, code = shown(example)
        if " --wait" in example:  # the README shows a start from idle
            d.post("/stop")
            wait_for(lambda: d.status()["state"] == "idle", 20, message="idle")
        for key, setup in SETUP.items():
            if key in example:
                setup(readme_world)
        done = run(localize(example, readme_world, d), d)
        assert done.returncode == code, (example, done.stdout[-2000:], done.stderr[-2000:])
        if output and "..." not in output:  # the shown output, line by line (ids, times and pids aside)
            shown_lines = output
            got = done.stdout.splitlines()
            assert len(got) == len(shown_lines), (shown_lines, got)
            for want, line in zip(shown_lines, got):
                variable = r"http://127\.0\.0\.1:8765|[A-Za-z0-9_-]{22}|\d+(\.\d+)?"  # address, session, numbers
                marked = re.sub(variable, "\x00", " ".join(want.split()))
                shape = re.escape(marked).replace("\x00", ".+")
                assert re.fullmatch(shape, " ".join(line.split())), (want, line)
    # the inline commands, in an order that gives each something to act on
    d.post("/stop")
    wait_for(lambda: d.status()["state"] == "idle", 20, message="idle")
    start = run("castd start --playlist lobby --wait", d)
    assert start.returncode == 0, start.stderr
    expected = {"castd status": 0, "castd status --json": 0, "castd devices": 0, "castd dashboards": 0,
                "castd next": 0, "castd previous": 0, "castd config-example": 0, "castd stop": 0}
    covered_elsewhere = {  # inline forms that are syntax, or run above or elsewhere
        "castd start --wait": "the fenced `$ castd start ... --wait`", "castd doctor": "the fenced doctor --config",
        "castd mqtt-forget": "needs a broker: tests/test_mqtt_faults.py runs it",
        "castd serve --host 0.0.0.0": "run below", "castd status": "", "castd serve": "the daemons here",
        "castd serve --config FILE": "the daemons here (CASTD_CONFIG)",
        "castd serve --insecure": "a server beyond loopback: tests/test_security.py"}
    camera = "a camera (an RTSP server): tests/test_cameras.py"
    inline = {c for c in inline_castd_commands() if "[" not in c and "(" not in c}
    covered_elsewhere.update({c: camera for c in inline if "--camera" in c})
    assert inline <= set(expected) | set(covered_elsewhere), inline - set(expected) - set(covered_elsewhere)
    for command, code in expected.items():
        done = run(command, d)
        assert done.returncode == code, (command, done.stdout[-1500:], done.stderr[-1500:])
        if command == "castd config-example":
            assert done.stdout == (ROOT / "castd" / "example.toml").read_text()
        if command == "castd next":
            assert "playlist lobby item 2" in done.stdout, done.stdout
    # "castd serve --host 0.0.0.0 refuses to start (exit code 2) unless a token is set"
    refused = run("castd serve --host 0.0.0.0", d, timeout=30)
    assert refused.returncode == 2 and "without a token" in refused.stderr, refused.stderr
    wait_for(lambda: d.status()["state"] == "idle", 20, message="idle after castd stop")
