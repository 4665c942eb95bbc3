"""The organization and its routing engine on 691 (doc/routing.md).

Several wharfd on 127.0.0.2, .3, .4 ... form one organization with
`wharf org create` / `wharf org join`; the routing processes peer over TLS
authenticated with the org key, flood link state and the configuration, and
compute least-cost routes that `wharf routes --json` shows. Every wait polls
that output against a deadline; nothing sleeps to synchronise.
"""
import json

import pytest

from conftest import wait_until


def org_show(w):
    return json.loads(w.wharf("org", "show", "--json").stdout)


def test_org_config_cli(wharf_factory):
    """create, group/server/connector add with serials; bad input refused; a tampered record refused."""
    w = wharf_factory("a", host="127.0.0.2", enable=[])
    r = w.wharf("org", "create", "acme", "--server", "a1", "--group", "rg-a",
                "--address", "127.0.0.2:6691")
    key = r.stdout.decode().split()[-1]
    assert len(key) == 64
    w.wharf("org", "group", "add", "rg-b")
    w.wharf("org", "server", "add", "b1", "--group", "rg-b", "--address", "127.0.0.3:6691")
    w.wharf("org", "connector", "add", "ab", "--from", "rg-a", "--to", "rg-b", "--cost", "5",
            "--source", "a1", "--target", "b1")
    w.wharf("org", "connector", "add", "ps", "--from", "rg-b", "--space", "*.partner.test",
            "--smarthost", "127.0.0.1:2526", "--cost", "1", "--source", "b1")
    rec = org_show(w)
    assert rec["config"]["serial"] == 5
    assert [c["name"] for c in rec["config"]["connectors"]] == ["ab", "ps"]
    assert w.wharf("org", "key").stdout.decode().strip() == key
    # cost outside 1..100, a bridgehead of the wrong group, a duplicate, an unknown group
    for bad in (["connector", "add", "x", "--from", "rg-a", "--to", "rg-b", "--cost", "0",
                 "--source", "a1", "--target", "b1"],
                ["connector", "add", "x", "--from", "rg-a", "--to", "rg-b", "--cost", "101",
                 "--source", "a1", "--target", "b1"],
                ["connector", "add", "x", "--from", "rg-a", "--to", "rg-b", "--cost", "3",
                 "--source", "b1", "--target", "b1"],
                ["group", "add", "rg-a"],
                ["server", "add", "c1", "--group", "rg-zz", "--address", "127.0.0.4:6691"]):
        r = w.wharf("org", *bad, check=False)
        assert r.returncode != 0, bad
    assert org_show(w)["config"]["serial"] == 5
    w.wharf("org", "connector", "disable", "ab")
    assert org_show(w)["config"]["connectors"][0]["enabled"] is False
    # a record changed behind the MAC's back is refused
    path = w.data / "routing" / "org.json"
    path.write_text(path.read_text().replace('"cost":1', '"cost":2'))
    r = w.wharf("org", "show", check=False)
    assert r.returncode != 0 and b"MAC" in r.stderr
