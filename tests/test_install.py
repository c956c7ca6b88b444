"""A wheel install (not editable) carries every command: built from this checkout, installed into a fresh
virtual environment, run from a folder outside the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: suite files run again against the wheel's copy (the losses, the CRF, the metrics, ONNX export of each family)
SUITE_SAMPLE = ("test_losses.py", "test_crf.py", "test_metrics.py", "test_export.py")


@pytest.mark.slow
def test_a_wheel_install_runs_the_commands_outside_the_checkout(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(ROOT)], check=True, capture_output=True, text=True)
    (wheel,) = wheels.glob("hf_distill-*.whl")
    names = subprocess.run([sys.executable, "-m", "zipfile", "-l", str(wheel)], check=True, capture_output=True,
                           text=True).stdout
    assert "hf_distill/demo.py" in names and "hf_distill/zoo/run.py" in names and "recipes/" not in names
    venv = tmp_path / "venv"
    # the dependencies come from this interpreter's site-packages; hf_distill itself only from the wheel
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)],
                   check=True, capture_output=True, text=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([str(python), "-c", "import hf_distill, hf_distill.demo; print(hf_distill.__file__)"],
                           cwd=outside, env=env, check=True, capture_output=True, text=True).stdout.strip()
    assert str(venv) in where and str(ROOT) not in where  # the wheel's copy, not the checkout
    for command in (["demo", "--help"], ["zoo", "--help"], ["--help"]):
        run = subprocess.run([str(venv / "bin" / "hf-distill"), *command], cwd=outside, env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, (command, run.stderr[-2000:])
    zoo_help = subprocess.run([str(venv / "bin" / "hf-distill"), "zoo", "--help"], cwd=outside, env=env,
                              capture_output=True, text=True, timeout=300).stdout
    assert "--augment_copies" in zoo_help and "--kd_loss" in zoo_help  # the zoo's options and the template's
    # the suite's own tests, copied outside the checkout, import the wheel's copy and pass (a sample: the whole
    # suite runs in CI against the editable install)
    shutil.copytree(ROOT / "tests", outside / "tests")
    env["HF_DISTILL_DATA_DIR"] = str(Path(os.environ.get("HF_DISTILL_DATA_DIR", ROOT.parent / "shared" / "data"))
                                     .resolve())
    probe = outside / "tests" / "test_the_wheel_is_imported.py"
    probe.write_text(f"import hf_distill\n\ndef test_wheel():\n    assert {str(venv)!r} in hf_distill.__file__\n")
    suite = subprocess.run([str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q", probe.name, *SUITE_SAMPLE],
                           cwd=outside / "tests", env=env, capture_output=True, text=True, timeout=600)
    assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr[-2000:]
