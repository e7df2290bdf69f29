"""Hardening tests (issue 10, items 1-5): fault matrix and SIGKILL resume, secret-leak scan, bad-input
corpus, TLS, journal robustness."""
