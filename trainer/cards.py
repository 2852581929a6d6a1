"""Model cards, rendered from an artifact's own metadata so that nothing typed by hand can drift.

    write_model_card(Path("engines/default/mestream-default.onnx"), Path("MODEL_CARD.md"), command="...")

A classifier gets MODEL_CARD.md (render_model_card); the learned spotter, family "softnet", gets
SPOTTER_CARD.md (render_spotter_card, with the benchmarks/spotting_compare.py comparison when given).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engines.artifact import Artifact
from engines.errors import MestreamError
from engines.files import atomic_write

SPOTTER_FAMILY = "softnet"  # edge/spotting/learned.py FAMILY; the card's wording is the spotter's


def _reproduce(command: str) -> list[str]:
    return ["```", command, "```", ""]


RESEARCH_ONLY = (
    "They are licensed for non-commercial research only, and so is this model: internal research use only, no "
    "redistribution outside the project, no commercial use. The raw data is not part of this package."
)
LICENCE_NOTE = (
    "Trained on the MEGC2019 composite, which is derived from CASME II, SMIC-HS and SAMM, and, where the parts above "
    "say so, on those datasets' own frames. " + RESEARCH_ONLY
)


def _score_rows(scores: dict[str, Any]) -> list[str]:
    from engines.artifact import score_parts

    parts = score_parts(scores)
    rows = []
    # the composite's parts first, then any other (e.g. "casme2-frames": clips prepared from frames)
    for part in dict.fromkeys(("full", "casme2", "smic", "samm", *parts)):
        values = parts.get(part)
        if isinstance(values, dict):
            cells = [f"{values[k]:.4f}" if isinstance(values.get(k), (int, float)) else "-" for k in ("uf1", "uar", "acc")]
            rows.append(f"| {part} | " + " | ".join(cells) + " |")
    return rows


def _interval_line(scores: dict[str, Any]) -> list[str]:
    """The full UF1's interval over resampled subjects, where the checkpoint recorded one (mestream train)."""
    interval = scores.get("interval") if isinstance(scores, dict) else None
    if not isinstance(interval, dict) or not isinstance(interval.get("uf1"), list):
        return []
    low, high = interval["uf1"]
    return [f"With the subjects drawn again ({interval.get('draws', '?')} draws), the full UF1 would lie in "
            f"{low:.3f}-{high:.3f} (95%): how much it depends on which subjects are in the data.", ""]


def _from_frames(training: dict[str, Any]) -> dict[str, int]:
    """The training parts made from raw frames by `mestream prep`'s code ("casme2-frames": 113)."""
    return {p: n for p, n in (training.get("parts") or {}).items() if p.endswith("-frames")}


def _form_limitation(flow: dict[str, Any], training: dict[str, Any]) -> list[str]:
    frames = _from_frames(training)
    if frames and flow.get("crop_window") is not None:
        return ["- Trained on the composite's released flow images and on "
                + ", ".join(f"{n} {p.removesuffix('-frames')} clips" for p, n in frames.items())
                + " prepared from their frames by the live perception code (edge tracker, aligned crops re-cut to the "
                f"composite's framing, crop_window {flow['crop_window']}, then mestream's own TV-L1), which is what the "
                "classify stage computes live"
                + ("; each clip also once more with its crops as they come (the `-frames-uncut` part: framing as "
                   "augmentation)" if any(p.endswith("-frames-uncut") for p in training.get("parts") or {}) else "")
                + ". Its figure on live input of unseen subjects is the LOSO part named "
                "`-frames` above and, over 3 seeds, the cross-form LOSO table above; expect less on other cameras and lighting."]
    if flow.get("crop_window") is not None:
        return ["- Trained on the composite's released flow images; at run time the flow comes from mestream's own "
                "TV-L1 (edge/perception/flow.py) on the live aligned crops re-cut to the composite's framing "
                f"(crop_window {flow['crop_window']}, edge/perception/composite_framing.py). The two follow the same recipe "
                "but are not byte-identical: on the real frames of 18 CASME II subjects held out from training (LOSO, "
                "3 seeds) the same recipe scores UF1 0.837 on this input against 0.884 on the composite's own images "
                "and 0.807 on the un-cut crops (benchmarks/results/cross_form_loso.md, settings g, a, c), so expect "
                "some loss of accuracy on live video, more with other cameras and lighting."]
    return ["- Trained on the composite's released flow images; at run time the flow comes from mestream's own TV-L1 "
            "(edge/perception/flow.py) on the live aligned crop. The two follow the same recipe but are not byte-identical, "
            "so expect some loss of accuracy on live video."]


def _live_input_section(runs: list[dict] | None, setting: str | None) -> list[str]:
    """The cross-form LOSO table (benchmarks/cross_form_loso.py OUT/cross_form.json files), this recipe in bold."""
    if not runs:
        return []
    lines = ["## On live input of unseen subjects", "",
             "`benchmarks/cross_form_loso.py`: for each CASME II subject with real frames, models trained without that "
             "subject, tested on what the live pipeline computes from its clips. UF1/UAR pooled over the folds of a "
             "seed, mean ± std over seeds." + (f" Setting ({setting}) is this artifact's recipe." if setting else "")]
    if any("-spot" in key for run in runs for key in run["summary"]):
        lines[-1] += (" Rows ending in -spot and -spot30 are the live label end to end: the held-out clip's test video "
                      "through the live tracker, the flow from the onset crop to the apex that the live spot stage itself "
                      "picked, at 200 and at 30 fps (the spotter's apex_frac and flow_onset_frac were chosen on 9 of these "
                      "subjects, benchmarks/results/cross_form_loso.md).")
    intervals = any(run.get("intervals") for run in runs)
    if intervals:
        lines[-1] += (" The 95% interval is how far the mean would move with other subjects like these (the subjects "
                      "drawn again with replacement, trainer/metrics.py subject_interval): on 18 subjects it is far "
                      "wider than the spread over seeds.")
    lines += ["", "| setting | n | UF1 | UAR | UF1 per seed |" + (" UF1 95%, resampled subjects |" if intervals else ""),
              "|---|---|---|---|---|" + ("---|" if intervals else "")]
    for run in runs:
        for key, row in run["summary"].items():
            if key.endswith(("_matched", "_tune", "_eval")):  # subsets of the same folds
                continue
            uf1, uar = row["uf1"], row["uar"]
            name = f"({key}) {run['meaning'].get(key, '')}"
            cells = [name, str(row["n"]), f"{uf1['mean']:.4f} ± {uf1['std']:.4f}", f"{uar['mean']:.4f} ± {uar['std']:.4f}",
                     " / ".join(f"{v:.4f}" for v in uf1["per_seed"])]
            if intervals:
                low_high = run.get("intervals", {}).get(key)
                cells.append(f"{low_high['uf1'][0]:.3f}-{low_high['uf1'][1]:.3f}" if low_high else "-")
            if key == setting:
                cells = [f"**{c}**" for c in cells]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Commands (results in benchmarks/results/cross_form_loso.md):", "", "```",
              *(run["command"] for run in runs), "```", ""]
    return lines


def render_model_card(artifact: Artifact, *, command: str, size_bytes: int, summary: str = "",
                      live_input: list[dict] | None = None, live_setting: str | None = None) -> str:
    """MODEL_CARD.md for a shipped artifact, from its own metadata (nothing typed by hand can drift) and, when
    given, the cross-form LOSO results of its recipe (`live_input`: cross_form.json dicts; `live_setting`: which)."""
    training = artifact.training or {}
    lines = [
        "# mestream default model",
        "",
        f"`{artifact.path.name if artifact.path else 'artifact.onnx'}`: family **{artifact.family}**"
        + (f" ({summary})" if summary else "")
        + f", model id `{artifact.model_id}`, {size_bytes / 1024:.0f} KiB, created {artifact.created}.",
        "",
        "## What it does",
        "",
        f"Classifies one spotted micro-expression into {len(artifact.classes)} classes: "
        + ", ".join(f"`{c}`" for c in artifact.classes)
        + ". Outputs `logits` and `probs` (softmax), each (1, C).",
        "",
        "| input | shape | dtype | meaning | normalisation |",
        "|---|---|---|---|---|",
    ]
    for spec in artifact.inputs:
        lines.append(f"| `{spec.name}` | {list(spec.shape)} | {spec.dtype} | {spec.meaning} | {spec.normalisation} |")
    flow = artifact.flow or {}
    lines += [
        "",
        f"Flow at run time: `{flow.get('algorithm', '?')}` with parameters `{json.dumps(flow.get('params', {}), sort_keys=True)}`; "
        f"form: {flow.get('form', '')}.",
        "",
        "## Data",
        "",
        f"Dataset `{training.get('dataset', '?')}`: {training.get('samples', '?')} samples from "
        f"{training.get('subjects', '?')} subjects; the shipped weights are fitted on all of them with the "
        "family's fixed recipe (no held-out data, no early stopping).",
    ]
    if training.get("parts"):
        lines += ["", "Samples per part: " + ", ".join(f"{p} {n}" for p, n in training["parts"].items())
                  + (" (`-frames`: clips prepared from the raw frames by the live perception code; one person is one "
                     "LOSO fold whichever part their samples are in)" if _from_frames(training) else "") + "."]
    extra = {k: v for k, v in training.items() if k not in ("dataset", "samples", "subjects", "flow", "parts")}
    if extra:
        lines.append("")
        lines.append("Training details: " + ", ".join(f"{k} = {json.dumps(v, sort_keys=True)}" for k, v in sorted(extra.items())) + ".")
    lines += [
        "",
        "## Evaluation",
        "",
        f"Protocol: `{artifact.protocol}` (leave-one-subject-out; every fold trained from scratch; UF1/UAR/accuracy on "
        "predictions pooled over all folds). The scores are those of the same recipe under that protocol, not of the "
        "shipped weights (which saw every subject).",
        "",
        "| part | UF1 | UAR | accuracy |",
        "|---|---|---|---|",
        *(_score_rows(artifact.scores) or ["| (no scores recorded) | - | - | - |"]),
        "",
        *_interval_line(artifact.scores),
        f"How epochs and hyperparameters were chosen: {artifact.selection}",
        "",
        "Published anchors on the same inputs (for scale): STSTNet 0.7353 UF1 / 0.7605 UAR; HTNet 0.8603 / 0.8475 "
        "(epoch picked on the test subject, an inflated figure).",
        "",
        *_live_input_section(live_input, live_setting),
        "## Limitations",
        "",
        *_form_limitation(artifact.flow or {}, training),
        "- Three coarse classes from lab recordings of a few dozen young adults; it has not been validated on other "
        "populations, cameras or lighting, and must not be used to judge people.",
        "",
        "## Licence",
        "",
        LICENCE_NOTE,
        "",
        "## Reproduce",
        "",
        *_reproduce(command),
        f"Versions: {', '.join(f'{k} {v}' for k, v in sorted(artifact.versions.items()))}.",
        "",
    ]
    return "\n".join(lines)


def write_model_card(artifact_path: Path | str, out: Path | str, *, command: str,
                     comparison: dict | None = None, live_input: list[dict] | None = None,
                     live_setting: str | None = None, real: dict | None = None) -> Path:
    """Render the card of a shipped artifact to `out` (atomically): the spotter's card for family "softnet"
    (`comparison`, `real`: its evaluation JSON, see render_spotter_card)."""
    from engines.artifact import read_artifact

    artifact_path = Path(artifact_path)
    artifact = read_artifact(artifact_path)
    size = artifact_path.stat().st_size
    if artifact.family == SPOTTER_FAMILY:
        text = render_spotter_card(artifact, size_bytes=size, command=command, comparison=comparison, real=real)
    else:
        text = render_model_card(artifact, command=command, size_bytes=size, summary=_family_summary(artifact.family),
                                 live_input=live_input, live_setting=live_setting)
    atomic_write(Path(out), text)
    return Path(out)


def _family_summary(name: str) -> str:
    """The registry's one-line summary of a family, or "" for a family this checkout does not define."""
    from trainer.models.registry import get_family

    try:
        return get_family(name).summary
    except MestreamError:
        return ""


def _spotter_data(t: dict[str, Any]) -> tuple[str, str]:
    """(what the spotter was trained on, its licence line), from the artifact's training record."""
    if t.get("dataset") == "synth":
        return (f"Trained on: {t.get('samples', '?')} windows of {len(t.get('videos', []))} SYNTHETIC 30 fps videos made "
                f"by `mestream synth` from real face videos ({', '.join(t.get('videos', []))}); no micro-expression "
                "dataset. Synthetic expressions are cleaner than real ones: on real data expect far less (SOFTNet: "
                "0.2022 overall F1 on CAS(ME)^2; ME-only F1 about 0.20-0.25 at best).",
                "Licence: trained only on synthetic warps of the face videos in the shared assets (research-only "
                "material); internal use only.")
    fps = " and ".join(f"{f:g}" for f in t.get("fps", [])) or "?"
    what = ("real CASME II micro-expression clips, each held still before and after as benchmarks/spotting_real.py "
            "composes its test videos, of its tuning subjects only" if t.get("dataset") == "casme2-clips"
            else f"the `{t.get('dataset', '?')}` recordings")
    return (f"Trained on: {t.get('samples', '?')} windows of {len(t.get('videos', []))} videos at {fps} fps of "
            f"{t.get('subjects', '?')} subjects: {what}.",
            "Licence: Trained on real micro-expression recordings. " + RESEARCH_ONLY)


def _real_clip_rows(real: dict | None) -> list[str]:
    """benchmarks/spotting_real.py --json figures: the learned spotter against the regional one on unseen subjects."""
    if not real:
        return []
    results = real["results"]
    lines = ["On real CASME II clips of subjects it never saw (benchmarks/spotting_real.py, its evaluation subjects; "
             "recall of micro-expressions at IoU >= 0.5, \"any\" counting a hit published as macro):", "",
             "| test videos | fps | regional recall / any / extra per clip | learned recall / any / extra per clip |",
             "|---|---|---|---|"]
    for protocol, by_fps in results["default"]["eval"].items():
        for fps, row in by_fps.items():
            a, b = row["pooled"], results["learned"]["eval"][protocol][fps]["pooled"]
            lines.append(f"| {protocol} | {fps} | {a['recall']:.3f} / {a['recall_any']:.3f} / {a['extra_per_clip']:.2f} | "
                         f"{b['recall']:.3f} / {b['recall_any']:.3f} / {b['extra_per_clip']:.2f} |")
    return lines + [""]


def render_spotter_card(meta: Artifact, *, size_bytes: int, command: str, comparison: dict | None = None,
                        real: dict | None = None) -> str:
    """SPOTTER_CARD.md for a shipped softnet artifact, from its own metadata (and benchmarks/spotting_compare.py JSON,
    `comparison`, and benchmarks/spotting_real.py --json with variants "default" and "learned", `real`)."""
    t, sel, sc = meta.training or {}, meta.selection or {}, meta.scores or {}
    trained_on, licence = _spotter_data(t)
    rows = [f"| {k} | {sc[k]['tp']} | {sc[k]['predicted']} | {sc[k]['truth']} | {sc[k]['precision']:.3f} | "
            f"{sc[k]['recall']:.3f} | {sc[k]['f1']:.3f} |" for k in ("micro", "macro", "overall") if isinstance(sc.get(k), dict)]
    return "\n".join([
        "# mestream learned spotter (SOFTNet family)",
        "",
        f"`{meta.path.name if meta.path else 'spotter.onnx'}`: family **{meta.family}**, model id `{meta.model_id}`, "
        f"{size_bytes / 1024:.0f} KiB, created {meta.created}. Use it with `[stages.spot] method = \"learned\"`, "
        "`artifact = PATH` (edge/spotting/learned.py).",
        "",
        trained_on,
        "",
        f"Input `flow` {list(meta.inputs[0].shape)}: {meta.inputs[0].normalisation}. Feature parameters: "
        f"`{json.dumps(meta.flow.get('params', {}), sort_keys=True)}`.",
        "",
        f"Peaks: `{json.dumps(sel.get('peaks', {}), sort_keys=True)}`; {sel.get('how', '')}.",
        "",
        f"Held-out scores on the training videos ({meta.protocol}, IoU >= 0.5, pooled):",
        "",
        "| kind | TP | predicted | truth | P | R | F1 |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        *_comparison_rows(comparison),
        *_real_clip_rows(real),
        "Known weaknesses: one lag scale (k = lag_s) for micro and macro alike, so a held macro-expression scores "
        "only on its rise and fall and is often split or missed (SOFTNet trains a separate macro network with a "
        "longer k); its runs merge and smooth window scores, so its onsets and offsets are looser than the regional "
        "spotter's and a micro-expression can be published as macro; a fixed threshold chosen on still training "
        "faces fires on livelier faces (the adaptive z exists for that).",
        "",
        licence,
        "",
        "Reproduce:",
        "",
        *_reproduce(command),
    ])


def _comparison_rows(comparison: dict | None) -> list[str]:
    if not comparison:
        return []
    pooled = comparison["pooled"]
    names = ", ".join(v["video"] for v in comparison.get("videos", []))
    lines = [f"Evaluation videos (other faces and seeds, never used for training or choices): {names}. "
             "F1 at IoU >= 0.5, counts pooled (benchmarks/spotting_compare.py):", "",
             "| kind | training-free F1 | learned F1 |", "|---|---|---|"]
    for kind in ("micro", "macro", "overall"):
        lines.append(f"| {kind} | {pooled['regional'][kind]['f1']:.3f} | {pooled['learned'][kind]['f1']:.3f} |")
    return lines + [""]
