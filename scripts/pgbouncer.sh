#!/usr/bin/env bash
# Debian's PgBouncer in transaction mode on 127.0.0.1:${PGBOUNCER_PORT:-6432}, in
# front of the TLS cluster that scripts/postgres-tls.sh starts: TLS on both
# sides and SCRAM login, as Neon's pooled endpoint. Any database name is passed
# through, so the tests create databases directly and reach them through here.
# Safe to run again: a running PgBouncer reloads its configuration.
set -euo pipefail

PORT=${PGBOUNCER_PORT:-6432}
SERVER_PORT=${TLS_PG_PORT:-5433}
DIR=${PGBOUNCER_DIR:-/tmp/todo-pgbouncer}

as_postgres() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }

if ! command -v pgbouncer >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
fi

mkdir -p "$DIR"
cat > "$DIR/userlist.txt" <<USERS
"todo" "todo"
USERS
cat > "$DIR/pgbouncer.ini" <<CONFIG
[databases]
* = host=127.0.0.1 port=$SERVER_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir =
pidfile = $DIR/pgbouncer.pid
logfile = $DIR/pgbouncer.log
auth_type = scram-sha-256
auth_file = $DIR/userlist.txt
pool_mode = transaction
max_client_conn = 1000
; Fewer server connections than the app has client connections, so that
; transactions from different clients share server connections, as on Neon.
default_pool_size = 5
query_wait_timeout = 120
client_tls_sslmode = require
client_tls_cert_file = /etc/ssl/certs/ssl-cert-snakeoil.pem
client_tls_key_file = /etc/ssl/private/ssl-cert-snakeoil.key
server_tls_sslmode = require
; No ignore_startup_parameters: a startup parameter PgBouncer does not track is
; refused, so the suite fails if the app sends one.
CONFIG
chown -R postgres: "$DIR"
chmod 600 "$DIR/userlist.txt"

if [ -f "$DIR/pgbouncer.pid" ] && kill -0 "$(cat "$DIR/pgbouncer.pid")" 2>/dev/null; then
    kill -HUP "$(cat "$DIR/pgbouncer.pid")"
elif pg_isready -q -h 127.0.0.1 -p "$PORT"; then
    echo "127.0.0.1:$PORT is taken by another server (Debian's own pgbouncer service?);" \
        "stop it first: /etc/init.d/pgbouncer stop" >&2
    exit 1
else
    as_postgres pgbouncer -q -d "$DIR/pgbouncer.ini"
fi
for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p "$PORT" && break; sleep 1; done
pg_isready -q -h 127.0.0.1 -p "$PORT"
echo "PgBouncer (transaction mode) on 127.0.0.1:$PORT -> 127.0.0.1:$SERVER_PORT"
