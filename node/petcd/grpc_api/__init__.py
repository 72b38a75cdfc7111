"""Thin gRPC adapters over the etcd server: validate, call the server, fill the header, map errors."""
