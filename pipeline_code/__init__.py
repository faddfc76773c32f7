"""The ML pipelines: what belongs here is everything about them except CDK resources.

``pipeline.py``, ``batch_pipeline.py`` and ``drift_pipeline.py`` build the SageMaker Pipelines
offline from plain arguments; ``definitions/`` translates an environment's configuration into
those arguments once and caches the built definitions; ``steps/`` is the code the jobs run (it
imports nothing from CDK or from the rest of this package and has its own pinned requirements);
``local_run.py`` runs the steps on this machine; ``data/`` is the sample data set.
"""

import os

# Before any builder imports the SageMaker SDK (whatever the import order of a module): 2.x otherwise
# prints a deprecation banner on every synth that no platform user can act on.
os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
