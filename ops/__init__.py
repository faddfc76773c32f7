"""Operator commands: run by hand (or by ``make``) with credentials, never during synth."""
