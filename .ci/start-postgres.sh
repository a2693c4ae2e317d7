#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for healthcache's export tests and bench.
#
# Two ways to use it:
#
#   source .ci/start-postgres.sh
#       exports HEALTHCACHE_TEST_PG_URL and HEALTHCACHE_TEST_PG_DIR in the calling
#       shell and stops the cluster (and removes its folder) when that shell exits
#       (an existing EXIT trap is kept and runs first).
#
#   eval "$(.ci/start-postgres.sh)"
#       prints `export HEALTHCACHE_TEST_PG_URL=...` and `export HEALTHCACHE_TEST_PG_DIR=...`;
#       the server keeps running until `.ci/start-postgres.sh --stop "$HEALTHCACHE_TEST_PG_DIR"`.
#
# Installs Debian's postgresql package when no server binaries are found (needs root).
# initdb runs in a fresh temp folder as an unprivileged user (postgres, else nobody, when
# run as root), the server listens on 127.0.0.1 on a free port and on a Unix socket in
# that folder, TCP logins need the password (scram), and one database "healthcache" is
# created for the superuser "healthcache".  Everything goes to stderr except the exports.
# Exit status (or return status when sourced) is non-zero when the server cannot start.

_hc_pg_log() { printf 'start-postgres: %s\n' "$*" >&2; }

_hc_pg_bindir() {
    local d best=""
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && best="$d"
    done
    if [ -z "$best" ]; then
        # Numeric sort on the version folder, newest last.
        best=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n | tail -n 1 || true)
    fi
    printf '%s' "$best"
}

_hc_pg_as() {
    # Run a command as the cluster's owner (we may be root; postgres refuses to run as root).
    local user=$1
    shift
    if [ "$(id -u)" != 0 ]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u "$user" -- "$@"
    else
        setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups -- "$@"
    fi
}

_hc_pg_free_port() {
    local port i
    for i in $(seq 1 50); do
        port=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf '%s' "$port"
            return 0
        fi
    done
    return 1
}

_hc_pg_stop() {
    local dir=$1 bindir user
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    bindir=$(cat "$dir/bindir" 2>/dev/null)
    user=$(cat "$dir/owner" 2>/dev/null)
    if [ -n "$bindir" ] && [ -f "$dir/data/postmaster.pid" ]; then
        _hc_pg_as "${user:-nobody}" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

_hc_pg_start() {
    local bindir user dir pw port attempt
    bindir=$(_hc_pg_bindir)
    if [ -z "$bindir" ]; then
        if [ "$(id -u)" != 0 ]; then
            _hc_pg_log "no PostgreSQL server binaries under /usr/lib/postgresql and not root to install them"
            return 1
        fi
        _hc_pg_log "installing Debian's postgresql package"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2 || {
            _hc_pg_log "apt-get install postgresql failed"
            return 1
        }
        bindir=$(_hc_pg_bindir)
        [ -n "$bindir" ] || { _hc_pg_log "postgresql installed but no server binaries found"; return 1; }
    fi

    user=$(id -un)
    if [ "$(id -u)" = 0 ]; then
        if id postgres >/dev/null 2>&1; then user=postgres; else user=nobody; fi
    fi

    dir=$(mktemp -d "${TMPDIR:-/tmp}/hc-pg.XXXXXX") || return 1
    chmod 0700 "$dir"
    printf '%s' "$bindir" >"$dir/bindir"
    printf '%s' "$user" >"$dir/owner"
    pw=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
    printf '%s\n' "$pw" >"$dir/pwfile"
    chown -R "$user" "$dir" 2>/dev/null || true

    if ! _hc_pg_as "$user" "$bindir/initdb" -D "$dir/data" -U healthcache --pwfile="$dir/pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C -N >"$dir/initdb.log" 2>&1; then
        _hc_pg_log "initdb failed:"
        cat "$dir/initdb.log" >&2
        _hc_pg_stop "$dir"
        return 1
    fi
    rm -f "$dir/pwfile"

    for attempt in 1 2 3 4 5; do
        port=$(_hc_pg_free_port) || { _hc_pg_log "no free port found"; _hc_pg_stop "$dir"; return 1; }
        if _hc_pg_as "$user" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=50" start >/dev/null 2>&1; then
            break
        fi
        port=""
    done
    if [ -z "$port" ]; then
        _hc_pg_log "the server did not start; its log:"
        cat "$dir/server.log" >&2 2>/dev/null
        _hc_pg_stop "$dir"
        return 1
    fi
    if ! _hc_pg_as "$user" "$bindir/createdb" -h "$dir" -p "$port" -U healthcache healthcache >&2; then
        _hc_pg_log "createdb failed"
        _hc_pg_stop "$dir"
        return 1
    fi
    _hc_pg_log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') running on 127.0.0.1:$port (data in $dir)"
    printf 'export HEALTHCACHE_TEST_PG_URL=%q\n' "postgresql://healthcache:$pw@127.0.0.1:$port/healthcache"
    printf 'export HEALTHCACHE_TEST_PG_DIR=%q\n' "$dir"
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    # Sourced: set the variables here and stop the cluster when this shell exits.
    if _hc_pg_exports=$(_hc_pg_start); then
        eval "$_hc_pg_exports"
        unset _hc_pg_exports
        _hc_pg_prev_trap=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")
        # shellcheck disable=SC2064
        trap "${_hc_pg_prev_trap:+$_hc_pg_prev_trap;} _hc_pg_stop '$HEALTHCACHE_TEST_PG_DIR'" EXIT
        unset _hc_pg_prev_trap
    else
        unset _hc_pg_exports
        return 1
    fi
else
    if [ "${1:-}" = "--stop" ]; then
        _hc_pg_stop "${2:-${HEALTHCACHE_TEST_PG_DIR:-}}"
        exit 0
    fi
    _hc_pg_start || exit 1
fi
