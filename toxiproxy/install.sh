#!/usr/bin/env bash
# Install the Toxiproxy-compatible server (this directory's petcd-toxiproxy package)
# into a private virtualenv under <repo>/.cache/toxiproxy, so that
#   .cache/toxiproxy/bin/toxiproxy-server --host 127.0.0.1 --port 8474
# works without touching the project's own .venv. Idempotent: reinstalls only
# when the package sources changed. Needs python3 >= 3.11 with venv, and PyPI
# for setuptools (the package itself has no runtime dependencies).
#
# Usage: toxiproxy/install.sh [--with-client]   (--with-client adds toxiproxy-python)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
prefix="${TOXIPROXY_PREFIX:-$repo/.cache/toxiproxy}"
python="${PYTHON:-python3}"

stamp_of_sources() {
    (cd "$here" && find pyproject.toml toxiproxy_server -type f -name '*.py' -o -name pyproject.toml \
        | sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
}

want="$(stamp_of_sources)"
if [[ "${1:-}" == "--with-client" ]]; then want="$want+client"; fi
if [[ -x "$prefix/bin/toxiproxy-server" && -f "$prefix/.stamp" && "$(cat "$prefix/.stamp")" == "$want" ]]; then
    echo "toxiproxy-server already installed at $prefix/bin/toxiproxy-server"
    exit 0
fi

"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
    || { echo "install.sh: $python is older than 3.11" >&2; exit 1; }
"$python" -m venv "$prefix"
"$prefix/bin/pip" install --quiet --upgrade "$here"
if [[ "${1:-}" == "--with-client" ]]; then
    "$prefix/bin/pip" install --quiet "toxiproxy-python>=0.1.1"
fi
echo "$want" > "$prefix/.stamp"
"$prefix/bin/toxiproxy-server" --version
echo "installed: $prefix/bin/toxiproxy-server"
