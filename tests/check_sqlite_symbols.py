#!/usr/bin/env python3
"""check_sqlite_symbols.py - only the SQLite drivers may use SQLite (issue 12).

The store and the directory are reached through driver tables
(src/store/store_driver.h, the directory's) so that a second driver
(PostgreSQL, LDAP) can fill them. This test keeps that seam true: it reads
the symbol table (nm) of every object the build compiled and fails when an
object outside the SQLite drivers references a sqlite3_ symbol, and it fails
when a header outside them includes <sqlite3.h> (a type that leaks into a
header leaks into every caller).

usage: check_sqlite_symbols.py BUILD_DIR SOURCE_DIR [NM]
Never edits anything; never judges objects it cannot map to a source file.
"""
import json
import os
import subprocess
import sys

# The SQLite drivers: the only sources that may call sqlite3_*.
DRIVERS = (
    "src/store/sqlite/",  # the store's SQLite driver (store_sqlite_driver)
    "src/directory/directory_sqlite.c",  # the directory's SQLite driver
    "src/base/sqlite_snapshot.c",  # the drivers' shared online backup (wharf backup)
    "src/base/sqlite_setup.c",  # the drivers' shared process-wide settings
    # The store's unit test: its migration cases build databases of older
    # schema versions of the store's SQLite driver, as an upgrade finds them.
    "src/store/test_store.c",
    "src/store/test_store_thread.c",  # idem: a store from before threads
    "src/store/test_store_text.c",  # idem: a store from before the full-text index
    "src/store/test_store_util.h",  # what those three share (a number read with SQL)
)

# TO BE MOVED behind a driver by the engineer who owns them (issue 12); the
# lead deletes each entry once the merge leaves the file without sqlite3_.
TO_BE_MOVED = ()


def allowed(path):
    return path.startswith(DRIVERS) or path in DRIVERS or path in TO_BE_MOVED


def main():
    build, source = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    nm = sys.argv[3] if len(sys.argv) > 3 else "nm"
    with open(os.path.join(build, "compile_commands.json")) as f:
        commands = json.load(f)
    bad = []
    objs = {}
    for c in commands:
        src = os.path.relpath(os.path.normpath(os.path.join(c["directory"], c["file"])), source)
        obj = os.path.normpath(os.path.join(c["directory"], c["output"]))
        if not src.startswith("..") and os.path.exists(obj):
            objs[obj] = src
    checked = len(objs)
    names = sorted(objs)
    uses = {}
    for i in range(0, len(names), 200):  # one nm for many objects: -A names each line's object
        out = subprocess.run([nm, "-u", "-P", "-A"] + names[i:i + 200], capture_output=True,
                             text=True, check=True)
        for line in out.stdout.splitlines():
            obj, _, rest = line.partition(": ")
            sym = rest.split()[0] if rest.split() else ""
            if sym.startswith("sqlite3_"):
                uses.setdefault(obj, set()).add(sym)
    for obj, syms in sorted(uses.items()):
        if not allowed(objs[obj]):
            bad.append("%s (%s): %s" % (objs[obj], obj, ", ".join(sorted(syms)[:5])))
    for root, _, files in os.walk(os.path.join(source, "src")):
        for name in files:
            if not name.endswith(".h"):
                continue
            path = os.path.relpath(os.path.join(root, name), source)
            with open(os.path.join(root, name), errors="replace") as f:
                if "sqlite3" in f.read() and not allowed(path):
                    bad.append("%s: a header outside the SQLite drivers names sqlite3" % path)
    if checked == 0:
        print("no objects found in %s: build first" % build)
        return 1
    for b in bad:
        print("outside the SQLite drivers:", b)
    print("%d objects checked, %d offending" % (checked, len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
