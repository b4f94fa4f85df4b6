#!/usr/bin/env bash
# Stop the interop servers started by start-servers.sh STATE: only the processes whose pid and
# start time are recorded in STATE/pids. Dovecot goes last (Postfix uses it until it stops).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
STATE=${1:?usage: stop-servers.sh STATE}
[ -d "$STATE/pids" ] || exit 0
for f in "$STATE"/pids/*.pid; do
    [ -e "$f" ] || continue
    case $(basename "$f") in dovecot.pid) continue ;; esac
    stop_pidfile "$f"
done
[ -e "$STATE/pids/dovecot.pid" ] && stop_pidfile "$STATE/pids/dovecot.pid"
exit 0
