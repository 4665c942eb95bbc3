#!/bin/sh
# install-config.sh - meson install script: puts the generated wharf.conf in
# SYSCONFDIR/wharf unless one is already there. It never overwrites an
# admin's file: the new example then goes beside it as wharf.conf.dist.
# (The Debian package does not use this path for upgrades: dpkg's conffile
# handling asks the admin instead.)
set -eu
src=$1
dir=${DESTDIR:-}$2
mkdir -p "$dir"
if [ -e "$dir/wharf.conf" ] && ! cmp -s "$src" "$dir/wharf.conf"; then
    install -m 0644 "$src" "$dir/wharf.conf.dist"
    echo "install-config: kept $dir/wharf.conf; the current example is wharf.conf.dist"
else
    install -m 0644 "$src" "$dir/wharf.conf"
fi
