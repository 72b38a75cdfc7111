# petcd/dnsmasq: Debian's dnsmasq on the registry-free base, the DNS server of the DNS-SRV
# topology (compose/docker-compose.dns.yml). Built by `images/build.sh dnsmasq` with a context
# (.cache/images/ctx-dnsmasq/) holding debs/: dnsmasq-base and the libraries it needs that the
# base image lacks, fetched once on the host with `apt-get download` (.cache/debs/dnsmasq/).
# `dpkg -i` fails the build if a dependency is missing, so the list in build.sh stays honest.
#
# The compose file passes every record on the command line (--host-record, --srv-host); the
# entrypoint keeps dnsmasq in the foreground and logs to stderr.
ARG BASE_IMAGE=petcd/bookworm-python:latest
FROM ${BASE_IMAGE}
LABEL org.petcd.impl="dnsmasq"
COPY debs/ /tmp/debs/
RUN dpkg -i /tmp/debs/*.deb && rm -rf /tmp/debs && dnsmasq --version | head -n1
EXPOSE 53/udp 53/tcp
ENTRYPOINT ["dnsmasq", "--keep-in-foreground", "--log-facility=-", "--user=root"]
CMD ["--no-resolv", "--no-hosts"]
