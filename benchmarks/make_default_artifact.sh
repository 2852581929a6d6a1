#!/usr/bin/env bash
# Build the shipped default artifact: LOSO report + fit-all checkpoint of one family, exported to
# engines/default/mestream-default.onnx with engines/default/MODEL_CARD.md rendered from its metadata.
#
#   benchmarks/make_default_artifact.sh [MODEL] [SEED]     (defaults: ststnet 1)
#
# Environment: WORKERS (folds trained in parallel, default 1: same numbers), DEST (folder that receives
# mestream-default.onnx and MODEL_CARD.md, default engines/default: point it elsewhere to compare first),
# WORK (the train job's output folder), PYTHON.
#
# Needs the [train] extra and the research-only assets ($MESTREAM_ASSETS, default ../shared/assets).
# The raw data never enters the repo; only the ONNX weights derived from it do (see the model card).
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL="${1:-ststnet}"
SEED="${2:-1}"
ASSETS="${MESTREAM_ASSETS:-../shared/assets}"
DATA="$ASSETS/preprocessed/HTNet_MEGC2019_composite"
LABELS="$ASSETS/annotations/wangzhifengharrison_HTNet/combined_3_class2_for_optical_flow.csv"
WORK="${WORK:-runs/default-$MODEL-seed$SEED}"
PY="${PYTHON:-.venv/bin/python}"
WORKERS="${WORKERS:-1}"
DEST="${DEST:-engines/default}"
OUT="$DEST/mestream-default.onnx"
CARD="$DEST/MODEL_CARD.md"
mkdir -p "$DEST"

TRAIN=("$PY" -m edge.cli train --model "$MODEL" --dataset megc2019 --data "$DATA" --labels "$LABELS"
       --protocol loso --seed "$SEED" --out "$WORK" --fit-all --workers "$WORKERS")
EXPORT=("$PY" -m edge.cli export --checkpoint "$WORK/model.pt" --out "$OUT")

echo "+ ${TRAIN[*]}"
"${TRAIN[@]}"
echo "+ ${EXPORT[*]}"
"${EXPORT[@]}"

"$PY" - "$OUT" "$MODEL" "$SEED" "$CARD" <<'PY'
import sys
from trainer.cards import write_model_card
from trainer.export import framed_for_composite

out, model, seed, card = sys.argv[1:5]
# fitted on the composite's images: declare the composite's framing, which the classify stage then cuts the
# live crops to (benchmarks/results/cross_form_loso.md, setting g against c)
framed_for_composite(out, out)
command = (
    f"benchmarks/make_default_artifact.sh {model} {seed}\n"
    f"# = mestream train --model {model} --dataset megc2019 --data DATA --labels CSV --protocol loso --seed {seed} --out WORK --fit-all\n"
    f"#   mestream export --checkpoint WORK/model.pt --out {out}\n"
    f"#   trainer.export.framed_for_composite (the same weights, declared to take crops re-cut to the composite's framing)"
)
print("wrote", write_model_card(out, card, command=command))
PY
ls -l "$OUT" "$CARD"
