#!/usr/bin/env bash
# Build the shipped default artifact: LOSO report + fit-all checkpoint of one family on the MEGC2019 composite
# plus live-form CASME II prepared from its raw frames (crops re-cut to the composite's framing), exported to
# engines/default/mestream-default.onnx with engines/default/MODEL_CARD.md rendered from its metadata.
#
#   benchmarks/make_default_artifact.sh [MODEL] [SEED]     (defaults: ststnorm 1)
#
# Environment: WORKERS (folds trained in parallel, default 1: same numbers), DEST (folder that receives
# mestream-default.onnx and MODEL_CARD.md, default engines/default: point it elsewhere to compare first),
# WORK (the train job's output folder), PREP_DIR (the CASME II prep cache, default WORK's parent/.mestream-prep/
# casme2), CROSS_FORM (space-separated OUT/cross_form.json files of benchmarks/cross_form_loso.py, shown on the
# card), FRAMINGS (both: the CASME II clips re-cut to the composite's framing and as they come, setting j, the
# default; recut: re-cut only, setting i), NOTE (lines added to the card's Reproduce block), PYTHON.
#
# Needs the [train] extra and the research-only assets ($MESTREAM_ASSETS, default ../shared/assets).
# The raw data never enters the repo; only the ONNX weights derived from it do (see the model card).
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL="${1:-ststnorm}"
SEED="${2:-1}"
ASSETS="${MESTREAM_ASSETS:-../shared/assets}"
DATA="$ASSETS/preprocessed/HTNet_MEGC2019_composite"
LABELS="$ASSETS/annotations/wangzhifengharrison_HTNet/combined_3_class2_for_optical_flow.csv"
FRAMES="$ASSETS/casme2_cropped/CASME2_Cropped"
SHEET="$ASSETS/annotations/MouathAb_AnalyseMiE/CASME2-coding-20190701.xlsx"
WORK="${WORK:-runs/default-$MODEL-seed$SEED}"
PY="${PYTHON:-.venv/bin/python}"
WORKERS="${WORKERS:-1}"
DEST="${DEST:-engines/default}"
FRAMINGS="${FRAMINGS:-both}"
OUT="$DEST/mestream-default.onnx"
CARD="$DEST/MODEL_CARD.md"
mkdir -p "$DEST"

TRAIN=("$PY" -m edge.cli train --model "$MODEL" --dataset megc2019 --data "$DATA" --labels "$LABELS"
       --add casme2 "$FRAMES" "$SHEET" --loader-option version=2019-07-01
       --protocol loso --seed "$SEED" --out "$WORK" --fit-all --workers "$WORKERS")
if [[ -n "${PREP_DIR:-}" ]]; then TRAIN+=(--prep-dir "$PREP_DIR"); fi
case "$FRAMINGS" in
  both) TRAIN+=(--both-framings); SETTING=j ;;
  recut) SETTING=i ;;
  *) echo "FRAMINGS=$FRAMINGS: expected both or recut" >&2; exit 2 ;;
esac
# model.pt records the composite's crop_window, so the export declares it and the classify stage re-cuts live
# crops exactly as the added CASME II clips were cut
EXPORT=("$PY" -m edge.cli export --checkpoint "$WORK/model.pt" --out "$OUT")

echo "+ ${TRAIN[*]}"
"${TRAIN[@]}"
echo "+ ${EXPORT[*]}"
"${EXPORT[@]}"

"$PY" - "$OUT" "$MODEL" "$SEED" "$CARD" "${CROSS_FORM:-}" "${NOTE:-}" "$SETTING" <<'PY'
import json
import sys
from pathlib import Path

from trainer.cards import write_model_card

out, model, seed, card, cross_form, note, setting = sys.argv[1:8]
both = " --both-framings" if setting == "j" else ""
command = (
    f"benchmarks/make_default_artifact.sh {model} {seed}\n"
    f"# = mestream train --model {model} --dataset megc2019 --data DATA --labels CSV \\\n"
    f"#       --add casme2 CASME2_Cropped CASME2-coding-20190701.xlsx --loader-option version=2019-07-01{both} \\\n"
    f"#       --protocol loso --seed {seed} --out WORK --fit-all\n"
    f"#   mestream export --checkpoint WORK/model.pt --out {out}"
)
command += "".join(f"\n# {line}" for line in note.splitlines())
runs = [json.loads(Path(p).read_text()) for p in cross_form.split()]
print("wrote", write_model_card(out, card, command=command, live_input=runs or None, live_setting=setting if runs else None))
PY
ls -l "$OUT" "$CARD"
