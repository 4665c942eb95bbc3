"""bench/routing: how fast an organization of six Wharf servers converges.

Started by bench/routing/run (which builds build-bench). Six wharfd on
127.0.0.2-.7 in four routing groups with a cheap (A-B-D) and a dear (A-C-D)
path between the sending group A and the receiving group D, on the test
timers (routing_test_timers: tick 50 ms, dead timer 5 s, up-hold 2 s), the
organization made by the tests' own make_org. Figures, each the median of
ROUNDS rounds, read from every server's routing state file (what `wharf
routes` prints) polled every 5 ms:

- config: from `wharf org connector disable|enable` on one server to all six
  holding the new configuration serial;
- kill: from SIGKILL of B's bridgehead to a1 routing D over C;
- blackhole: from SIGSTOP of B's bridgehead (it answers nothing, its sockets stay
  open) to a1 routing D over C: bounded below by the dead timer.
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests" / "integration"))

from conftest import WharfServer, wait_until  # noqa: E402  (the tests' harness, on build-bench)
from orgharness import SIX_LAYOUT, converged, make_org, path_is  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
LAYOUT = SIX_LAYOUT
CONNECTORS = [("ab", "rg-a", "rg-b", 1, "a1", "b1"), ("ba", "rg-b", "rg-a", 1, "b1", "a1"),
              ("bd", "rg-b", "rg-d", 1, "b1", "d1"), ("db", "rg-d", "rg-b", 1, "d1", "b1"),
              ("ac", "rg-a", "rg-c", 3, "a1", "c1"), ("ca", "rg-c", "rg-a", 3, "c1", "a1"),
              ("cd", "rg-c", "rg-d", 3, "c1", "d2"), ("dc", "rg-d", "rg-c", 3, "d2", "c1")]


def state(w):
    try:
        return json.loads((w.data / "routing" / "state.json").read_text())
    except (OSError, ValueError):
        return None


def stopwatch(cond, timeout=60):
    """Seconds until cond() holds, polling every 5 ms."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("no convergence within %ds" % timeout)
        time.sleep(0.005)
    return time.monotonic() - t0


def route_path(w, dest):
    st = state(w)
    r = next((x for x in st["routes"] if x["dest"] == dest), None) if st else None
    return r["path"] if r and r.get("reachable") else None


def connector_state(w, name):
    st = state(w)
    c = next((x for x in st["connectors"] if x["name"] == name), None) if st else None
    return c["state"] if c else None


def main():
    base = Path(subprocess.run(["mktemp", "-d", "/tmp/wharf-bench-routing-XXXXXX"],
                               capture_output=True, text=True, check=True).stdout.strip())
    base.chmod(0o755)

    def factory(name, host, enable, extra):
        (base / name).mkdir()
        (base / name).chmod(0o755)
        return WharfServer(base / name, host=host, enable=enable, extra=extra)

    servers, _ = make_org(factory, LAYOUT, CONNECTORS)
    a1, a2, b1 = servers["a1"], servers["a2"], servers["b1"]
    figures = {"config": [], "kill": [], "blackhole": []}
    try:
        wait_until(converged(servers, path_is("a1", "rg-d", ["ab", "bd"])), 60,
                   what="convergence on A-B-D")
        for rnd in range(ROUNDS):
            serial = state(a1)["config_serial"]
            t0 = time.monotonic()
            a2.wharf("org", "connector", "disable" if rnd % 2 == 0 else "enable", "ac")
            stopwatch(lambda: all((state(w) or {}).get("config_serial") == serial + 1
                                  for w in servers.values()))
            figures["config"].append(time.monotonic() - t0)
            for how, sig in (("kill", signal.SIGKILL), ("blackhole", signal.SIGSTOP)):
                if rnd % 2 == 0:  # ac is disabled: enable it for the other path
                    serial = state(a1)["config_serial"] + 1
                    a2.wharf("org", "connector", "enable", "ac")
                    wait_until(converged(servers, lambda n, st: st["config_serial"] == serial),
                               30, what="ac enabled everywhere")
                    # and published UP: a re-enabled connector is held for the up-hold
                    # (damping), and a kill inside that hold would time the hold, not the
                    # reroute
                    wait_until(lambda: connector_state(a1, "ac") == "UP", 30, what="ac UP")
                wait_until(lambda: route_path(a1, "rg-d") == ["ab", "bd"], 60,
                           what="A-B-D before the failure")
                t0 = time.monotonic()
                if sig == signal.SIGKILL:
                    b1.kill_all()
                else:
                    os.killpg(b1.proc.pid, signal.SIGSTOP)
                stopwatch(lambda: route_path(a1, "rg-d") == ["ac", "cd"])
                figures[how].append(time.monotonic() - t0)
                if sig == signal.SIGKILL:
                    b1.start()
                else:
                    os.killpg(b1.proc.pid, signal.SIGCONT)
                # back on the cheap path after the up-hold (damping) before the next row
                wait_until(lambda: route_path(a1, "rg-d") == ["ab", "bd"], 60,
                           what="A-B-D again")
            print(f"round {rnd + 1}: config {figures['config'][-1]:.3f}s  "
                  f"kill {figures['kill'][-1]:.3f}s  blackhole {figures['blackhole'][-1]:.3f}s",
                  flush=True)
    finally:
        for w in servers.values():
            try:
                os.killpg(w.proc.pid, signal.SIGCONT)
            except (ProcessLookupError, AttributeError, TypeError):
                pass
            w.stop()
            w.kill_all()
        subprocess.run(["rm", "-rf", str(base)])
    print(f"six servers, four groups, test timers; median of {ROUNDS} rounds:")
    for name, what in (("config", "configuration change on a2 -> all six servers hold it"),
                       ("kill", "SIGKILL of bridgehead b1 -> a1 routes over C"),
                       ("blackhole", "SIGSTOP of bridgehead b1 -> a1 routes over C")):
        v = figures[name]
        print(f"  {what:58s} {statistics.median(v):7.3f} s  (min {min(v):.3f}, max {max(v):.3f})")


if __name__ == "__main__":
    main()
