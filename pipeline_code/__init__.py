"""SageMaker Pipeline builder and step scripts (preprocess, train, evaluate, inference).

Filled by the ML-pipeline issue. Step scripts here import nothing from CDK and
carry their own pinned requirements.
"""
