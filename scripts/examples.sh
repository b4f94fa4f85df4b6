#!/usr/bin/env bash
# Run every example against a local SMTP server and check that it delivered.
#
#   scripts/examples.sh
#
# Builds the examples (smtp-proto: blocking; smtp-io-tokio: send, batch; smtp-io-std: send, the
# blocking client), starts aiosmtpd on
# 127.0.0.1 (a port the kernel picks; STARTTLS with a throwaway test CA made by openssl; AUTH
# PLAIN/LOGIN offered before TLS too, so that --allow-plaintext-auth can be tested), runs each
# example, and checks its exit code and the messages the server stored. Nothing leaves loopback.
#
# aiosmtpd: a python3 that already has it, or the venv of the interop servers
# ($SMTP_INTEROP_HOME/venv, the same pinned version as tests/servers/install.sh), created from
# PyPI if missing. Safe to run again: every run uses a fresh temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."

AIOSMTPD_VERSION=1.4.6
VENV=${SMTP_INTEROP_HOME:-/var/tmp/smtp-interop}/venv
USER_NAME=examples@example.com
USER_PASS=examples-pa55

log() { printf '[examples] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# apt_need PKG...: install the missing Debian packages (as root only).
apt_need() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
        || die "missing packages: ${missing[*]} (install them, or run as root)"
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# ------------------------------------------------------------------ tools
command -v openssl >/dev/null || apt_need openssl
if python3 -c 'import aiosmtpd' 2>/dev/null; then
    PY=python3
else
    if ! "$VENV/bin/python" -c "import aiosmtpd, sys; sys.exit(aiosmtpd.__version__ != '$AIOSMTPD_VERSION')" 2>/dev/null; then
        /usr/bin/python3 -c 'import ensurepip' 2>/dev/null || apt_need python3-venv
        log "pip install aiosmtpd==$AIOSMTPD_VERSION (in $VENV)"
        rm -rf "$VENV"
        mkdir -p "$(dirname "$VENV")"
        /usr/bin/python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION"
    fi
    PY=$VENV/bin/python
fi

log "building the examples"
cargo build --quiet -p smtp-proto --example blocking
cargo build --quiet -p smtp-io-tokio --examples
cargo build --quiet -p smtp-io-tokio --features mail-builder --example mail_builder
cargo build --quiet -p smtp-io-std --example send

# ------------------------------------------------------------------ the server
WORK=$(mktemp -d)
SPOOL=$WORK/spool
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$SPOOL"

openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 1 \
    -subj "/CN=examples.sh test CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign" -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
    -subj "/CN=localhost" -keyout "$WORK/server.key" -out "$WORK/server.csr" 2>/dev/null
printf '%s\n' "basicConstraints=critical,CA:FALSE" "extendedKeyUsage=serverAuth" \
    "subjectAltName=DNS:localhost,IP:127.0.0.1" > "$WORK/server.ext"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
    -CAcreateserial -days 1 -sha256 -extfile "$WORK/server.ext" -out "$WORK/server.pem" 2>/dev/null

# Stores each message as N.eml, its first line an X-Examples-Envelope header (sender,
# recipients, TLS, AUTH user). Refuses recipients starting with "reject".
cat > "$WORK/server.py" <<'PY'
import asyncio, itertools, os, signal, ssl, sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

spool, cert, key, portfile, user, password = sys.argv[1:7]
counter = itertools.count(1)


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 Recipient refused (examples.sh)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        n = next(counter)
        auth = session.auth_data
        who = auth.login.decode() if isinstance(auth, LoginPassword) else "-"
        head = "X-Examples-Envelope: from=%s to=%s tls=%s auth=%s\r\n" % (
            envelope.mail_from, ",".join(envelope.rcpt_tos),
            "yes" if session.ssl is not None else "no", who)
        tmp = os.path.join(spool, ".%d.tmp" % n)
        with open(tmp, "wb") as f:
            f.write(head.encode() + envelope.original_content)
        os.rename(tmp, os.path.join(spool, "%d.eml" % n))
        return "250 2.0.0 OK: queued as ex%d" % n


def authenticate(server, session, envelope, mechanism, data):
    ok = (isinstance(data, LoginPassword) and data.login == user.encode()
          and data.password == password.encode())
    return AuthResult(success=True, auth_data=data) if ok else AuthResult(success=False)


async def main():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Handler(), hostname="examples.test", tls_context=ctx,
                     authenticator=authenticate, auth_require_tls=False),
        "127.0.0.1", 0)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % server.sockets[0].getsockname()[1])
    os.rename(portfile + ".tmp", portfile)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


asyncio.run(main())
PY
"$PY" "$WORK/server.py" "$SPOOL" "$WORK/server.pem" "$WORK/server.key" "$WORK/port" \
    "$USER_NAME" "$USER_PASS" > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 200); do
    [ -s "$WORK/port" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "aiosmtpd did not start"; }
    sleep 0.1
done
[ -s "$WORK/port" ] || die "aiosmtpd did not listen within 20 s"
SERVER=127.0.0.1:$(cat "$WORK/port")
log "aiosmtpd on $SERVER"

# ------------------------------------------------------------------ checks
PASSED=0
FAILED=0
bad() { FAILED=$((FAILED + 1)); log "FAILED: $*"; }
# check WHAT CMD...: one check passes when CMD succeeds.
check() {
    local what=$1
    shift
    if "$@"; then PASSED=$((PASSED + 1)); else bad "$what"; fi
}

# stored TEXT: how many stored messages contain TEXT.
stored() { { grep -l -F -e "$1" "$SPOOL"/*.eml 2>/dev/null || true; } | wc -l; }
# stored_line NAME LINE: the message with the subject NAME has the line LINE (CRLF ended).
stored_line() {
    grep -l -F -e "Subject: $1" "$SPOOL"/*.eml | xargs -r grep -q -x -F -e "$2"$'\r'
}
# stored_envelope NAME TEXT: the envelope line of the message with the subject NAME has TEXT.
stored_envelope() {
    grep -l -F -e "Subject: $1" "$SPOOL"/*.eml | xargs -r grep -h "^X-Examples-Envelope:" \
        | grep -q -F -e "$2"
}
# printed NAME TEXT: the output of NAME's run has TEXT.
printed() { grep -q -F -e "$2" "$WORK/$1.out"; }

# message NAME: a small message with the subject NAME, in $WORK/NAME.eml.
message() {
    printf 'From: alice@example.com\r\nTo: bob@example.org\r\nSubject: %s\r\n\r\n%s\r\n%s\r\n' \
        "$1" "Hello." ".A line starting with a dot." > "$WORK/$1.eml"
}

# expect NAME CODE WANT -- CMD...: run CMD (output in $WORK/NAME.out); its exit code must be 0
# (CODE=0) or not (CODE=fail), and exactly WANT stored messages must have the subject NAME.
expect() {
    local name=$1 code=$2 want=$3 rc=0 got
    shift 4
    "$@" > "$WORK/$name.out" 2>&1 || rc=$?
    if { [ "$code" = 0 ] && [ "$rc" != 0 ]; } || { [ "$code" = fail ] && [ "$rc" = 0 ]; }; then
        bad "$name: exit code $rc"
        sed 's/^/    /' "$WORK/$name.out" >&2
        return 0
    fi
    got=$(stored "Subject: $name")
    if [ "$got" != "$want" ]; then
        bad "$name: $got message(s) stored, expected $want"
        return 0
    fi
    PASSED=$((PASSED + 1))
    log "ok: $name (exit $rc, $got stored): $(head -n 1 "$WORK/$name.out")"
}

blocking() { cargo run --quiet -p smtp-proto --example blocking -- "$@"; }
send() { cargo run --quiet -p smtp-io-tokio --example send -- "$@"; }
batch() { cargo run --quiet -p smtp-io-tokio --example batch -- "$@"; }
std_send() { cargo run --quiet -p smtp-io-std --example send -- "$@"; }
lettre_example() { cargo run --quiet -p smtp-io-tokio --example lettre -- "$@"; }
mail_builder_example() {
    cargo run --quiet -p smtp-io-tokio --features mail-builder --example mail_builder -- "$@"
}
# Read by send and batch with --user.
export SMTP_PASSWORD=$USER_PASS

for name in blocking-plain blocking-refused send-noauth send-starttls-auth \
    send-plaintext-auth-refused send-plaintext-auth-allowed std-send-noauth std-send-starttls-auth \
    std-send-refused; do
    message "$name"
done

expect blocking-plain 0 1 -- blocking --server "$SERVER" --from alice@example.com \
    --to bob@example.org --file "$WORK/blocking-plain.eml"
check "blocking: result line" printed blocking-plain "message #1 accepted: 250"
check "blocking: queue id" printed blocking-plain "queue id: ex"
check "blocking: envelope" stored_envelope blocking-plain "to=bob@example.org tls=no auth=-"
check "blocking: dot-stuffing" stored_line blocking-plain ".A line starting with a dot."

expect blocking-refused fail 0 -- blocking --server "$SERVER" --to reject@example.org \
    --file "$WORK/blocking-refused.eml"
check "blocking: refusal reported" printed blocking-refused "refused"

expect send-noauth 0 1 -- send --server "$SERVER" --to bob@example.org --to carol@example.org \
    --file "$WORK/send-noauth.eml"
check "send: result line" printed send-noauth "message #1 accepted: 250"
check "send: envelope" stored_envelope send-noauth \
    "to=bob@example.org,carol@example.org tls=no auth=-"
check "send: dot-stuffing" stored_line send-noauth ".A line starting with a dot."

expect send-starttls-auth 0 1 -- send --server "$SERVER" --starttls --ca "$WORK/ca.pem" \
    --user "$USER_NAME" --file "$WORK/send-starttls-auth.eml"
check "send: STARTTLS and AUTH" stored_envelope send-starttls-auth "tls=yes auth=$USER_NAME"

expect send-plaintext-auth-refused fail 0 -- send --server "$SERVER" --user "$USER_NAME" \
    --file "$WORK/send-plaintext-auth-refused.eml"
check "send: names the opt-in" printed send-plaintext-auth-refused "--allow-plaintext-auth"

expect send-plaintext-auth-allowed 0 1 -- send --server "$SERVER" --user "$USER_NAME" \
    --allow-plaintext-auth --file "$WORK/send-plaintext-auth-allowed.eml"
check "send: AUTH without TLS" stored_envelope send-plaintext-auth-allowed \
    "tls=no auth=$USER_NAME"

# The blocking client (smtp-io-std): the same example without an async runtime.
expect std-send-noauth 0 1 -- std_send --server "$SERVER" --to bob@example.org \
    --to carol@example.org --file "$WORK/std-send-noauth.eml"
check "std send: result line" printed std-send-noauth "message #1 accepted: 250"
check "std send: envelope" stored_envelope std-send-noauth \
    "to=bob@example.org,carol@example.org tls=no auth=-"
check "std send: dot-stuffing" stored_line std-send-noauth ".A line starting with a dot."

expect std-send-starttls-auth 0 1 -- std_send --server "$SERVER" --starttls --ca "$WORK/ca.pem" \
    --user "$USER_NAME" --file "$WORK/std-send-starttls-auth.eml"
check "std send: STARTTLS and AUTH" stored_envelope std-send-starttls-auth \
    "tls=yes auth=$USER_NAME"

expect std-send-refused fail 0 -- std_send --server "$SERVER" --to reject@example.org \
    --file "$WORK/std-send-refused.eml"
check "std send: refusal reported" printed std-send-refused "refused"

COUNT=20
expect "batch message" 0 "$COUNT" -- batch --server "$SERVER" --starttls --ca "$WORK/ca.pem" \
    --user "$USER_NAME" --count "$COUNT"
check "batch: last result" printed "batch message" "message #$COUNT (batch $COUNT/$COUNT): 250"
check "batch: one line per message" \
    test "$(grep -c ': 250 ' "$WORK/batch message.out")" = "$COUNT"
check "batch: over TLS with AUTH" test "$(stored "tls=yes auth=$USER_NAME")" -ge "$COUNT"

# Messages built by lettre and by mail-builder: delivered to every recipient, Bcc never written.
run_built() {
    local name=$1 subject=$2 rc=0 before after
    shift 2
    before=$(stored "Subject: $subject")
    "$@" > "$WORK/$name.out" 2>&1 || rc=$?
    after=$(stored "Subject: $subject")
    if [ "$rc" != 0 ] || [ "$after" -ne $((before + 1)) ]; then
        bad "$name: exit code $rc, $((after - before)) message(s) stored"
        sed 's/^/    /' "$WORK/$name.out" >&2
        return 0
    fi
    PASSED=$((PASSED + 1))
    log "ok: $name (exit 0, 1 stored)"
    check "$name: every recipient in the envelope" sh -c \
        "grep -l -F -e 'Subject: $subject' '$SPOOL'/*.eml | xargs grep -h '^X-Examples-Envelope:' \
         | grep -q -F -e 'bob@example.org' && grep -l -F -e 'Subject: $subject' '$SPOOL'/*.eml \
         | xargs grep -h '^X-Examples-Envelope:' | grep -q -F -e 'hidden@example.org'"
    check "$name: no Bcc header" sh -c \
        "! grep -l -F -e 'Subject: $subject' '$SPOOL'/*.eml | xargs grep -q -i '^Bcc:'"
}
run_built lettre "Sent with lettre" lettre_example --server "$SERVER" \
    --to bob@example.org --bcc hidden@example.org
run_built mail-builder "Sent with mail-builder" mail_builder_example --server "$SERVER" \
    --to bob@example.org --bcc hidden@example.org

echo
echo "examples: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
