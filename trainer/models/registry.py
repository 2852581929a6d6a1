"""The one registry of model families: name -> module that defines FAMILY.

Modules are named by string and imported on demand, so listing the names never imports torch. Only families
with a full LOSO result in benchmarks/results/loso_megc2019.md are listed; an experiment that was measured
and not kept leaves the registry and the code (its figures stay in benchmarks/results/).
"""

from __future__ import annotations

import importlib

from engines.errors import MestreamError

FAMILIES: dict[str, str] = {
    "ststnet": "trainer.models.ststnet",  # flow-CNN sanity floor (STSTNet)
    "ststens": "trainer.models.ststens",  # STSTNet ensemble in one module, mirror-averaged prediction
    "ststnorm": "trainer.models.ststnorm",  # ststens on per-map standardised flow
    "msmt": "trainer.models.msmt",  # multi-scale multi-modal transformer
    "featref": "trainer.models.featref",  # feature refinement: inception + expression proposal branches
    "fusion3d": "trainer.models.fusion3d",  # RGB + FLOW 3D-CNN streams, AU-text contrastive (training only)
    "dvscl": "trainer.models.dvscl",  # dual-view self-supervised pre-training on unlabelled faces, fine-tuned
}


def get_family(name: str):
    """Return the Family named `name`, or a one-line error listing the valid names."""
    if name not in FAMILIES:
        raise MestreamError(f"unknown model {name!r}; expected one of: {', '.join(FAMILIES)}")
    return importlib.import_module(FAMILIES[name]).FAMILY
