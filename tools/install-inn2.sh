#!/bin/sh
# install-inn2.sh - Debian's inn2 (INN 2.7) for the NNTP feed tests and
# bench/nntp, which start their own innd on free loopback ports with their own
# configuration (tests/integration/test_nntp_feed.py). Installed apart from
# DEPS_TEST because its post-installation script fails on a machine whose host
# name has no domain ("domain:" missing from /etc/news/inn.conf) or whose
# newaliases has no Postfix main.cf, and because the package's own news
# service must not start (policy-rc.d says no while it is installed).
set -eu
if dpkg-query -W -f='${Status}' inn2 2>/dev/null | grep -q "install ok installed"; then
    exit 0
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    policy=yes
fi
if [ -d /etc/postfix ] && [ ! -e /etc/postfix/main.cf ]; then
    $SUDO touch /etc/postfix/main.cf
fi
$SUDO apt-get install -y -qq --no-install-recommends inn2 || true
if ! grep -q '^domain:' /etc/news/inn.conf; then
    echo 'domain: test' | $SUDO tee -a /etc/news/inn.conf >/dev/null
fi
$SUDO dpkg --configure -a
[ -z "$policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d
dpkg-query -W -f='${Status}' inn2 | grep -q "install ok installed"
