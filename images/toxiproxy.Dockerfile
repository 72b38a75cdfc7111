# petcd/toxiproxy: our Toxiproxy-API server (toxiproxy/, package petcd-toxiproxy) on Debian.
#
#   images/build.sh toxiproxy                                   # offline, no registry
#   docker build -f images/toxiproxy.Dockerfile -t petcd/toxiproxy toxiproxy/   # with a registry
#
# images/build.sh stages the context in .cache/images/ctx-toxiproxy/: the package sources plus a
# wheels/ directory holding its build backend (setuptools, wheel) from the wheelhouse, and passes
# BASE_IMAGE=petcd/bookworm-python:latest, so nothing here needs the network. Without wheels/, pip
# fetches the build backend from the package index.
#
# The image also carries a POSIX shell, `ip` and `curl`: compose/toxiproxy-init.sh runs in it (in
# the proxy's network namespace) to add the per-link addresses and populate the proxies.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/toxiproxy/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# The offline base already has both tools; python:*-slim has neither (and has a registry user's
# network for apt).
RUN if ! command -v ip >/dev/null || ! command -v curl >/dev/null; then \
        apt-get update -q && apt-get install -y -q --no-install-recommends iproute2 curl \
        && rm -rf /var/lib/apt/lists/*; \
    fi
LABEL org.petcd.impl="toxiproxy"
EXPOSE 8474
HEALTHCHECK --interval=2s --timeout=3s --start-period=10s --retries=5 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8474/version
ENTRYPOINT ["toxiproxy-server"]
CMD ["-host=0.0.0.0", "-port=8474"]
COPY . /src/
RUN python3 -m venv /opt/toxiproxy \
 && if [ -d /src/wheels ]; then \
        /opt/toxiproxy/bin/pip install --no-index --find-links /src/wheels /src; \
    else \
        /opt/toxiproxy/bin/pip install /src; \
    fi \
 && rm -rf /src \
 && toxiproxy-server -version
