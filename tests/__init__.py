"""Top-level test suites that are not conformance files (the differential fuzzer)."""
