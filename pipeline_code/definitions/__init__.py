"""The three pipeline definitions as the stacks embed them, and the cache that spares rebuilding them.

What belongs here: the one translation from an environment's configuration (``config.schema``
models, validated there and only there) to the builders' arguments (``pipeline.py``,
``batch_pipeline.py``, ``drift_pipeline.py``), with every deploy-time value a ``${Placeholder}``
that the stack maps in an ``Fn::Sub``. Importing this package is cheap: the SageMaker SDK (1.5 s to
import) is imported only when a definition is really built, and ``cache.cached_build`` skips even
that while nothing a definition depends on has changed.
"""
