#!/usr/bin/env bash
# What the real-client suite needs besides cargo, and how to get it.
#
#   tests/prereqs.sh check     list what is missing; exit 1 if anything is
#   tests/prereqs.sh install   install what is missing (Debian packages need
#                              root, or sudo; Python packages go through pip)
#   tests/prereqs.sh ensure    check; install when that can be done without a
#                              password (root or passwordless sudo), otherwise
#                              say which command to run and exit 1
#
# Debian packages (each checked by a file it ships):
#   zookeeper                  Apache ZooKeeper 3.8: the reference server
#                              (FK_TARGET=zookeeper) and zkCli.sh; pulls in a JRE
#   libslf4j-java              slf4j-simple.jar, the ZooKeeper server's logger
#   libcurator-*-java          Apache Curator 5.4 for test_curator.py
#   default-jdk-headless       javac, to compile the Curator and Java-client driver
#   libzookeeper-mt-dev, gcc   the C client for test_c_client.py
#   openssl                    X.509 v1 certificates for test_tls.py
#   iproute2, nftables         network namespaces, veth pairs and packet-drop
#                              rules for test_netns_faults.py (runs as root)
# Python packages: kazoo (the client most tests drive), pytest,
# cryptography (test_tls.py reads the keystores it makes) and pure-sasl
# (kazoo's SASL DIGEST-MD5 client, for test_sasl.py).
set -euo pipefail

# "file-or-command package" pairs: a path is checked with -e, a bare name with
# command -v.
APT_CHECKS=(
    "/usr/share/java/zookeeper.jar zookeeper"
    "/usr/share/zookeeper/bin/zkCli.sh zookeeper"
    "/usr/share/java/slf4j-simple.jar libslf4j-java"
    "/usr/share/java/netty-codec.jar libnetty-java"
    "/usr/share/java/curator-client.jar libcurator-client-java"
    "/usr/share/java/curator-framework.jar libcurator-framework-java"
    "/usr/share/java/curator-recipes.jar libcurator-recipes-java"
    "/usr/share/java/curator-x-discovery.jar libcurator-discovery-java"
    "java default-jre-headless"
    "javac default-jdk-headless"
    "/usr/include/zookeeper/zookeeper.h libzookeeper-mt-dev"
    "gcc gcc"
    "openssl openssl"
    "/sbin/ip iproute2"
    "/usr/sbin/nft nftables"
)
PIP_PACKAGES=("kazoo==2.11.0" "pytest>=7" "cryptography" "pure-sasl")
PY_MODULES=(kazoo pytest cryptography puresasl)

missing_apt() {
    local pair path pkg seen=" "
    for pair in "${APT_CHECKS[@]}"; do
        path=${pair% *}
        pkg=${pair#* }
        if [[ $path == /* ]]; then
            [ -e "$path" ] && continue
        else
            command -v "$path" >/dev/null 2>&1 && continue
        fi
        case $seen in *" $pkg "*) continue ;; esac
        seen="$seen$pkg "
        printf '%s\n' "$pkg"
    done
}

missing_py() {
    local module
    for module in "${PY_MODULES[@]}"; do
        python3 -c "import $module" >/dev/null 2>&1 || printf '%s\n' "$module"
    done
}

can_install_apt() {
    [ "$(id -u)" -eq 0 ] || sudo -n true >/dev/null 2>&1
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

install_apt() {
    local pkgs=("$@")
    [ ${#pkgs[@]} -eq 0 ] && return 0
    echo "installing Debian packages: ${pkgs[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}"
}

install_py() {
    [ -z "$(missing_py)" ] && return 0
    echo "installing Python packages: ${PIP_PACKAGES[*]}"
    python3 -m pip install --quiet "${PIP_PACKAGES[@]}"
}

report() {
    local apt py
    apt=$(missing_apt | tr '\n' ' ')
    py=$(missing_py | tr '\n' ' ')
    [ -z "$apt$py" ] && return 0
    [ -n "$apt" ] && echo "missing Debian packages: $apt"
    [ -n "$py" ] && echo "missing Python modules: $py"
    return 1
}

case "${1:-check}" in
    check)
        report
        ;;
    install)
        mapfile -t pkgs < <(missing_apt)
        install_apt "${pkgs[@]}"
        install_py
        report
        ;;
    ensure)
        report >/dev/null && exit 0
        mapfile -t pkgs < <(missing_apt)
        if [ ${#pkgs[@]} -gt 0 ] && ! can_install_apt; then
            report || true
            echo "run this first (it needs root): sudo $0 install" >&2
            exit 1
        fi
        install_apt "${pkgs[@]}"
        install_py
        report
        ;;
    *)
        echo "usage: $0 check|install|ensure" >&2
        exit 2
        ;;
esac
