"""The etcd server: Raft driver, apply, proposals, linearizable reads and membership."""
