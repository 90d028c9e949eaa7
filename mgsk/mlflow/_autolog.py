"""Autologging for mgsk estimators (work in progress)."""


def autolog(
    log_models=True,
    log_input_examples=True,
    log_model_signatures=True,
    log_datasets=True,
    log_post_training_metrics=True,
    log_plots=True,
    max_tuning_runs=5,
    registered_model_name=None,
    extra_tags=None,
    disable=False,
    exclusive=False,
    disable_for_unsupported_versions=False,
    silent=False,
):
    """Enable (or disable) autologging of mgsk estimators to MLflow."""
    raise NotImplementedError("mgsk.autolog is being written")
