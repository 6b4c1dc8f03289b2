"""Fakes and fault injection for the tests and `tools/soak.py`. Product code never
imports this package (a test enforces it)."""
