"""Connection limits hold for the whole server, whichever worker accepts.

wharfd shares one table of connection counts with every worker process
(src/base/conntab.c). These tests run POP3 with three workers and steer each
connection to a chosen worker by stopping the others (SIGSTOP: a stopped
process cannot accept, so the kernel's accept queue goes to the one left), so
that the limit is seen to hold across processes, not by luck of scheduling.
"""
import os
import poplib
import select
import signal

from conftest import LineClient, tls_context, wait_until

USER = "alice@example.test"
PASSWORD = "correct horse battery"
PER_IP = 4


def start(wharf_factory, **extra):
    # 127.0.0.1 must not be in mynetworks: trusted networks have no per-address limit.
    settings = {"workers": "3", "pop3_max_connections_per_ip": str(PER_IP),
                "pop3_max_connections": "100", "mynetworks": "192.0.2.0/24",
                # The held sessions are idle before login: never evicted here, however slow
                # the machine (eviction is test_abuse.py's business).
                "connection_evict_idle": "1h"}
    settings.update(extra)
    return wharf_factory(enable={"pop3"}, extra=settings).start()


def workers(server, generation=None):
    c = server.component("pop3")
    return [p["pid"] for p in c["processes"]
            if p["state"] == "running" and (generation is None or p["generation"] == generation)]


def proc_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def on_worker(pids, pid, fn):
    """Runs fn while every worker but pid is stopped, so that pid accepts."""
    others = [p for p in pids if p != pid]
    for p in others:
        os.kill(p, signal.SIGSTOP)
    try:
        for p in others:
            wait_until(lambda: proc_state(p) == "T", what=f"worker {p} to stop")
        return fn()
    finally:
        for p in others:
            os.kill(p, signal.SIGCONT)


def pop3(server):
    return LineClient(server.ports["pop3"])


def pop3_total(server):
    return server.status()["connections_by_service"]["pop3"]


def admitted(c):
    return c.greeting.startswith("+OK")


def refused(c):
    return c.greeting.startswith("-ERR [SYS/TEMP]") and c.line() == ""


def quit(c):
    c.send(b"QUIT\r\n")
    assert c.line().startswith("+OK")
    c.close()


def test_per_ip_limit_holds_over_all_workers(wharf_factory):
    server = start(wharf_factory)
    a, b, c = pids = workers(server)
    held = {pid: [on_worker(pids, pid, lambda: pop3(server)) for _ in range(2)] for pid in (a, b)}
    assert all(admitted(x) for xs in held.values() for x in xs)
    st = server.status()
    per_proc = {p["pid"]: p["connections"] for p in server.component("pop3")["processes"]}
    assert per_proc == {a: 2, b: 2, c: 0}
    assert st["connections_by_service"]["pop3"] == PER_IP
    row = next(r for r in server.port_map()["ports"] if r["service"] == "pop3")
    assert row["connections"] == PER_IP

    # Worker c holds nothing, yet refuses: the address has its four elsewhere.
    extra = on_worker(pids, c, lambda: pop3(server))
    assert refused(extra)
    wait_until(lambda: "pop3: refusing connection from unknown[127.0.0.1]: "
                       "too many connections from this address" in server.log(),
               what="the refusal in the log")

    # Closing one on a frees exactly one place, usable on c.
    quit(held[a].pop())
    wait_until(lambda: pop3_total(server) == PER_IP - 1, what="the count to drop")
    again = on_worker(pids, c, lambda: pop3(server))
    assert admitted(again)
    assert refused(on_worker(pids, a, lambda: pop3(server)))
    table = server.wharf("ports").stdout.decode().splitlines()
    head = next(line for line in table if line.startswith("EXCHANGE"))
    pop3_row = next(line for line in table if " pop3 " in line).split()
    assert pop3_row[head.split().index("CONNS") + 1] == str(PER_IP)  # "100, 4/ip" is two words

    # The service total holds across workers too.
    for x in held[a] + held[b] + [again]:
        quit(x)
    wait_until(lambda: pop3_total(server) == 0, what="every session to end")


def test_service_limit_holds_over_all_workers(wharf_factory):
    # Not a share per worker (4 / 3 rounded up = 2 each): four in all, anywhere.
    server = start(wharf_factory, pop3_max_connections="4", pop3_max_connections_per_ip="10")
    a, b, c = pids = workers(server)
    held = [on_worker(pids, a, lambda: pop3(server)) for _ in range(3)]
    held.append(on_worker(pids, b, lambda: pop3(server)))
    assert all(admitted(x) for x in held)
    assert refused(on_worker(pids, c, lambda: pop3(server)))
    wait_until(lambda: "pop3: refusing connection from unknown[127.0.0.1]: too many connections"
               in server.log(), what="the refusal in the log")
    assert "too many connections from this address" not in server.log()
    for x in held:
        quit(x)


def closed_by_server(c):
    """True once the server has closed c (read to the end); never blocks."""
    if not select.select([c.sock], [], [], 0)[0]:
        return False
    while True:
        if c.line() == "":
            return True


def test_full_service_evicts_an_idle_stranger_held_by_another_worker(wharf_factory):
    # Every place is held by worker a's strangers; a newcomer accepted by b (which holds
    # none) is admitted at once, and a closes its idlest stranger when asked over the bus.
    server = start(wharf_factory, pop3_max_connections="4", pop3_max_connections_per_ip="10",
                   connection_evict_idle="1s")
    a, b, c = pids = workers(server)
    idle = [on_worker(pids, a, lambda: pop3(server)) for _ in range(4)]
    assert all(admitted(x) for x in idle)

    def newcomer_on_b():
        # a is stopped meanwhile: it can only close a stranger after b admitted this one.
        x = on_worker(pids, b, lambda: pop3(server))
        if admitted(x):
            return x
        assert refused(x)  # until a's strangers have been idle for connection_evict_idle
        x.close()
        return None
    newcomer = wait_until(newcomer_on_b, timeout=30, interval=0.2,
                          what="a newcomer on b to be admitted")
    evicted = wait_until(lambda: [x for x in idle if closed_by_server(x)],
                         what="a to close one of its strangers")
    assert len(evicted) == 1
    wait_until(lambda: pop3_total(server) == 4, what="the count back at the limit")
    log = server.log()
    assert "evicting unknown[127.0.0.1], idle for" in log
    assert not [x for x in idle if x not in evicted and closed_by_server(x)]
    quit(newcomer)
    for x in idle:
        if x not in evicted:
            quit(x)


def test_killed_worker_gives_its_places_back(wharf_factory):
    server = start(wharf_factory)
    a, b, c = pids = workers(server)
    held = [on_worker(pids, a, lambda: pop3(server)) for _ in range(3)]
    held.append(on_worker(pids, b, lambda: pop3(server)))
    assert all(admitted(x) for x in held)
    assert refused(on_worker(pids, c, lambda: pop3(server)))

    os.kill(a, signal.SIGKILL)

    def restarted():
        now = workers(server)
        return now if len(now) == 3 and a not in now else None
    pids = wait_until(restarted, timeout=30, what="the killed worker to be restarted")
    assert pop3_total(server) == 1  # b's session; a's three died with it
    fresh = [pop3(server) for _ in range(PER_IP - 1)]
    assert all(admitted(x) for x in fresh)
    assert refused(pop3(server))
    for x in fresh + [held[3]]:
        quit(x)


def test_reload_keeps_the_draining_generation_counted(wharf_factory):
    server = start(wharf_factory)
    server.wharf("domain", "add", "example.test")
    server.wharf("user", "add", USER, "--password-stdin", input=PASSWORD.encode() + b"\n")
    # A logged-in session outlives the drain (only idle AUTHORIZATION sessions are cut).
    busy = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=20)
    busy.stls(context=tls_context())
    busy.user(USER)
    busy.pass_(PASSWORD)
    idle = pop3(server)
    assert admitted(idle)
    assert pop3_total(server) == 2
    old = set(workers(server))

    server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: server.status()["generation"] == 1 and len(workers(server, 1)) == 3,
               what="the new generation to run")
    assert idle.line().startswith("-ERR [SYS/TEMP]")  # the idle one was told to go
    wait_until(lambda: pop3_total(server) == 1, what="the idle session to end")
    # The draining session still counts: the new generation admits only the rest.
    fresh = [pop3(server) for _ in range(PER_IP - 1)]
    assert all(admitted(x) for x in fresh)
    assert refused(pop3(server))
    assert pop3_total(server) == PER_IP
    busy.stat()  # still served by the old generation
    busy.quit()
    wait_until(lambda: not old & set(p["pid"] for p in server.component("pop3")["processes"]),
               what="the old generation to leave")
    assert pop3_total(server) == PER_IP - 1
    assert admitted(pop3(server))
    for x in fresh:
        quit(x)
