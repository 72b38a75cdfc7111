"""Persistence: the LevelDB backend with named buckets and the durable Raft log."""
