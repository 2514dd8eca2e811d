"""The command line contract (``python -m fastdns serve`` / ``check-zone``) and the config file."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import dns.rdatatype
import pytest
from support.client import query
from support.server import free_port, running_fastdns, toml_text

from fastdns.cli import main
from fastdns.config import ConfigError, ListenAddress, load_config, parse_listen

EXAMPLE_ZONE = Path(__file__).resolve().parent.parent / "examples" / "zones" / "example.com.zone"
WWW_A = "192.0.2.10"


def fastdns(*args: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fastdns", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def www_addresses(host: str, port: int) -> set[str]:
    response = query(host, port, "www.example.com", "A")
    return {
        rd.to_text() for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset
    }


# -- check-zone


def test_check_zone_good_file(tmp_path):
    result = fastdns("check-zone", str(EXAMPLE_ZONE), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert "example.com." in lines[0]
    assert re.search(r"\b19 record sets\b", lines[0]), lines[0]


def test_check_zone_with_origin(tmp_path):
    renamed = tmp_path / "zonefile.txt"
    renamed.write_text(EXAMPLE_ZONE.read_text().replace("$ORIGIN example.com.\n", ""))
    result = fastdns("check-zone", str(renamed), "--origin", "example.com", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "example.com." in result.stdout


def test_check_zone_bad_file(tmp_path):
    bad = tmp_path / "bad.example.zone"
    bad.write_text(
        "$ORIGIN bad.example.\n"
        "$TTL 300\n"
        "@    IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n"
        "@    IN NS  ns1\n"
        "ns1  IN A   192.0.2.1\n"
        "www  IN A   192.0.2.300\n"  # line 6: not an address
    )
    result = fastdns("check-zone", str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines, "no error printed"
    for line in lines:
        assert re.match(r".*bad\.example\.zone:\d+: \S", line), line
    assert any(re.match(r".*bad\.example\.zone:6: ", line) for line in lines), result.stderr


def test_check_zone_missing_file(tmp_path):
    result = fastdns("check-zone", str(tmp_path / "missing.zone"), cwd=tmp_path)
    assert result.returncode == 1
    assert "missing.zone" in result.stderr


# -- serve


def test_serve_with_a_config_file(tmp_path):
    port = free_port()
    config = {
        "zone_dir": str(EXAMPLE_ZONE.parent),
        "listen": [f"127.0.0.1:{port}"],
        "udp_max_payload": 1400,
        "tcp_idle_timeout": 5,
        "log_level": "debug",
    }
    with running_fastdns(None, config=config) as server:
        assert (server.host, server.port) == ("127.0.0.1", port)
        assert www_addresses(server.host, server.port) == {WWW_A}
        assert "DEBUG" in server.stderr_text()


def test_config_zone_dir_is_relative_to_the_config_file(tmp_path):
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "example.com.zone").write_text(EXAMPLE_ZONE.read_text())
    config_path = tmp_path / "fastdns.toml"
    config_path.write_text(toml_text({"zone_dir": "zones"}))
    with running_fastdns(None, config=config_path) as server:
        assert www_addresses(server.host, server.port) == {WWW_A}


def test_flags_override_the_config_file(tmp_path):
    config_port, flag_port = free_port(), free_port()
    config = {"zone_dir": "/nonexistent", "listen": [f"127.0.0.1:{config_port}"]}
    with running_fastdns(EXAMPLE_ZONE.parent, port=flag_port, config=config) as server:
        assert server.port == flag_port
        assert www_addresses("127.0.0.1", flag_port) == {WWW_A}
        with pytest.raises(TimeoutError):
            query("127.0.0.1", config_port, "www.example.com", "A", timeout=0.5)


def test_unknown_config_key_is_rejected(tmp_path):
    config_path = tmp_path / "fastdns.toml"
    config_path.write_text(toml_text({"zone_dir": str(EXAMPLE_ZONE.parent), "listen_on": "x"}))
    result = fastdns("serve", "--config", str(config_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "'listen_on'" in result.stderr
    assert "unknown setting" in result.stderr


@pytest.mark.parametrize(
    ("listen", "hint"),
    [
        ("::1:5353", "brackets"),
        ("localhost:5353", "not an IPv4 or IPv6 address"),
        ("127.0.0.1", "HOST:PORT"),
        ("127.0.0.1:99999", "port"),
        ("127.0.0.1:dns", "port"),
        ("[127.0.0.1]:5353", "brackets"),
    ],
)
def test_bad_listen_value_is_rejected(tmp_path, listen, hint):
    result = fastdns(
        "serve", "--zone-dir", str(EXAMPLE_ZONE.parent), "--listen", listen, cwd=tmp_path
    )
    assert result.returncode == 2
    assert "--listen" in result.stderr
    assert listen in result.stderr
    assert hint in result.stderr


def test_bad_listen_value_in_config_names_the_file(tmp_path, capsys):
    config_path = tmp_path / "fastdns.toml"
    config_path.write_text(toml_text({"zone_dir": "z", "listen": ["127.0.0.1:0"]}))
    assert main(["serve", "--config", str(config_path)]) == 2
    err = capsys.readouterr().err
    assert f"{config_path}: listen" in err
    assert "port" in err


def test_unbindable_listen_address_exits_1(tmp_path):
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", port))
        result = fastdns(
            "serve",
            "--zone-dir",
            str(EXAMPLE_ZONE.parent),
            "--listen",
            f"127.0.0.1:{port}",
            cwd=tmp_path,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "could not listen on any address" in result.stderr


def test_missing_zone_dir_exits_1(tmp_path):
    result = fastdns("serve", "--zone-dir", str(tmp_path / "nope"), cwd=tmp_path)
    assert result.returncode == 1
    assert "does not exist" in result.stderr


def test_serve_without_zone_dir_is_a_usage_error(tmp_path, capsys):
    assert main(["serve"]) == 2
    assert "--zone-dir" in capsys.readouterr().err


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "serve" in capsys.readouterr().out


# -- config (in-process)


def test_parse_listen():
    assert parse_listen("127.0.0.1:5353") == ListenAddress("127.0.0.1", 5353, socket.AF_INET)
    assert parse_listen("[::1]:53") == ListenAddress("::1", 53, socket.AF_INET6)
    assert str(parse_listen("[::1]:53")) == "[::1]:53"
    assert str(parse_listen("0.0.0.0:53")) == "0.0.0.0:53"


def test_load_config_defaults_and_overrides(tmp_path):
    config_path = tmp_path / "c.toml"
    config_path.write_text(
        toml_text({"zone_dir": "zones", "udp_max_payload": 4096, "tcp_idle_timeout": 2.5})
    )
    config = load_config(config_path, {"udp_max_payload": "1400", "listen": None})
    assert config.zone_dir == tmp_path / "zones"
    assert config.udp_max_payload == 1400
    assert config.tcp_idle_timeout == 2.5
    assert config.listen == (ListenAddress("127.0.0.1", 5353, socket.AF_INET),)
    assert config.log_level == "info"
    assert config.tcp_max_connections == 1000


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"udp_max_payload": 100}, "udp_max_payload"),
        ({"udp_max_payload": "big"}, "udp_max_payload"),
        ({"tcp_idle_timeout": 0}, "tcp_idle_timeout"),
        ({"tcp_max_connections": 0}, "tcp_max_connections"),
        ({"log_level": "loud"}, "log_level"),
        ({"listen": []}, "listen"),
        ({"listen": ["127.0.0.1:53", "127.0.0.1:53"]}, "twice"),
    ],
)
def test_bad_config_values(tmp_path, values, message):
    config_path = tmp_path / "c.toml"
    config_path.write_text(toml_text({"zone_dir": "zones", **values}))
    with pytest.raises(ConfigError, match=message):
        load_config(config_path)


def test_config_file_that_is_not_toml(tmp_path):
    config_path = tmp_path / "c.toml"
    config_path.write_text("zone_dir = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(config_path)
