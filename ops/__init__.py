"""Operator commands: run by hand (or by ``make``) with credentials, never during synth.

What belongs here: commands that read AWS and record what synth needs (``approved_model`` writes the
approved model package to ``cdk.context.json``), tested with botocore's Stubber. What does not: code
the app imports to build resources (only the record format and its context key are shared).
"""
