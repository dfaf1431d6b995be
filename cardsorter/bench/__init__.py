"""Benchmarks: measure and print numbers with the machine they ran on (never asserted in tests)."""
