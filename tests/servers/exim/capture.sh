#!/bin/sh
# Exim pipe delivery for the interop tests: saves the message (stdin, CRLF kept by use_crlf) as
# SPOOL/<id>.eml and the envelope as SPOOL/<id>.env. Arguments: SPOOL MESSAGE_ID RCPT...
# The sender and the authenticated id come in the environment (Exim's taint rules).
set -eu
spool=$1 id=$2
shift 2
{
    echo "server: exim"
    echo "queue_id: $id"
    echo "mail_from: ${INTEROP_SENDER:-}"
    for r in "$@"; do echo "rcpt: $r"; done
    echo "auth_user: ${INTEROP_AUTH_ID:-}"
} > "$spool/$id.env"
cat > "$spool/.$id.tmp"
mv "$spool/.$id.tmp" "$spool/$id.eml"
