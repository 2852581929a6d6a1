"""Re-write the flow block of a shipped artifact's metadata with this mestream's flow definition, and re-render
its model card; the graph and weights are not touched, so the model id stays the same.

    .venv/bin/python benchmarks/restamp_flow.py engines/default/mestream-default.onnx --note "why"

Only for models trained on flows made elsewhere (the default artifact: the MEGC2019 composite's released
flow images), for which the run-time flow parameters are a choice of the runtime. A model trained on
`mestream prep` output must keep the parameters its inputs were made with: retrain it instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    import onnx

    from engines.artifact import METADATA_KEY, Artifact
    from engines.files import atomic_write
    from trainer.cards import write_model_card
    from trainer.export import flow_description, graph_sha256

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--card", type=Path, default=None, help="model card to re-render (default: MODEL_CARD.md next to it)")
    parser.add_argument("--note", required=True, help="a paragraph for the card saying what changed and why")
    args = parser.parse_args(argv)
    card = args.card or args.artifact.parent / "MODEL_CARD.md"

    proto = onnx.load(str(args.artifact))
    entry = next(p for p in proto.metadata_props if p.key == METADATA_KEY)
    old = Artifact.from_text(entry.value, args.artifact)
    new = dataclasses.replace(old, flow=flow_description(), path=None)
    if new.flow == old.flow:
        print(f"{args.artifact}: flow already {new.flow['params']}; nothing to do")
        return 0
    entry.value = new.to_text()
    if graph_sha256(proto) != old.model_id:
        raise SystemExit(f"{args.artifact}: the graph hash is not the recorded model id; refusing to touch it")
    atomic_write(args.artifact, proto.SerializeToString())

    text = card.read_text(encoding="utf-8")
    command = text.split("## Reproduce\n\n```\n", 1)[1].split("\n```", 1)[0]
    restamp = f"# flow metadata then re-written (weights untouched): python benchmarks/restamp_flow.py {args.artifact} --note ..."
    if restamp not in command:
        command = f"{command}\n{restamp}"
    write_model_card(args.artifact, card, command=command)
    rendered = card.read_text(encoding="utf-8")
    anchor = "\n\n## Data\n"
    atomic_write(card, rendered.replace(anchor, f"\n\n{args.note}{anchor}", 1).encode())
    print(f"{args.artifact}: flow params {old.flow.get('params')} -> {new.flow['params']}; {card} re-rendered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
