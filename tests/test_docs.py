"""The docs and the example config say exactly what the Config struct holds."""

import re
import tomllib

from helpers import ROOT

from castd.config import Config

README = (ROOT / "README.md").read_text()
EXAMPLE = (ROOT / "castd" / "example.toml").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def test_readme_config_table_lists_every_field_and_nothing_else():
    keys = re.findall(r"^\| `([a-z_]+)` \|", section("Configuration"), re.M)
    assert len(keys) == len(set(keys)), "a key is documented twice"
    assert set(keys) == set(Config.__struct_fields__), (
        f"undocumented: {sorted(set(Config.__struct_fields__) - set(keys))}, "
        f"not in Config: {sorted(set(keys) - set(Config.__struct_fields__))}")


def test_readme_config_defaults_match():
    defaults = Config()
    for key, shown in re.findall(r"^\| `([a-z_]+)` \| ([^|]+) \|", section("Configuration"), re.M):
        shown = shown.strip()
        value = getattr(defaults, key)
        if shown == "(empty)":
            assert value == "", key
            continue
        try:  # numbers, booleans, lists are shown as TOML; strings bare
            documented = tomllib.loads(f"v = {shown.strip('`')}")["v"]
        except tomllib.TOMLDecodeError:
            documented = shown.strip("`")
        assert documented == value, (key, shown, value)


def test_example_config_shows_every_key_with_its_default():
    commented = re.findall(r"^# ([a-z_]+) = (.+)$", EXAMPLE, re.M)
    keys = [key for key, _ in commented]
    assert sorted(keys) == sorted(Config.__struct_fields__)
    assert tomllib.loads(EXAMPLE) == {}  # everything commented out: the file changes nothing
    uncommented = tomllib.loads("\n".join(f"{k} = {v}" for k, v in commented))
    assert Config(**uncommented) == Config()


def test_quick_start_is_two_make_commands():
    block = re.search(r"## Quick start.*?```sh\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["make run", "make test"]
