"""The wharf command's accounts: domains, users, aliases, against a real wharfd's data."""
import json
import os
import pwd

from conftest import wait_until
from authwire import AUTH_OK, check

# The services this module's servers listen on (conftest.wharf_factory).
WHARF_SERVICES = ()  # accounts through the wharf command and the auth socket: no listener

EX_USAGE, EX_DATAERR, EX_NOUSER, EX_NOHOST, EX_CANTCREAT = 64, 65, 67, 68, 73


def test_account_lifecycle(wharf_server):
    w = wharf_server.wharf
    assert w("domain", "add", "Example.ORG").returncode == 0
    r = w("domain", "add", "example.org", check=False)
    assert r.returncode == EX_CANTCREAT and b"already exists" in r.stderr
    assert w("domain", "add", "bad..domain", check=False).returncode == EX_DATAERR
    domains = json.loads(w("domain", "list", "--json").stdout)
    assert {"domain": "example.org", "source": "directory"} in domains
    assert {"domain": "example.test", "source": "mydomains"} in domains

    assert w("user", "add", "alice@Example.org", "--password-stdin", "--quota", "1G",
             input=b"pw one\n").returncode == 0
    r = w("user", "add", "alice@example.org", input=b"x\n", check=False)
    assert r.returncode == EX_CANTCREAT and b"already exists" in r.stderr
    r = w("user", "add", "carol@nowhere.test", input=b"x\n", check=False)
    assert r.returncode == EX_NOHOST and b"unknown domain nowhere.test" in r.stderr
    assert w("user", "add", "not-an-address", input=b"x\n", check=False).returncode == EX_DATAERR
    assert w("user", "add", "dave@example.org", input=b"\n", check=False).returncode == EX_DATAERR
    assert w("user", "add", "bob@example.test", input=b"pw two\n").returncode == 0
    assert w("user", "add", check=False).returncode == EX_USAGE

    users = json.loads(w("user", "list", "--json").stdout)
    assert [u["account"] for u in users] == ["alice@example.org", "bob@example.test"]
    assert users[0]["quota_bytes"] == 1 << 30 and users[0]["quota_messages"] == 0
    assert [u["account"] for u in json.loads(w("user", "list", "EXAMPLE.org", "--json").stdout)] \
        == ["alice@example.org"]
    assert b"alice@example.org" in w("user", "list").stdout

    assert w("user", "quota", "alice@example.org", "500M", "1000").returncode == 0
    u = json.loads(w("user", "list", "example.org", "--json").stdout)[0]
    assert (u["quota_bytes"], u["quota_messages"]) == (500 << 20, 1000)
    assert w("user", "quota", "ghost@example.org", "1G", check=False).returncode == EX_NOUSER

    assert w("user", "passwd", "alice@example.org", input=b"pw three\n").returncode == 0
    assert w("user", "passwd", "ghost@example.org", input=b"x\n",
             check=False).returncode == EX_NOUSER
    assert w("user", "import-hash", "alice@example.org", "$1$abc$xyz",
             check=False).returncode == EX_DATAERR

    assert w("alias", "add", "sales@example.org", "alice@example.org",
             "partner@elsewhere.test").returncode == 0
    assert w("alias", "add", "@example.org", "alice@example.org").returncode == 0
    assert w("alias", "add", "x@nowhere.test", "alice@example.org",
             check=False).returncode == EX_NOHOST
    aliases = json.loads(w("alias", "list", "--json").stdout)
    assert aliases == {"@example.org": ["alice@example.org"],
                       "sales@example.org": ["alice@example.org", "partner@elsewhere.test"]}
    assert b"sales@example.org -> alice@example.org, partner@elsewhere.test" in \
        w("alias", "list").stdout

    r = w("domain", "del", "example.org", check=False)
    assert r.returncode == EX_DATAERR and b"delete them first" in r.stderr
    assert w("alias", "del", "sales@example.org", "partner@elsewhere.test").returncode == 0
    assert json.loads(w("alias", "list", "--json").stdout)["sales@example.org"] == \
        ["alice@example.org"]
    assert w("alias", "del", "sales@example.org").returncode == 0
    assert w("alias", "del", "sales@example.org", check=False).returncode == EX_NOUSER
    assert w("alias", "del", "@example.org").returncode == 0
    assert w("user", "del", "alice@example.org").returncode == 0
    assert w("user", "del", "alice@example.org", check=False).returncode == EX_NOUSER
    assert w("domain", "del", "example.org").returncode == 0
    assert w("domain", "del", "example.org", check=False).returncode == EX_NOUSER


def test_cli_as_root_leaves_no_root_files(wharf_server):
    if os.geteuid() != 0:
        return
    wharf_server.wharf("user", "add", "alice@example.test", input=b"pw\n")
    wharf = pwd.getpwnam("wharf")
    for dirpath, dirnames, filenames in os.walk(wharf_server.data / "directory"):
        for name in [dirpath] + [os.path.join(dirpath, f) for f in filenames]:
            st = os.stat(name)
            assert st.st_uid == wharf.pw_uid, f"{name} is owned by uid {st.st_uid}"
            assert st.st_mode & 0o077 == 0, f"{name} is readable by others"


def test_new_user_can_log_in_at_once(wharf_server):
    wharf_server.wharf("user", "add", "erin@example.test", input=b"secret\n")
    sock = wharf_server.data / "run" / "auth.sock"
    wait_until(lambda: sock.exists(), what="auth.sock")
    assert check(sock, "erin@example.test", "secret") == (AUTH_OK, "erin@example.test")


def run_on_tty(server, args, lines):
    """Runs wharf with a terminal on stdin and types lines at its prompts."""
    import pty
    import subprocess
    from conftest import WHARF, sanitizer_env
    master, slave = pty.openpty()
    p = subprocess.Popen([str(WHARF), "-c", str(server.conf), *args], stdin=slave,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=sanitizer_env())
    os.close(slave)
    err = b""
    for n, line in enumerate(lines, 1):
        # Type only once the prompt is there (typeahead is discarded, as by getpass).
        while err.count(b"password:") < n:
            chunk = p.stderr.read1(4096)
            assert chunk, f"wharf exited before prompt {n}: {err!r}"
            err += chunk
        os.write(master, line + b"\n")
    out, rest = p.communicate(timeout=60)
    err += rest
    echoed = b""
    try:
        while True:
            chunk = os.read(master, 4096)
            if not chunk:
                break
            echoed += chunk
    except OSError:
        pass
    os.close(master)
    return p.returncode, out, err, echoed


def test_password_prompt_on_a_terminal(wharf_server):
    rc, out, err, echoed = run_on_tty(wharf_server, ["user", "add", "tty@example.test"],
                                      [b"typed secret", b"typed secret"])
    assert rc == 0, err
    assert b"New password:" in err and b"Retype new password:" in err
    assert b"typed secret" not in echoed, "the password was echoed on the terminal"
    sock = wharf_server.data / "run" / "auth.sock"
    wait_until(lambda: sock.exists(), what="auth.sock")
    assert check(sock, "tty@example.test", "typed secret")[0] == AUTH_OK
    rc, out, err, echoed = run_on_tty(wharf_server, ["user", "passwd", "tty@example.test"],
                                      [b"one", b"two"])
    assert rc == EX_DATAERR and b"do not match" in err
    assert check(sock, "tty@example.test", "typed secret")[0] == AUTH_OK


def test_directory_driver_option(wharf_factory):
    """directory_driver chooses the directory's driver; an unknown one is refused, never ignored."""
    server = wharf_factory()  # the wharf command alone: wharfd need not run
    w = server.wharf
    assert w("-o", "directory_driver=sqlite", "domain", "add", "example.org").returncode == 0
    r = w("-o", "directory_driver=ldapx", "domain", "list", check=False)
    assert r.returncode != 0
    assert b"directory_driver: unknown driver 'ldapx'" in r.stderr
    assert b"example.org" not in r.stdout
    assert b"example.org" in w("domain", "list").stdout  # the default: sqlite
