"""Installing Wharf: `make install DESTDIR=...` and the Debian package of `make deb`.

The install tree is checked file by file (programs, modes, links, the
generated wharf.conf, the unit, the man pages). The package is built, checked
by lintian (in `make deb`), then installed, run, upgraded, removed and purged
with dpkg in a throw-away overlay copy of this machine, in its own mount and
network namespaces (pkg_chroot.py says how): wharfd runs from /usr/sbin on the
installed configuration and takes mail in over SMTP and out over POP3 and IMAP.

Both build with the optimized build of `make install` (build-install/, which
`make deb` reuses), not the sanitizer build the other tests use.
"""
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installs and runs dpkg as root")


def make(*args, timeout=900):
    r = subprocess.run(["make", "-C", str(ROOT), *args], capture_output=True, text=True,
                       timeout=timeout, env=dict(os.environ, CCACHE_BASEDIR=str(ROOT)))
    assert r.returncode == 0, f"make {' '.join(args)}:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r


def mode(p: Path):
    return stat.S_IMODE(p.lstat().st_mode)


@pytest.fixture
def destdir():
    d = Path(tempfile.mkdtemp(prefix="wharf-destdir-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_make_install_tree(destdir):
    make("install", f"DESTDIR={destdir}", "SENDMAIL_LINKS=1")
    d = destdir
    for prog, m in (("usr/sbin/wharfd", 0o755), ("usr/bin/wharf", 0o755),
                    ("usr/libexec/wharf/wharf-admin", 0o755)):
        assert (d / prog).is_file() and mode(d / prog) == m, prog
    # sendmail and mailq: relative links to wharf, valid inside DESTDIR
    assert os.readlink(d / "usr/sbin/sendmail") == "../bin/wharf"
    assert os.readlink(d / "usr/bin/mailq") == "wharf"
    assert (d / "usr/sbin/sendmail").resolve() == (d / "usr/bin/wharf").resolve()

    conf = d / "etc/wharf/wharf.conf"
    assert mode(conf) == 0o644 and (d / "etc/wharf/conf.d").is_dir()
    text = conf.read_text()
    live = [l for l in text.splitlines() if l and not l.startswith("#")]
    assert live == ["config_version = 1", "data_directory = /var/lib/wharf",
                    "pid_file = /run/wharf/wharfd.pid",
                    "control_socket = /run/wharf/control.sock"], live
    # every option of the table is explained in it, commented out
    options = re.findall(r"^OPT\((\w+),", (ROOT / "src/base/options.def").read_text(), re.M)
    for name in options:
        assert re.search(rf"^#?{name} =", text, re.M), f"{name} missing from wharf.conf"
    # and the installed wharf reads it as it is: no error, the same settings
    r = subprocess.run([str(d / "usr/libexec/wharf/wharf-admin"), "-c", str(conf),
                        "config", "dump"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "data_directory = /var/lib/wharf" in r.stdout

    data = d / "var/lib/wharf"
    assert data.is_dir() and mode(data) == 0o751
    assert not (d / "run").exists()  # a tmpfs at boot: wharfd and systemd make /run/wharf

    unit = (d / "lib/systemd/system/wharf.service").read_text()
    for line in ("Type=notify", "ExecStart=/usr/sbin/wharfd -D -c /etc/wharf/wharf.conf",
                 "ExecReload=/bin/kill -HUP $MAINPID", "ProtectSystem=strict",
                 "ReadWritePaths=/var/lib/wharf", "NoNewPrivileges=yes", "WatchdogSec="):
        assert line in unit, line
    for page in ("man8/wharfd.8", "man1/wharf.1", "man5/wharf.conf.5", "man7/wharf-ports.7"):
        p = d / "usr/share/man" / page
        assert p.is_file(), page
        r = subprocess.run(["man", "-l", "--warnings", str(p)], capture_output=True, text=True,
                           env=dict(os.environ, MANWIDTH="80")) if shutil.which("man") else None
        assert r is None or (r.returncode == 0 and not r.stderr.strip()), (page, r.stderr)

    # the webmail's files, which wharfd serves by default when installed
    assert (d / "usr/share/wharf/webmail/index.html").is_file()
    assert (d / "usr/share/wharf/webmail/app.js").is_file()
    assert (d / "usr/share/wharf/webmail/i18n.js").is_file()
    assert (d / "usr/share/wharf/webmail/lang-de.js").is_file()  # a language: one file
    assert (d / "usr/share/wharf/webmail/vendor/purify.js").is_file()  # make install: npm ci
    assert not (d / "usr/share/wharf/webmail/node_modules").exists()

    # a second install keeps the admin's wharf.conf and puts the example beside it
    conf.write_text(text + "myhostname = mail.example.test\n")
    make("install", f"DESTDIR={destdir}")
    assert conf.read_text().endswith("myhostname = mail.example.test\n")
    assert (d / "etc/wharf/wharf.conf.dist").read_text() == text


def test_deb_install_run_upgrade_remove_purge():
    if not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs unshare (util-linux) and ip (iproute2)")
    make("deb")
    out = ROOT / "build-deb"
    debs = sorted(p.name for p in out.glob("*.deb"))
    assert any(re.fullmatch(r"wharf_[^_]+_amd64\.deb", n) for n in debs), debs
    links = subprocess.run(["dpkg-deb", "-c", str(next(out.glob("wharf-sendmail_*.deb")))],
                           capture_output=True, text=True, check=True).stdout
    assert "./usr/sbin/sendmail -> ../bin/wharf" in links, links
    assert "./usr/bin/mailq -> wharf" in links, links

    r = subprocess.run(["unshare", "--mount", "--net", "--fork", sys.executable,
                        str(Path(__file__).with_name("pkg_chroot.py")), str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "pkg_chroot: OK" in r.stdout, r.stdout + r.stderr
