"""Tests for the Jepsen-style checker half (no cluster needed)."""
