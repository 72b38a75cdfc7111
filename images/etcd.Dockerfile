# Real etcd on the registry-free Debian base. Built by images/build.sh with a context
# (.cache/images/ctx-etcd-<version>/) holding bin/etcd, bin/etcdctl (always 3.5.1) and, per
# version, bin/etcdutl (3.5) or bin/etcdctl-3.4 (3.4's own client).
ARG BASE_IMAGE=petcd/bookworm-python:latest
FROM ${BASE_IMAGE}
ARG ETCD_VERSION
LABEL org.petcd.impl="etcd" org.petcd.etcd-version="${ETCD_VERSION}"
COPY bin/ /usr/local/bin/
# etcd reads ETCD_* from the environment; data lives on a volume mounted at /var/lib/etcd and
# ETCD_DATA_DIR points below it so etcd creates the directory itself with mode 0700.
ENV ETCD_DATA_DIR=/var/lib/etcd/data \
    ETCDCTL_API=3
RUN mkdir -p /var/lib/etcd && etcd --version && etcdctl version
VOLUME /var/lib/etcd
EXPOSE 2379 2380
HEALTHCHECK --interval=2s --timeout=3s --start-period=20s --retries=5 \
    CMD etcdctl --endpoints=http://127.0.0.1:2379 --dial-timeout=2s --command-timeout=2s endpoint health
CMD ["etcd"]
