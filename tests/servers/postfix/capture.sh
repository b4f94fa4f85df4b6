#!/bin/sh
# Postfix pipe(8) delivery for the interop tests: saves the message (stdin) as SPOOL/<id>.eml and
# the envelope as SPOOL/<id>.env. Arguments: SPOOL QUEUE_ID sender=.. sasl_method=.. sasl_username=.. RCPT...
set -eu
spool=$1 id=$2 sender=${3#sender=} method=${4#sasl_method=} user=${5#sasl_username=}
shift 5
{
    echo "server: postfix"
    echo "queue_id: $id"
    echo "mail_from: $sender"
    for r in "$@"; do echo "rcpt: $r"; done
    echo "auth_method: $method"
    echo "auth_user: $user"
} > "$spool/$id.env"
cat > "$spool/.$id.tmp"
mv "$spool/.$id.tmp" "$spool/$id.eml"
