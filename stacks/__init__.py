"""The platform's deployment units: ``PlatformStage`` (one per environment) and the stacks it holds.

What belongs here: the stage and the stacks only. A stack composes constructs from ``ml_constructs``,
translates the environment's configuration into their props, wires grants between them and exposes
outputs; it takes constructs and plain values from the stage, never another stack. What does not:
reusable constructs (``ml_constructs``) and the pipeline definition builders (``pipeline_code``).
"""
