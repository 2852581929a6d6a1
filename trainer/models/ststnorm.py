"""ststnorm: ststens reading standardised maps: each u, v and strain map minus its mean, over its spread.

The composite min-max scales every map on its own (u' = (u - min u) / (max u - min u)), so a pixel that did not
move lands anywhere between 0 and 1, depending on which way the strongest motion of that sample went: over the
442 samples the per-map median of u' has a spread (std) of 0.15 and of v' 0.23, as large as the spread of the
values inside one map (0.13-0.14). The same still skin is 0.2 in one sample and 0.8 in the next. Subtracting
the map's mean and dividing by its standard deviation puts still pixels near 0 and motion in units of the
map's own spread, with its sign, before the members' first convolution; batch norm after that convolution
normalises over the batch, which cannot undo an offset that differs per sample.

Everything else is ststens (trainer/models/ststens.py): 3 STSTNets in one module, 50 epochs, mirror averaging.
The mirror view stays exact: standardising 1 - u gives minus the standardised u. The standardisation is in
the graph (ReduceMean, Sub, Mul, Sqrt, Div: TensorRT parses them), so the artifact keeps the composite's
input and the live pipeline is unchanged.
"""

from __future__ import annotations

from trainer.models.base import FLOW, Family, Recipe
from trainer.models.ststens import EnsembleConfig, STSTEnsemble


def build(num_classes: int = 3, **options) -> STSTEnsemble:
    """ststens's network on standardised maps; `options` override EnsembleConfig's fields."""
    return STSTEnsemble(EnsembleConfig(num_classes=num_classes, **{"center": "standard", **options}))


FAMILY = Family(
    name="ststnorm",
    summary="ststens on per-map standardised flow (each u, v, strain map minus its mean, over its std)",
    inputs=(FLOW,),
    # The standardisation was chosen by inner validation on training subjects only, before its full LOSO; the
    # candidates, figures and commands: benchmarks/results/loso_megc2019.md, "Best family now: ststnorm".
    recipe=Recipe(epochs=50, lr=1e-3, batch_size=64, weight_decay=1e-4,
                  extra={"provenance": "ststens's recipe; the per-map standardisation chosen over none, median "
                                       "and mean centring by inner validation on training subjects of three "
                                       "LOSO folds (trainer/inner_select.py), before any full LOSO of this family"}),
    build=build,
)
