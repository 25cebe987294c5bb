# Helpers shared by the scripts in deploy/local; sourced, never run.
# shellcheck shell=bash

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
GMV_LOCAL_DIR="${GMV_LOCAL_DIR:-$REPO_ROOT/.local}"
mkdir -p "$GMV_LOCAL_DIR"
GMV_LOCAL_DIR="$(cd "$GMV_LOCAL_DIR" && pwd)"

say() { printf '%s: %s\n' "$SCRIPT_NAME" "$*"; }
fail() {
    printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2
    exit 1
}

# Prints the pid stored in a pid file when that process is alive and its command line
# contains the given marker (so a recycled pid of another program never counts).
live_pid() {
    local pid_file="$1" marker="$2" pid
    [[ -s "$pid_file" ]] || return 1
    pid="$(tr -dc '0-9' <"$pid_file")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker" || return 1
    printf '%s\n' "$pid"
}

# True while the process this script just launched (its pid in pid_file) exists. Right
# after the launch its command line can still be the forking shell's, so live_pid's
# marker check would take a starting server for a dead one.
launched_alive() {
    local pid
    pid="$(tr -dc '0-9' <"$1" 2>/dev/null)"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

# Sends SIGTERM to a pid and waits for it to exit; SIGKILL after the timeout.
terminate_pid() {
    local pid="$1" timeout="$2" waited=0
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        if ((waited >= timeout * 10)); then
            say "pid $pid still alive after ${timeout}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            return 0
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
}

# True when something accepts TCP connections on 127.0.0.1:port.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

show_log_tail() {
    local log_file="$1"
    if [[ -s "$log_file" ]]; then
        printf -- '--- last lines of %s ---\n' "$log_file" >&2
        tail -n 20 "$log_file" >&2
        printf -- '---\n' >&2
    else
        printf '(no log at %s)\n' "$log_file" >&2
    fi
}

# Installs Debian packages without starting their services: invoke-rc.d asks
# policy-rc.d first, and exit code 101 there means "action forbidden". The package
# lists are refreshed only when a package is unknown or a download fails.
apt_install() {
    local policy="/usr/sbin/policy-rc.d" status=0
    ((EUID == 0)) || fail "installing $* needs root: run 'sudo apt-get install $*'"

    if [[ -e "$policy" ]]; then
        apt_install_packages "$@" || status=$?
        return "$status"
    fi
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    # shellcheck disable=SC2064 # the path is fixed now, on purpose
    trap "rm -f '$policy'" EXIT
    apt_install_packages "$@" || status=$?
    rm -f "$policy"
    trap - EXIT
    return "$status"
}

apt_install_packages() {
    local apt=(apt-get -y -q -o DPkg::Lock::Timeout=300
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    export DEBIAN_FRONTEND=noninteractive

    if ! apt-cache show "$@" >/dev/null 2>&1; then
        "${apt[@]}" update || return $?
    fi
    if "${apt[@]}" install --no-install-recommends "$@"; then
        return 0
    fi
    say "apt-get install failed; refreshing the package lists and retrying once"
    "${apt[@]}" update || return $?
    "${apt[@]}" install --no-install-recommends "$@"
}

# Kafka runs from the jars that deploy/kafka/pom.xml copies into target/libs.
KAFKA_PROJECT_DIR="$REPO_ROOT/deploy/kafka"
KAFKA_LIBS_DIR="$KAFKA_PROJECT_DIR/target/libs"

java_binary() {
    local java="${JAVA_HOME:+$JAVA_HOME/bin/}java" major
    if ! command -v "$java" >/dev/null 2>&1; then
        apt_install openjdk-17-jre-headless >&2
        java="java"
    fi
    major="$("$java" -XshowSettings:properties -version 2>&1 |
        sed -n 's/^ *java\.specification\.version = //p')"
    ((${major%%.*} >= 17)) || fail "Kafka needs Java 17 or newer; $java is $major (set JAVA_HOME)"
    command -v "$java"
}

# Resolves the jars once per version of the pom; a lock keeps parallel callers from
# building at the same time.
ensure_kafka_libs() {
    local stamp="$KAFKA_PROJECT_DIR/target/libs.pom.sha256" wanted
    wanted="$(sha256sum "$KAFKA_PROJECT_DIR/pom.xml" | cut -d' ' -f1)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
        return 0
    fi

    mkdir -p "$KAFKA_PROJECT_DIR/target"
    exec 9>"$KAFKA_PROJECT_DIR/target/build.lock"
    flock 9
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
        exec 9>&-
        return 0
    fi
    java_binary >/dev/null
    command -v mvn >/dev/null 2>&1 || apt_install maven >&2
    say "resolving the Kafka jars with Maven (once per pom version)" >&2
    rm -rf "$KAFKA_LIBS_DIR"
    if ! mvn -B -Dstyle.color=never -f "$KAFKA_PROJECT_DIR/pom.xml" package \
        >"$KAFKA_PROJECT_DIR/target/mvn.log" 2>&1; then
        show_log_tail "$KAFKA_PROJECT_DIR/target/mvn.log"
        fail "mvn could not resolve the Kafka jars"
    fi
    printf '%s\n' "$wanted" >"$stamp"
    exec 9>&-
}

# Runs a Kafka class (tool or StorageTool) with the tools' logging and a small heap.
kafka_java() {
    local java
    java="$(java_binary)"
    "$java" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KAFKA_PROJECT_DIR/tools-log4j2.properties" \
        -cp "$KAFKA_LIBS_DIR/*" "$@"
}

# Serialises start and stop of one server across concurrent callers (two `make up` at
# once). The daemons are started with fd 8 closed so they do not keep the lock.
hold_lock() {
    mkdir -p "$(dirname "$1")"
    exec 8>"$1"
    flock 8
}
