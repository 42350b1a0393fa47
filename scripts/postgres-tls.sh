#!/usr/bin/env bash
# A throwaway PostgreSQL cluster shaped like a Neon endpoint, for the test suite:
# TLS only (Debian's snakeoil certificate), password (SCRAM) login for role
# `todo`, on 127.0.0.1:${TLS_PG_PORT:-5433}. The shared server on 5432 is left alone.
# Safe to run again: it only creates, configures and starts what is missing.
set -euo pipefail

PORT=${TLS_PG_PORT:-5433}
CLUSTER=todo_tls
ROLE=todo
PASSWORD=todo
CERT=/etc/ssl/certs/ssl-cert-snakeoil.pem
KEY=/etc/ssl/private/ssl-cert-snakeoil.key

as_postgres() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }

if ! command -v make-ssl-cert >/dev/null || ! command -v pg_createcluster >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ssl-cert postgresql >/dev/null
fi
[ -f "$CERT" ] || make-ssl-cert generate-default-snakeoil
# The server reads the key as postgres, through the ssl-cert group.
getent group ssl-cert | grep -qw postgres || usermod -a -G ssl-cert postgres

VERSION=$(ls /usr/lib/postgresql | sort -V | tail -1)
CONF=/etc/postgresql/$VERSION/$CLUSTER
if [ ! -d "$CONF" ]; then
    pg_createcluster "$VERSION" "$CLUSTER" --port "$PORT" -- \
        --auth-local=peer --auth-host=scram-sha-256 >/dev/null
fi

cat > "$CONF/conf.d/todo-tls.conf" <<CONFIG
listen_addresses = '127.0.0.1'
port = $PORT
ssl = on
ssl_cert_file = '$CERT'
ssl_key_file = '$KEY'
password_encryption = scram-sha-256
max_connections = 200
shared_buffers = 64MB
# Test data only: durability buys nothing here and costs time.
fsync = off
synchronous_commit = off
full_page_writes = off
CONFIG
cat > "$CONF/pg_hba.conf" <<HBA
local   all  all                  peer
hostnossl all all 0.0.0.0/0       reject
hostssl all  all  127.0.0.1/32    scram-sha-256
HBA

if pg_lsclusters -h "$VERSION" "$CLUSTER" | grep -q online; then
    pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$CLUSTER" reload
else
    pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$CLUSTER" start
fi
for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p "$PORT" && break; sleep 1; done

as_postgres psql -q -p "$PORT" -v ON_ERROR_STOP=1 <<SQL
SELECT 'CREATE ROLE $ROLE LOGIN CREATEDB'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') \gexec
ALTER ROLE $ROLE PASSWORD '$PASSWORD';
SQL
echo "PostgreSQL with TLS on 127.0.0.1:$PORT (role $ROLE)"
