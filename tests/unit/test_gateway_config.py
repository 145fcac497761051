"""gateway.toml: the example loads; errors name the file, the key and the problem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smssync.errors import ConfigError
from smssync.gateway.config import EXAMPLE_CONFIG, load_config, parse_config
from smssync.records import BodyFormat, KeyMap


def test_the_example_config_loads_with_the_app_defaults(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(EXAMPLE_CONFIG)
    config = load_config(path)
    url = config.sync_urls[0]
    assert url.method == "POST" and url.format is BodyFormat.FORM
    assert config.forward.first_delay_s == 30 and config.forward.cap_s == 3600
    assert config.alerts.battery_low_percent == 15
    assert config.tasks.results_encoding == "array"
    # The store lives beside the config file.
    assert config.store == str(tmp_path / "gateway.db")


def test_termux_submitted_is_sent_is_opt_in_and_the_example_names_it() -> None:
    assert (
        parse_config('[[sync_urls]]\nurl = "http://x"\n').backend.termux.submitted_is_sent is False
    )
    config = parse_config(
        '[backend]\nkind = "termux"\n[backend.termux]\nsubmitted_is_sent = true\n'
        '[[sync_urls]]\nurl = "http://x"\n'
    )
    assert config.backend.termux.submitted_is_sent is True
    # The example's commented [backend.termux] lines load once uncommented.
    section = EXAMPLE_CONFIG.split("# [backend.termux]\n", 1)[1].split("\n\n", 1)[0]
    assert "# submitted_is_sent = false" in section
    options = "\n".join(m[1] for m in re.finditer(r"^# (\w+ = .*)$", section, re.MULTILINE))
    uncommented = parse_config(
        f'[backend.termux]\n{options}\n[[sync_urls]]\nurl = "http://x"\n'
    ).backend.termux
    assert uncommented.submitted_is_sent is False and uncommented.send_interval_s == 65


def test_keys_and_userinfo() -> None:
    config = parse_config(
        '[[sync_urls]]\nurl = "https://u:p%3Ass@h.example/s"\nkeys = { from = "sender" }\n'
    )
    url = config.sync_urls[0]
    assert url.key_map == KeyMap(from_addr="sender")
    assert url.name == "https://h.example/s"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[sync_urls]]\nurl = "ftp://x"\n', "gw.toml: sync_urls[0].url: "),
        ('[[sync_urls]]\nurl = "http://x"\nmethod = "GET"\n', "gw.toml: sync_urls[0].method: "),
        ('[[sync_urls]]\nurl = "http://x"\nkeys = { frm = "a" }\n', "sync_urls[0].keys: "),
        ('[[sync_urls]]\nurl = "http://x"\nregex = ["("]\n', "sync_urls[0].regex: "),
        ('[[sync_urls]]\nurl = "http://x"\n[forward]\ncap_s = -1\n', "gw.toml: forward.cap_s: "),
        ('[[sync_urls]]\nurl = "http://x"\nsecrte = "a"\n', "gw.toml: sync_urls[0].secrte: "),
        ("sync_urls = []\n", "gw.toml: sync_urls: "),
        ("store = \n", "gw.toml: not valid TOML"),
        (
            '[[sync_urls]]\nurl = "http://x"\n[[sync_urls]]\nurl = "http://x"\n',
            "two Sync URLs are named",
        ),
    ],
)
def test_errors_name_file_key_and_problem(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "gw.toml")
    assert expected in caught.value.message


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")
