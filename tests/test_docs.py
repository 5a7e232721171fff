"""The docs and the example config say exactly what the Config struct holds."""

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
