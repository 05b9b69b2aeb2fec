#!/bin/sh
# The integration tests, as two pytest runs side by side.
#
# The tests on booted Debian hosts (systemd-nspawn: the ssh driver and the deploys) spend
# most of their time waiting: on debootstrap the first time, on builds, dpkg and boots.
# They run beside the rest instead of after it, which keeps `make test` well inside its
# time budget on two cores. Each run is a pytest session of its own (a run that collects
# no test fails, exit 5); the output of the hosts' run follows the other's; the exit
# status is the first failure's.
set -u

PYTEST="${PYTEST:?set PYTEST to the pytest command}"
HOSTS="tests/integration/test_deploys.py tests/integration/test_ssh_hosts.py"
LOG="build/integration-hosts.log"

mkdir -p build
# shellcheck disable=SC2086
$PYTEST $HOSTS >"$LOG" 2>&1 &
hosts=$!

ignore=""
for module in $HOSTS; do
    ignore="$ignore --ignore=$module"
done
# shellcheck disable=SC2086
$PYTEST tests/integration apps/hello/tests/integration $ignore
rest=$?

wait "$hosts"
hosts_status=$?
echo "==> integration tests on booted hosts ($HOSTS)"
cat "$LOG"

[ "$rest" -ne 0 ] && exit "$rest"
exit "$hosts_status"
