"""The Prometheus text exposition format 0.0.4, read strictly: /metrics for the tests.

A parser written here (Debian's prometheus package would bring promtool, at the
size of a whole Prometheus server); test_metrics checks the format with it, and
any test that wants a figure scrapes it through `scrape`.
"""
import http.client
import re

from conftest import tls_context

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"')
VALUE = re.compile(r"-?(\d+(\.\d+)?([eE][-+]?\d+)?|\+Inf|-Inf|NaN)\Z")


def parse_exposition(text):
    """Strict: {(name, frozenset(labels)): value}; raises AssertionError on any fault."""
    assert text.endswith("\n"), "the last line must end with a newline"
    types, helps, samples = {}, set(), {}
    current = None
    for ln in text[:-1].split("\n"):
        assert ln and ln == ln.strip(), f"empty or padded line: {ln!r}"
        if ln.startswith("#"):
            parts = ln.split(" ", 3)
            assert parts[0] == "#" and parts[1] in ("HELP", "TYPE"), ln
            assert NAME.match(parts[2]), ln
            if parts[1] == "TYPE":
                assert parts[2] not in types, f"second TYPE for {parts[2]}"
                assert parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"), ln
                types[parts[2]] = parts[3]
                current = parts[2]
            else:
                assert parts[2] not in helps, f"second HELP for {parts[2]}"
                assert len(parts) == 4 and parts[3], ln
                helps.add(parts[2])
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)\Z", ln)
        assert m, f"not a sample line: {ln!r}"
        name, labels, value = m.group(1), m.group(2), m.group(3)
        assert VALUE.match(value), ln
        pairs = []
        if labels:
            body = labels[1:-1]
            pos = 0
            while pos < len(body):
                lm = LABEL.match(body, pos)
                assert lm, f"bad labels: {ln!r}"
                pairs.append((lm.group(1), lm.group(2)))
                pos = lm.end()
                if pos < len(body):
                    assert body[pos] == ",", f"bad labels: {ln!r}"
                    pos += 1
            assert len({k for k, _ in pairs}) == len(pairs), f"repeated label: {ln!r}"
        family = name
        if current and types.get(current) == "histogram":
            assert name in (current + "_bucket", current + "_sum", current + "_count"), ln
            family = current
        assert family == current, f"sample {name} outside its family ({current})"
        if types[family] == "counter":
            assert float(value) >= 0, ln
        key = (name, frozenset(pairs))
        assert key not in samples, f"duplicate sample: {ln!r}"
        samples[key] = float(value)
    for fam, t in types.items():
        if t != "histogram":
            continue
        buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in samples.items()
                          if k[0] == fam + "_bucket"))
        assert buckets and buckets[-1][0] == float("inf"), f"{fam}: no +Inf bucket"
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), f"{fam}: buckets not cumulative"
        assert samples[(fam + "_count", frozenset())] == counts[-1], f"{fam}: count != +Inf"
    return samples


def sample(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def scrape(server):
    c = http.client.HTTPSConnection(server.host, server.ports["https"], timeout=20,
                                    context=tls_context())
    c.request("GET", "/metrics")
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    assert r.status == 200, body
    assert r.getheader("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    return parse_exposition(body)
