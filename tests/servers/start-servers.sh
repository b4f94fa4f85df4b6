#!/usr/bin/env bash
# Start every interop server on 127.0.0.1 with its state under STATE (a folder under /tmp that
# the servers' users can traverse), wait until each listens, and write STATE/env: the variables
# the Rust tests read (ports, spools, CA path, credentials).
#
#   start-servers.sh STATE [SERVER...]      SERVER: aiosmtpd node postfix sink exim (default all)
#
# Stop them with stop-servers.sh STATE (it kills only the pids recorded in STATE/pids).
# Ports: SMTP_INTEROP_PORT_BASE (default 24500) + fixed offsets.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

STATE=${1:?usage: start-servers.sh STATE [SERVER...]}
shift
SERVERS=("$@")
[ ${#SERVERS[@]} -gt 0 ] || SERVERS=(aiosmtpd node postfix sink exim)
TOOLS=${SMTP_INTEROP_HOME:-/var/tmp/smtp-interop}
# Below the kernel's ephemeral range (32768-60999 here): a port inside it can be taken as the
# source port of any outgoing connection, or even connect to itself (TCP self-connect), which
# made the free-port check fail now and then.
BASE=${SMTP_INTEROP_PORT_BASE:-24500}
USER_NAME=alice@example.com
USER_PASS=Secret-pa55
USER_TOKEN=ya29.interop-token
SIZE=1048576

mkdir -p "$STATE"/{pids,logs,pki,bin,spool}
chmod 755 "$STATE" "$STATE/bin"
STATE=$(cd "$STATE" && pwd)
ENV=$STATE/env
touch "$ENV"
setenv() { printf 'export %s=%q\n' "$1" "$2" >> "$ENV"; }

setenv SMTP_INTEROP 1
setenv SMTP_INTEROP_STATE "$STATE"
setenv SMTP_INTEROP_USER "$USER_NAME"
setenv SMTP_INTEROP_PASS "$USER_PASS"
setenv SMTP_INTEROP_TOKEN "$USER_TOKEN"
setenv SMTP_INTEROP_RESULTS "$STATE/results.tsv"

# ------------------------------------------------------------------ test CA and server certificate
# NAME.key, NAME.csr, NAME.ext and NAME.pem under STATE/pki: a leaf for CN, signed by the test CA,
# with extended key usage USAGE and any further extension lines (e.g. a subjectAltName).
#   issue_leaf NAME CN USAGE [EXTENSION...]
issue_leaf() {
    local d=$STATE/pki name=$1 cn=$2 usage=$3
    shift 3
    openssl req -new -newkey rsa:2048 -nodes -sha256 -subj "/CN=$cn" \
        -keyout "$d/$name.key" -out "$d/$name.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=$usage" "$@" > "$d/$name.ext"
    openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
        -CAcreateserial -days 2 -sha256 -extfile "$d/$name.ext" -out "$d/$name.pem" 2>/dev/null
}

pki() {
    local d=$STATE/pki
    [ -f "$d/ca.pem" ] && return 0
    openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 2 \
        -subj "/CN=smtp-interop test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
    issue_leaf server localhost serverAuth "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
    cat "$d/server.pem" "$d/ca.pem" > "$d/server-fullchain.pem"
    chmod 600 "$d/server.key" "$d/ca.key"
}
pki
setenv SMTP_INTEROP_CA "$STATE/pki/ca.pem"

# ------------------------------------------------------------------ client certificates (mutual TLS)
# One signed by the test CA (what the mutual-TLS port accepts) and one from a CA of its own (what
# it must refuse).
client_pki() {
    local d=$STATE/pki
    [ -f "$d/client.pem" ] && return 0
    issue_leaf client "interop client" clientAuth
    openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/CN=stranger" \
        -addext "extendedKeyUsage=clientAuth" \
        -keyout "$d/stranger.key" -out "$d/stranger.pem" 2>/dev/null
    chmod 600 "$d/client.key" "$d/stranger.key"
}
client_pki
setenv SMTP_INTEROP_CLIENT_CERT "$STATE/pki/client.pem"
setenv SMTP_INTEROP_CLIENT_KEY "$STATE/pki/client.key"
setenv SMTP_INTEROP_STRANGER_CERT "$STATE/pki/stranger.pem"
setenv SMTP_INTEROP_STRANGER_KEY "$STATE/pki/stranger.key"

check_free() {
    local p
    for p in "$@"; do
        ! port_open "$p" || die "port $p is already in use (set SMTP_INTEROP_PORT_BASE to move every port)"
    done
}

# started NAME PID PORT...: record PID as server NAME's, then wait until it listens on each PORT.
started() {
    local name=$1 pid=$2 port
    shift 2
    record_pid "$name" "$pid"
    for port in "$@"; do wait_port "$name" "$port" "$pid"; done
}

# ------------------------------------------------------------------ aiosmtpd
start_aiosmtpd() {
    local p=$((BASE + 0)) t=$((BASE + 1)) m=$((BASE + 2)) spool=$STATE/spool/aiosmtpd
    check_free "$p" "$t" "$m"
    mkdir -p "$spool"
    "$TOOLS/venv/bin/python" "$HERE/aiosmtpd/runner.py" --port "$p" --tls-port "$t" \
        --mtls-port "$m" --client-ca "$STATE/pki/ca.pem" \
        --spool "$spool" --cert "$STATE/pki/server-fullchain.pem" --key "$STATE/pki/server.key" \
        --size "$SIZE" --user "$USER_NAME" --password "$USER_PASS" \
        > "$STATE/logs/aiosmtpd.log" 2>&1 &
    started aiosmtpd $! "$p" "$t" "$m"
    setenv SMTP_INTEROP_AIOSMTPD_PORT "$p"
    setenv SMTP_INTEROP_AIOSMTPD_MTLS_PORT "$m"
    setenv SMTP_INTEROP_AIOSMTPD_TLS_PORT "$t"
    setenv SMTP_INTEROP_AIOSMTPD_SPOOL "$spool"
    setenv SMTP_INTEROP_AIOSMTPD_SIZE "$SIZE"
}

# ------------------------------------------------------------------ nodemailer smtp-server
start_node() {
    local p=$((BASE + 10)) t=$((BASE + 11)) l=$((BASE + 12)) spool=$STATE/spool/node
    check_free "$p" "$t" "$l"
    mkdir -p "$spool"
    SPOOL=$spool TLS_CERT=$STATE/pki/server-fullchain.pem TLS_KEY=$STATE/pki/server.key \
        PORT_SMTP=$p PORT_SMTPS=$t PORT_LMTP=$l SIZE=$SIZE \
        USER_NAME=$USER_NAME USER_PASS=$USER_PASS USER_TOKEN=$USER_TOKEN \
        node "$HERE/node/runner.js" > "$STATE/logs/node.log" 2>&1 &
    started node $! "$p" "$t" "$l"
    setenv SMTP_INTEROP_NODE_PORT "$p"
    setenv SMTP_INTEROP_NODE_TLS_PORT "$t"
    setenv SMTP_INTEROP_NODE_LMTP_PORT "$l"
    setenv SMTP_INTEROP_NODE_SPOOL "$spool"
    setenv SMTP_INTEROP_NODE_SIZE "$SIZE"
}

# ------------------------------------------------------------------ Postfix + Dovecot SASL
fill() { # fill TEMPLATE > OUT with the @VARS@ of this run
    sed -e "s|@STATE@|$STATE|g" -e "s|@BIN@|$STATE/bin|g" -e "s|@SIZE@|$4|g" \
        -e "s|@PORT_SMTP@|$1|g" -e "s|@PORT_SUBMIT@|$2|g" -e "s|@PORT_SMTPS@|$3|g" \
        -e "s|@USER@|$USER_NAME|g" -e "s|@PASS@|$USER_PASS|g" "$5"
}

start_postfix() {
    local p=$((BASE + 20)) s=$((BASE + 21)) t=$((BASE + 22)) d=$STATE/dovecot pf=$STATE/postfix
    local spool=$STATE/spool/postfix pid i psize=$((SIZE + 4096))
    check_free "$p" "$s" "$t"
    # Dovecot, SASL only.
    mkdir -p "$d/run" "$d/state"
    fill "$p" "$s" "$t" "$psize" "$HERE/postfix/dovecot.conf.in" > "$d/dovecot.conf"
    printf '%s:{PLAIN}%s\n' "$USER_NAME" "$USER_PASS" > "$d/users"
    chmod 640 "$d/users"; chgrp dovecot "$d/users" 2>/dev/null || true
    dovecot -F -c "$d/dovecot.conf" > "$STATE/logs/dovecot.log" 2>&1 &
    pid=$!
    record_pid dovecot "$pid"
    for i in $(seq 1 100); do [ -S "$d/auth-postfix" ] && break; sleep 0.1; done
    [ -S "$d/auth-postfix" ] || die "dovecot did not create its auth socket (see $d/dovecot.log)"

    # Postfix.
    mkdir -p "$pf/conf" "$pf/queue" "$pf/data" "$spool"
    chown postfix "$pf/data"
    chown nobody "$spool"
    install -m 755 "$HERE/postfix/capture.sh" "$STATE/bin/postfix-capture.sh"
    fill "$p" "$s" "$t" "$psize" "$HERE/postfix/main.cf.in" > "$pf/conf/main.cf"
    fill "$p" "$s" "$t" "$psize" "$HERE/postfix/master.cf.in" > "$pf/conf/master.cf"
    cp "$HERE/postfix/recipients.regexp" "$pf/conf/recipients.regexp"
    postfix -c "$pf/conf" check > "$STATE/logs/postfix-check.log" 2>&1 \
        || die "postfix check failed: $(cat "$STATE/logs/postfix-check.log" "$pf/postfix.log" 2>/dev/null | tail -5)"
    postfix -c "$pf/conf" start > "$STATE/logs/postfix.log" 2>&1 \
        || die "postfix start failed: $(tail -5 "$pf/postfix.log" 2>/dev/null)"
    for i in $(seq 1 100); do [ -s "$pf/queue/pid/master.pid" ] && break; sleep 0.1; done
    pid=$(tr -d ' \n' < "$pf/queue/pid/master.pid")
    started postfix "$pid" "$p" "$s" "$t"
    setenv SMTP_INTEROP_POSTFIX_PORT "$p"
    setenv SMTP_INTEROP_POSTFIX_SUBMIT_PORT "$s"
    setenv SMTP_INTEROP_POSTFIX_TLS_PORT "$t"
    setenv SMTP_INTEROP_POSTFIX_SPOOL "$spool"
    setenv SMTP_INTEROP_POSTFIX_SIZE "$psize"
}

# ------------------------------------------------------------------ smtp-sink fault injectors
start_sink() {
    local spec name off opts port pid ports=() spool=$STATE/spool/sink
    mkdir -p "$spool"; chown nobody "$spool"
    # name:offset:options
    for spec in \
        "basic:40:-d $spool/%H%M%S." \
        "nopipe:41:-p" \
        "noesmtp:42:-f EHLO" \
        "rcpt5xx:43:-f RCPT" \
        "mail4xx:44:-r MAIL" \
        "datahangup:45:-q DATA" \
        "rcpt421:46:-Q RCPT" \
        "abort550:47:-A 0" \
        "dot5xx:48:-f ." \
        "lmtp:49:-L" \
        "dot4xx:50:-r ." ; do
        name=${spec%%:*}; off=${spec#*:}; opts=${off#*:}; off=${off%%:*}
        port=$((BASE + off))
        check_free "$port"
        # shellcheck disable=SC2086
        smtp-sink -u nobody -h sink.interop.test $opts 127.0.0.1:"$port" 64 \
            > "$STATE/logs/sink-$name.log" 2>&1 &
        pid=$!
        record_pid "sink-$name" "$pid"
        ports+=("$name=$port")
    done
    for spec in "${ports[@]}"; do
        name=${spec%%=*}
        read -r pid _ < "$STATE/pids/sink-$name.pid"
        wait_port "sink-$name" "${spec#*=}" "$pid"
    done
    setenv SMTP_INTEROP_SINK_PORTS "$(IFS=,; echo "${ports[*]}")"
    setenv SMTP_INTEROP_SINK_SPOOL "$spool"
}

# ------------------------------------------------------------------ Exim (unpacked)
start_exim() {
    local p=$((BASE + 30)) t=$((BASE + 31)) e=$STATE/exim spool=$STATE/spool/exim
    local bin=$TOOLS/exim/root/usr/sbin/exim4
    [ -x "$bin" ] || die "exim4 is not unpacked in $TOOLS/exim (run install.sh)"
    check_free "$p" "$t"
    mkdir -p "$e/spool" "$e/log" "$spool"
    install -m 755 "$HERE/exim/capture.sh" "$STATE/bin/exim-capture.sh"
    fill "$p" "" "$t" "$SIZE" "$HERE/exim/exim.conf.in" | sed "s|@EXIM@|$bin|" > "$e/exim.conf"
    chmod 644 "$e/exim.conf"
    install -m 600 "$STATE/pki/server.key" "$e/server.key"
    install -m 644 "$STATE/pki/server-fullchain.pem" "$e/server-fullchain.pem"
    chown -R Debian-exim:Debian-exim "$e" "$spool"
    chown root:root "$e/exim.conf"
    "$bin" -C "$e/exim.conf" -bdf > "$STATE/logs/exim.log" 2>&1 &
    started exim $! "$p" "$t"
    setenv SMTP_INTEROP_EXIM_PORT "$p"
    setenv SMTP_INTEROP_EXIM_TLS_PORT "$t"
    setenv SMTP_INTEROP_EXIM_SPOOL "$spool"
    setenv SMTP_INTEROP_EXIM_SIZE "$SIZE"
}

for s in "${SERVERS[@]}"; do
    case $s in
        aiosmtpd|node|postfix|sink|exim) log "starting $s"; "start_$s" ;;
        *) die "unknown server $s (aiosmtpd node postfix sink exim)" ;;
    esac
done
log "all started; environment in $ENV"
