"""The reviewer's report: what an environment's cloud assembly grants, exposes, encrypts, keeps and costs.

Everything here reads a synthesized cloud assembly (templates, metadata, cdk-nag's validation report) and the
environment's configuration; nothing calls AWS. ``python -m review --env NAME [--base REF]`` (``make review``)
synthesizes, then writes ``cdk.out/review/<env>/index.html`` and ``index.md``.
"""
