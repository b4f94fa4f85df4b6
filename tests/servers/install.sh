#!/usr/bin/env bash
# Install everything the interop servers need, idempotently, on Debian 12 as root.
# Only the package registries are used: Debian (apt), PyPI (pip), npm.
#
#   Postfix + Dovecot (apt; Postfix preseeded to "No configuration" so no system instance exists)
#   Exim 4 (apt-get download + dpkg-deb -x: installing it would remove Postfix)
#   aiosmtpd (pip, in a venv)           smtp-server (npm ci, pinned by package-lock.json)
#
# Tools go under $SMTP_INTEROP_HOME (default /var/tmp/smtp-interop). Safe to run again.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
HOME_DIR=${SMTP_INTEROP_HOME:-/var/tmp/smtp-interop}
AIOSMTPD_VERSION=1.4.6
mkdir -p "$HOME_DIR"

log() { printf '[install] %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
    log "must run as root (apt-get, users for the servers)"; exit 1
fi

export DEBIAN_FRONTEND=noninteractive
APT_PKGS=(postfix dovecot-core openssl python3-venv nodejs npm ca-certificates)
missing=()
for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node may come from elsewhere (e.g. a preinstalled node + npm): accept any working pair.
if command -v node >/dev/null && command -v npm >/dev/null; then
    tmp=(); for p in "${missing[@]}"; do case $p in nodejs|npm) ;; *) tmp+=("$p");; esac; done
    missing=("${tmp[@]+"${tmp[@]}"}")
fi
APT_UPDATED=
apt_update() { [ -n "$APT_UPDATED" ] || { log "apt-get update"; apt-get update -qq; APT_UPDATED=1; }; }
if [ ${#missing[@]} -gt 0 ]; then
    apt_update
    # No system Postfix instance: no main.cf is written and nothing is started.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    log "apt-get install ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Exim: unpacked, never installed (apt would remove Postfix: both provide mail-transport-agent).
EXIM_DIR=$HOME_DIR/exim
if [ ! -x "$EXIM_DIR/root/usr/sbin/exim4" ]; then
    apt_update
    rm -rf "$EXIM_DIR"; mkdir -p "$EXIM_DIR/debs"
    # apt downloads as _apt when it can write there (otherwise it warns and downloads as root).
    chown _apt "$EXIM_DIR/debs" 2>/dev/null || true
    (cd "$EXIM_DIR/debs" && apt-get download -qq exim4-daemon-light >/dev/null)
    # Its shared libraries (not the exim4 packages themselves).
    libs=$(apt-cache depends exim4-daemon-light | awk '/Depends:/ {print $2}' \
        | grep -v -e '^exim4' -e '^<' -e '^debconf' -e '^adduser' || true)
    if [ -n "$libs" ]; then
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $libs >/dev/null
    fi
    dpkg-deb -x "$EXIM_DIR"/debs/exim4-daemon-light_*.deb "$EXIM_DIR/root"
fi
# The light build's exim user is compiled in as Debian-exim.
if ! getent passwd Debian-exim >/dev/null; then
    log "creating user Debian-exim"
    getent group Debian-exim >/dev/null || groupadd --system Debian-exim
    useradd --system --gid Debian-exim --home-dir /var/spool/exim4 --no-create-home \
        --shell /usr/sbin/nologin Debian-exim
fi

# aiosmtpd in its own venv, from the system Python (not any pyenv/conda shim).
VENV=$HOME_DIR/venv
if ! "$VENV/bin/python" -c "import aiosmtpd, sys; sys.exit(aiosmtpd.__version__ != '$AIOSMTPD_VERSION')" 2>/dev/null; then
    log "pip install aiosmtpd==$AIOSMTPD_VERSION"
    rm -rf "$VENV"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION"
fi

# nodemailer smtp-server, exact versions from package-lock.json.
NODE_DIR=$HERE/node
if ! (cd "$NODE_DIR" && node -e "require('smtp-server')" 2>/dev/null) \
    || ! cmp -s "$NODE_DIR/package-lock.json" "$NODE_DIR/node_modules/.interop-lock" 2>/dev/null; then
    log "npm ci (smtp-server)"
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    cp "$NODE_DIR/package-lock.json" "$NODE_DIR/node_modules/.interop-lock"
fi

log "done"
