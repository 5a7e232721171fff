"""Config: defaults < TOML file < CASTD_* environment; bad values stop start-up with one clear line."""

import subprocess
import sys

import pytest

from castd.config import Config, ConfigError, load_config


def test_precedence_defaults_file_env(tmp_path):
    file = tmp_path / "castd.toml"
    file.write_text('port = 9000\nquality = "1080p"\nhost = "127.0.0.2"\n')
    config = load_config(file, environ={"CASTD_PORT": "9100"})
    assert config.port == 9100  # env beats file
    assert config.quality == "1080p"  # file beats default
    assert config.host == "127.0.0.2"
    assert config.chromedriver == Config().chromedriver  # default kept
    assert load_config(file, environ={}, overrides={"port": 9200}).port == 9200  # CLI beats all


@pytest.mark.parametrize("environ, key", [
    ({"CASTD_PORT": "eighty"}, "port"),
    ({"CASTD_PORT": "70000"}, "port"),
    ({"CASTD_QUALITY": "4k"}, "quality"),
    ({"CASTD_MAX_DURATION": "-5"}, "max_duration"),
    ({"CASTD_LOG_LEVEL": "LOUD"}, "log_level"),
    ({"CASTD_CAST_STALL_SECONDS": "-1"}, "cast_stall_seconds"),
    ({"CASTD_CAST_STALL_SECONDS": "601"}, "cast_stall_seconds"),
])
def test_invalid_values_name_the_key(tmp_path, environ, key):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with pytest.raises(ConfigError) as info:
        load_config(empty, environ=environ)
    assert str(info.value).startswith(f"{key}:")


def test_unknown_key_and_bad_toml(tmp_path):
    file = tmp_path / "castd.toml"
    file.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="^prot: unknown key"):
        load_config(file, environ={})
    file.write_text("port = = 1\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(file, environ={})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml", environ={})


def test_cli_exits_2_with_one_line(tmp_path):
    file = tmp_path / "castd.toml"
    file.write_text('quality = "8k"\n')
    result = subprocess.run([sys.executable, "-m", "castd", "serve", "--config", str(file)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "quality" in lines[0] and "8k" in lines[0], result.stderr
