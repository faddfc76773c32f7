"""The test suite: offline, credential-free, one synthesis per configuration (``conftest.py``).

What belongs here: tests that assert behaviour (``Template`` properties, IAM statements, pipeline
definitions, handler calls against botocore's Stubber), the per-stack and per-definition snapshots
(``snapshots/``) and shared checks (``definition_checks.py``). Each test can fail; none measures time.
"""
