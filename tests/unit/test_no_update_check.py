"""Importing the package's data code makes no network request (albumentations' update check
is off), so commands start as fast offline as online."""

import os
import subprocess
import sys

# Counts the URLs urllib is asked to open, then imports what every command imports.
PROBE = """
import urllib.request
opened = []
original = urllib.request.OpenerDirector.open
def counting(self, url, *args, **kwargs):
    opened.append(url)
    raise OSError("no network in this test")
urllib.request.OpenerDirector.open = counting
import nuclei.data.transforms
print(len(opened))
"""


def test_importing_the_data_code_opens_no_url() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_ALBUMENTATIONS_UPDATE"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_the_update_check_can_be_asked_for() -> None:
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "0"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"  # the probe sees albumentations' request
