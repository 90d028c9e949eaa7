"""The import paths of the Machine Gnostics MLflow guide, kept working.

``from mgsk.integration import mlflow as mg_mlflow`` and
``from mgsk.integration.mlflow_flavor import load_model`` give the functions
of :mod:`mgsk.mlflow`; this package imports nothing until one of them is
imported.
"""
