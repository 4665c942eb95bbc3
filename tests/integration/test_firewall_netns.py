"""The firewall the port map promises: `wharf ports --nft` loaded in a network
namespace where wharfd runs, probed from a second namespace ("the internet")
over a veth pair.

Addresses are from 198.18.0.0/15 (RFC 2544, benchmarking) and exist only in
the two namespaces the test creates and deletes. From outside, every enabled
inbound port of Wharf connects; every other port does not: a listener Wharf
turned off (routing, 691), a program of the machine that is not Wharf, and a
port nobody listens on (dropped, not refused). Before the ruleset is loaded
the same probe reaches those listeners, so the test can fail.
"""
import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

from conftest import WHARF, WHARFD, sanitizer_env

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nft"),
    reason="needs root, ip (iproute2) and nft (nftables)")

INSIDE_ADDR, OUTSIDE_ADDR = "198.18.0.1", "198.18.0.2"

# Enabled on their usual ports, on every address of the namespace.
ENABLED = {"smtp": 25, "submission": 587, "smtps": 465, "imap": 143, "imaps": 993,
           "pop3": 110, "pop3s": 995}
OFF = ["nntp", "nntps", "http", "https", "routing"]
# Not Wharf's: a program of the machine (8080) and 691 taken by someone while
# routing_listen is off; 119 and 443 are Wharf's ports turned off (no listener).
OTHER_LISTENERS = [691, 8080]
CLOSED = [119, 443, 22]

PROBE = r"""
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
host, ports = sys.argv[1], [int(p) for p in sys.argv[2].split(",")]
def probe(port):
    s = socket.socket()
    s.settimeout(1.5)  # a dropped SYN is never answered: this is how long we wait for nothing
    try:
        s.connect((host, port))
        return port, "open"
    except ConnectionRefusedError:
        return port, "refused"
    except (socket.timeout, TimeoutError):
        return port, "dropped"
    finally:
        s.close()
with ThreadPoolExecutor(len(ports)) as ex:
    print(json.dumps(dict(ex.map(probe, ports))))
"""

LISTEN = r"""
import socket, sys
socks = []
for p in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(p)))
    s.listen(8)
    socks.append(s)
print("ready", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


def sh(*cmd, input=None):
    r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{' '.join(cmd)}: {r.stdout}{r.stderr}"
    return r.stdout


@pytest.fixture
def namespaces():
    tag = uuid.uuid4().hex[:6]
    inside, outside = f"wharf-in-{tag}", f"wharf-out-{tag}"
    veth_in, veth_out = f"wfi{tag}", f"wfo{tag}"
    sh("ip", "netns", "add", inside)
    sh("ip", "netns", "add", outside)
    try:
        sh("ip", "link", "add", veth_in, "netns", inside, "type", "veth",
           "peer", "name", veth_out, "netns", outside)
        for ns, dev, addr in ((inside, veth_in, INSIDE_ADDR), (outside, veth_out, OUTSIDE_ADDR)):
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        yield inside, outside
    finally:
        subprocess.run(["ip", "netns", "del", inside], capture_output=True)
        subprocess.run(["ip", "netns", "del", outside], capture_output=True)


def probe(outside, ports):
    out = sh("ip", "netns", "exec", outside, sys.executable, "-c", PROBE, INSIDE_ADDR,
             ",".join(map(str, ports)))
    return {int(k): v for k, v in json.loads(out).items()}


def test_nft_ruleset_opens_exactly_the_enabled_ports(wharf_factory, namespaces):
    inside, outside = namespaces
    settings = {f"{svc}_listen": f"*:{port}" for svc, port in ENABLED.items()}
    settings.update({f"{svc}_listen": "off" for svc in OFF})
    server = wharf_factory(enable=set(), extra=settings)
    log = open(server.log_path, "ab")
    server.proc = subprocess.Popen(
        ["ip", "netns", "exec", inside, str(WHARFD), "-f", "-c", str(server.conf)],
        stdout=log, stderr=subprocess.STDOUT, env=sanitizer_env(), start_new_session=True)
    server._log = log
    server.wait_ready()

    others = subprocess.Popen(["ip", "netns", "exec", inside, sys.executable, "-c", LISTEN,
                               *map(str, OTHER_LISTENERS)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert others.stdout.readline().strip() == "ready"
        everything = sorted(ENABLED.values()) + OTHER_LISTENERS + CLOSED

        # Without the firewall every listener answers and a free port refuses.
        before = probe(outside, everything)
        for port in list(ENABLED.values()) + OTHER_LISTENERS:
            assert before[port] == "open", before
        for port in CLOSED:
            assert before[port] == "refused", before

        # Wharf's processes hold exactly the listeners of the map (no stray
        # TCP listener; the IPC sockets are unix sockets, unreachable over IP).
        check = subprocess.run(["ip", "netns", "exec", inside, str(WHARF), "-c",
                                str(server.conf), "ports", "--check"],
                               capture_output=True, text=True, env=sanitizer_env())
        assert check.returncode == 0, check.stdout + check.stderr

        ruleset = sh("ip", "netns", "exec", inside, str(WHARF), "-c", str(server.conf),
                     "ports", "--nft")
        sh("ip", "netns", "exec", inside, "nft", "-f", "-", input=ruleset)

        after = probe(outside, everything)
        for port in ENABLED.values():
            assert after[port] == "open", (port, after, ruleset)
        for port in OTHER_LISTENERS + CLOSED:
            assert after[port] == "dropped", (port, after, ruleset)

        # Inside the namespace (loopback) everything still works: the ruleset
        # accepts lo, so the admin's own tools are not locked out.
        inner = subprocess.run(["ip", "netns", "exec", inside, sys.executable, "-c", PROBE,
                                "127.0.0.1", "25,8080"], capture_output=True, text=True)
        assert json.loads(inner.stdout) == {"25": "open", "8080": "open"}
    finally:
        others.stdin.close()
        others.wait(10)
