"""Reading a server-sent event stream (JMAP EventSource, RFC 8620 7.3), shared by the tests.

Helpers only: no tests here.
"""


def sse_event(readline):
    """The next event's lines (without line ends), read by readline (a response's or a
    pipe's); fails if the stream closes first."""
    lines = []
    while True:
        ln = readline()
        assert ln, "stream closed"
        if ln in (b"\n", b"\r\n"):
            return lines
        lines.append(ln.decode().rstrip("\r\n"))
