#!/usr/bin/env bash
# Installs the Debian packages the local stack needs when they are missing:
# PostgreSQL server and client (the stack runs its own throwaway cluster with initdb + pg_ctl),
# redis-server (the stack runs its own on a port of its own, for the gateway's shared rate limits) and
# Maven (downloads Keycloak once). Keycloak's JDK >= 21 and the control plane's Go >= 1.24 are
# checked and reported, not installed (Debian stable's packages are too old).
set -euo pipefail

need=()
have_pg_server() {
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null 2>&1
}
have_pg_server || need+=(postgresql)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v mvn >/dev/null 2>&1 || need+=(maven)

if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
      echo "install-system-deps: missing ${need[*]}; run this script as root" >&2
      exit 1
    fi
  else
    SUDO=()
  fi
  echo "install-system-deps: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${need[@]}"
  # Debian's packages may start a system cluster on 5432 and a system redis-server on 6379 (where
  # services start at all); the stack uses neither: it runs its own on other ports.
else
  echo "install-system-deps: PostgreSQL server, client, redis-server and Maven present" >&2
fi

# Report (do not install) the other tools, so a missing one is obvious before the tests start.
missing=0
jdk_ok=0
for j in "${JAVA_HOME:-}" /usr/lib/jvm/*; do
  [[ -n "$j" && -r "$j/release" ]] || continue
  v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$j/release")
  if [[ -n "$v" && "$v" -ge 21 ]]; then jdk_ok=1; break; fi
done
((jdk_ok)) || { echo "install-system-deps: no JDK >= 21 found (Keycloak needs one; set JAVA_HOME)" >&2; missing=1; }
command -v mvn >/dev/null 2>&1 || { echo "install-system-deps: mvn not found (needed once to download Keycloak)" >&2; missing=1; }
command -v redis-server >/dev/null 2>&1 || { echo "install-system-deps: redis-server not found (the stack's Redis)" >&2; missing=1; }
command -v go >/dev/null 2>&1 || [[ -x /usr/local/go/bin/go ]] || { echo "install-system-deps: go not found (Go >= 1.24 builds the control plane)" >&2; missing=1; }
exit "$missing"
