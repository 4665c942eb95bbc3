#!/usr/bin/python3
"""Load generator for local delivery (bench/store/run uses it; its `cli`
driver, one `wharf deliver` process per message, is bench/store/spawnload.c:
64 Python threads calling subprocess under the GIL start fewer processes).

  deliver_load.py sock SOCKET MSGFILE TOTAL PARALLEL
      PARALLEL persistent connections to DATA/run/deliver.sock, each sending
      IPC_DELIVER_REQUEST frames (the frames `wharf deliver` sends) one after
      the other: measures the mta's delivery path without process start-up.

Prints one line: "N deliveries/s (TOTAL in S s, F failed)". Exit 1 if any failed.
"""
import socket
import struct
import sys
import threading
import time

IPC_DELIVER_REQUEST, IPC_DELIVER_REPLY = 300, 301


def field(b):
    return struct.pack(">I", len(b)) + b


def frame(ftype, payload):
    return struct.pack(">IHH", len(payload), ftype, 0) + payload


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError("mta closed the connection")
        out += chunk
    return out


def run(worker, total, parallel):
    lock = threading.Lock()
    state = {"left": total, "failed": 0}

    def take():
        with lock:
            if state["left"] == 0:
                return None
            state["left"] -= 1
            return state["left"]

    def fail():
        with lock:
            state["failed"] += 1

    def guarded():
        try:
            worker(take, fail)
        except Exception as exc:  # a dead client is a failure, never a silent one
            print(f"client failed: {exc!r}", file=sys.stderr)
            with lock:
                state["failed"] += state["left"] + 1
                state["left"] = 0

    threads = [threading.Thread(target=guarded) for _ in range(parallel)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    print(f"{total / elapsed:.0f} deliveries/s ({total} in {elapsed:.2f}s, {state['failed']} failed)")
    return 1 if state["failed"] else 0


def main():
    mode = sys.argv[1]
    if mode == "sock":
        path, msgfile, total, parallel = sys.argv[2:6]
        data = open(msgfile, "rb").read()

        def worker(take, fail):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            while (i := take()) is not None:
                user = f"bench{i % 100}@example.test".encode()
                unique = b"X-Bench: %d\r\n" % i + data  # distinct bodies: no single-instance shortcut
                s.sendall(frame(IPC_DELIVER_REQUEST, field(user) + field(b"") + field(unique)))
                length, ftype, _ = struct.unpack(">IHH", recv_exact(s, 8))
                payload = recv_exact(s, length)
                code = struct.unpack(">Q", payload[:8])[0]
                if ftype != IPC_DELIVER_REPLY or code != 0:
                    fail()
            s.close()
    else:
        sys.exit(__doc__)
    sys.exit(run(worker, int(total), int(parallel)))


if __name__ == "__main__":
    main()
