"""The MVCC data model: revisions, the key index, the KV store on the backend."""
