"""The allow-list and this machine's own addresses."""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess

import pytest

from soc.detect import AllowList, discover_host_addresses
from soc.errors import ConfigError
from tests.conftest import require


def test_addresses_and_networks() -> None:
    allow = AllowList(["198.51.100.7", "10.0.0.0/8", "2001:db8:1::/64", "::ffff:192.0.2.9"])
    assert "198.51.100.7" in allow
    assert "198.51.100.8" not in allow
    assert "10.200.3.4" in allow
    assert "2001:db8:1::7" in allow and "2001:db8:1:0:ffff::1" in allow
    assert "2001:db8:2::7" not in allow
    assert "192.0.2.9" in allow  # the IPv4-mapped form as parsers report it
    assert "evil.example" not in allow  # names are never allow-listed
    assert "" not in allow and None not in allow
    assert len(allow) == 4
    assert "10.1.1.1" not in AllowList()


@pytest.mark.parametrize("entry", ["example.com", "10.0.0.0/33", "", "1.2.3"])
def test_bad_entries_are_refused_with_their_position(entry: str) -> None:
    with pytest.raises(ConfigError, match=r"allow_list\[1\]"):
        AllowList(["10.0.0.1", entry])


def test_host_addresses_include_loopback_and_every_interface_address() -> None:
    found = discover_host_addresses()
    assert "127.0.0.1" in found and "::1" in found
    assert all(ipaddress.ip_address(a) for a in found)
    assert len(found) == len(set(found))
    ip_tool = shutil.which("ip")
    require(ip_tool is not None, "iproute2 (`ip`) is not installed")
    assert ip_tool is not None
    listed = json.loads(
        subprocess.run([ip_tool, "-j", "addr"], capture_output=True, check=True).stdout
    )
    locals_ = {
        str(ipaddress.ip_address(info["local"]))
        for interface in listed
        for info in interface.get("addr_info", [])
        if "local" in info
    }
    assert locals_ <= set(found)
