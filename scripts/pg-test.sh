#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL 15 cluster.
#
#   scripts/pg-test.sh cargo test --test it store::
#
# Creates a cluster in a temporary directory, listening on 127.0.0.1 on a free port (trust
# authentication, fsync off: it is thrown away), exports RIPOSTE_TEST_POSTGRES_URL for the
# command, and stops and removes the cluster when the command ends, however it ends. PostgreSQL
# refuses to run as root, so as root the server runs as the `postgres` user (or `nobody`).
# PGBIN overrides where the binaries are (default /usr/lib/postgresql/15/bin).
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARG…]   (e.g. $0 cargo test --test it store::)" >&2
    exit 2
fi

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
if [[ ! -x "$PGBIN/initdb" || ! -x "$PGBIN/pg_ctl" ]]; then
    echo "$0: PostgreSQL 15 binaries not found in $PGBIN; install them (apt-get install -y postgresql-15) or set PGBIN" >&2
    exit 1
fi

# Who runs the server: ourselves, unless we are root.
as_server=()
if [[ $(id -u) -eq 0 ]]; then
    server_user=postgres
    id -u "$server_user" >/dev/null 2>&1 || server_user=nobody
    as_server=(runuser -u "$server_user" --)
fi

workdir=$(mktemp -d "${TMPDIR:-/tmp}/riposte-pg.XXXXXX")
started=0
cleanup() {
    local status=$?
    if [[ $started -eq 1 ]]; then
        "${as_server[@]}" "$PGBIN/pg_ctl" -D "$workdir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$workdir"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ ${#as_server[@]} -gt 0 ]]; then
    chown "$server_user" "$workdir"
fi

# A free port: the first of a few random candidates nothing is listening on.
port=
for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
        port=$candidate
        break
    fi
done
if [[ -z $port ]]; then
    echo "$0: found no free port on 127.0.0.1" >&2
    exit 1
fi

"${as_server[@]}" "$PGBIN/initdb" -D "$workdir/data" -U riposte -A trust -E UTF8 --no-sync \
    >"$workdir/initdb.log" 2>&1 || { cat "$workdir/initdb.log" >&2; exit 1; }
started=1
if ! "${as_server[@]}" "$PGBIN/pg_ctl" -D "$workdir/data" -l "$workdir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$workdir -c fsync=off -c max_connections=300" \
    start >/dev/null; then
    cat "$workdir/server.log" >&2
    exit 1
fi
"${as_server[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U riposte riposte_test

export RIPOSTE_TEST_POSTGRES_URL="postgres://riposte@127.0.0.1:$port/riposte_test"
# Suites that need PostgreSQL fail, rather than pass without running, if it is not reached.
export RIPOSTE_TEST_POSTGRES_REQUIRED=1
echo "$0: PostgreSQL on 127.0.0.1:$port; RIPOSTE_TEST_POSTGRES_URL=$RIPOSTE_TEST_POSTGRES_URL" >&2

# Not `exec`: the trap must run after the command to remove the cluster.
"$@"
