"""ststnorm-au: ststnorm trained with a second, auxiliary head that names the clip's action units.

The 3-class label folds CASME II's "repression" (AU15, AU17, often with AU12) into negative, and its flow looks like a
smile's. The AU codes say what moved. Each member gets one more linear head from its 400 features to AU_NAMES' logits.
The training loss is ststnorm's cross-entropy plus, with weight AU_WEIGHT, the AU head's binary cross-entropy, summed
over members. The binary cross-entropy is averaged over the AUs and over the samples whose `au_text` names any AU
(clips prepared from frames; the composite's samples carry none). forward() is ststnorm's, so the exported graph, its
input and its output are unchanged.
"""

from __future__ import annotations

import re

from engines.optional import require
from trainer.models.base import FLOW, Family, Recipe
from trainer.models.ststens import EnsembleConfig, STSTEnsemble

torch = require("torch", "train")
nn, F = torch.nn, torch.nn.functional

# The AUs coded on at least 10 of the 185 shared CASME II clips, sides merged (trainer/action_units.py's rule)
AU_NAMES = ("AU1", "AU2", "AU4", "AU7", "AU10", "AU12", "AU14", "AU15", "AU17")
AU_WEIGHT = 1.0
_AU = re.compile(r"\bAU(\d{1,2})\b")


def au_targets(texts: list[str]) -> tuple[list[list[float]], list[bool]]:
    """Multi-hot targets over AU_NAMES and whether each text codes any AU at all (else: no AU supervision)."""
    targets, known = [], []
    for text in texts:
        numbers = {int(n) for n in _AU.findall(text or "")}
        targets.append([1.0 if int(name[2:]) in numbers else 0.0 for name in AU_NAMES])
        known.append(bool(numbers))
    return targets, known


class STSTEnsembleAU(STSTEnsemble):
    def __init__(self, config: EnsembleConfig) -> None:
        super().__init__(config)
        features = self.head_weight.shape[1]
        bound = features ** -0.5
        self.au_weight = nn.Parameter(torch.empty(config.members, features, len(AU_NAMES)).uniform_(-bound, bound))
        self.au_bias = nn.Parameter(torch.empty(config.members, 1, len(AU_NAMES)).uniform_(-bound, bound))

    def training_loss(self, batch, labels):
        features = self.member_features(batch["flow"])
        logits = torch.matmul(features, self.head_weight) + self.head_bias  # (E, B, C)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.repeat(self.members),
                               reduction="sum") / labels.shape[0]
        targets, known = au_targets(batch.get("au_text") or [""] * labels.shape[0])
        mask = torch.tensor(known, device=labels.device)
        if bool(mask.any()):
            au_logits = (torch.matmul(features, self.au_weight) + self.au_bias)[:, mask]  # (E, B_known, K)
            target = torch.tensor(targets, device=labels.device)[mask].expand_as(au_logits)
            per_member = F.binary_cross_entropy_with_logits(au_logits, target, reduction="none").mean(dim=(1, 2))
            loss = loss + AU_WEIGHT * per_member.sum()
        return loss, torch.log_softmax(logits, dim=-1).mean(dim=0)


def build(num_classes: int = 3, **options) -> STSTEnsembleAU:
    return STSTEnsembleAU(EnsembleConfig(num_classes=num_classes, **{"center": "standard", **options}))


FAMILY = Family(
    name="ststnorm-au",
    summary="ststnorm with an auxiliary action-unit head in training (multi-task on the clips' AU codes)",
    inputs=(FLOW,),
    recipe=Recipe(epochs=50, lr=1e-3, batch_size=64, weight_decay=1e-4,
                  extra={"provenance": "ststnorm's recipe; the AU head's weight (1.0) and AU list fixed before any "
                                       "result (benchmarks/results/cross_form_loso.md, setting p)"}),
    build=build,
)
