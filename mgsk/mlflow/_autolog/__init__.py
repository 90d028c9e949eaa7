"""Autologging for mgsk: patch the fits, log each one, spool what the store did not take.

The flavor (``mgsk.mlflow._flavor`` and friends) saves and loads models; this
package only calls its public functions. Modules:

- :mod:`.integration`: ``autolog()`` and the patches of the fit methods;
- :mod:`.context`: where a fit happens (alone, in a Pipeline, in a search);
- :mod:`.record`: what one fit records (settings, data, scores, metrics);
- :mod:`.analysis`: what a fit of a distribution or outlier detector records;
- :mod:`.log_fit`: the requests that log one fit;
- :mod:`.post_training`: metrics computed after the fit;
- :mod:`.search`: parent and child runs of parameter searches;
- :mod:`.faults`: failures become one warning, fast; is the store down;
- :mod:`.spool`: what the store did not take, on local disk;
- :mod:`.replay`: ``sync()``, replaying the spool exactly once;
- :mod:`.plots`: the two diagnostic plots.

The package is called ``_autolog``, not ``autolog``: ``mgsk.mlflow.autolog``
is the public function, and a subpackage of the same name would replace that
attribute of :mod:`mgsk.mlflow` when imported.
"""

from .integration import autolog
from .replay import sync

__all__ = ["autolog", "sync"]
