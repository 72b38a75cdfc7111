"""Bootstrap by discovery: etcd's discovery service protocol (--discovery, `service`) and DNS
SRV records (--discovery-srv, `srv`), turned into a static initial cluster before the member
starts (`bootstrap.resolve_initial_cluster`). The v2 HTTP API itself lives in `petcd.v2`."""
