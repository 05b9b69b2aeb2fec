#!/bin/sh
# Install the Debian packages sevenleague runs, only those that are missing.
#
# Packaged services are kept from starting during the install (they would take the
# ports the eco-system uses with their default configs): sevenleague runs its own
# copies under supervisord, each with its own config and state directory.
set -eu

PYTHON="${PYTHON:-python3}"   # the Python that will create .venv
# git, gnupg, apt-utils, python3-venv: the build service (repositories, signing, apt index, build venvs);
# lintian, systemd (systemd-analyze) and systemd-container (nspawn): the checks the tests run on
# the packages it builds; debootstrap and openssh-client: the nspawn test hosts (a Debian root
# booted with systemd) and the ssh host driver's tests; prometheus-node-exporter: each host's
# own metrics (CPU, memory, disk, network), scraped as the `node` job.
PACKAGES="${LEAGUE_DEBIAN_PACKAGES:-haproxy prometheus prometheus-alertmanager prometheus-node-exporter wrk git gnupg apt-utils python3-venv lintian systemd systemd-container debootstrap openssh-client}"

missing=""
for package in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $package"
    fi
done
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    missing="$missing python3-venv"
fi
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "sevenleague needs a Debian or Ubuntu machine (apt-get); missing:$missing" >&2
    exit 2
fi
if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages:$missing" >&2
    echo "install them as root, then run make again:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends$missing" >&2
    exit 2
fi

policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi

echo "installing Debian packages:$missing"
apt-get update -q
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing

if [ -d /run/systemd/system ]; then
    for unit in haproxy prometheus prometheus-alertmanager prometheus-node-exporter; do
        case " $missing " in
            *" $unit "*) systemctl disable --now "$unit" >/dev/null 2>&1 || true
                         echo "disabled the packaged $unit service: sevenleague runs its own" ;;
        esac
    done
fi
