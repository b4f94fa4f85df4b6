# Shared helpers of the interop server scripts (sourced, not run).

log() { printf '[interop] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The kernel's start time of a process (field 22 of /proc/PID/stat): with the pid it names one
# process for good, so a recycled pid is never killed by mistake.
proc_start_time() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    # The command name (field 2) may hold spaces; cut after its closing parenthesis.
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    # A zombie has exited: it counts as gone.
    [ "$1" != Z ] || return 1
    echo "${20}"
}

# record_pid NAME PID: write STATE/pids/NAME.pid as "PID STARTTIME".
record_pid() {
    local st
    st=$(proc_start_time "$2") || die "$1 (pid $2) is not running"
    echo "$2 $st" > "$STATE/pids/$1.pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port NAME PORT [PID]: poll until PORT accepts connections (20 s), failing early when the
# process PID has died.
wait_port() {
    local name=$1 port=$2 pid=${3:-} i
    for i in $(seq 1 200); do
        if port_open "$port"; then return 0; fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            die "$name exited before listening on $port (see its log in $STATE/logs)"
        fi
        sleep 0.1
    done
    die "$name does not listen on port $port after 20 s (see its log in $STATE/logs)"
}

# stop_pidfile FILE: TERM the recorded process if it is still the one started, then KILL after 5 s.
stop_pidfile() {
    local file=$1 name pid st now i
    name=$(basename "$file" .pid)
    read -r pid st < "$file" || return 0
    now=$(proc_start_time "$pid") || { rm -f "$file"; return 0; }
    if [ "$now" != "$st" ]; then
        log "$name: pid $pid is another process now; not touched"
        rm -f "$file"; return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        [ "$(proc_start_time "$pid" 2>/dev/null)" = "$st" ] || { rm -f "$file"; return 0; }
        sleep 0.1
    done
    log "$name: pid $pid ignored SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$file"
}
