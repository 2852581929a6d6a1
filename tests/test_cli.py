import subprocess
import sys


def test_help_lists_every_job_without_importing_torch():
    code = (
        "import sys, contextlib, io\n"
        "from edge import cli\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try:\n"
        "        cli.main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(buf.getvalue())\n"
        "heavy = [m for m in ('torch', 'mediapipe', 'tensorrt', 'onnx', 'onnxruntime') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    from edge.cli import COMMANDS

    for name in COMMANDS:
        assert name in out
    assert "HEAVY []" in out


def test_no_job_prints_help_and_fails():
    from edge.cli import main

    assert main([]) == 2
