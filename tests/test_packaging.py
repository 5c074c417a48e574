"""What a wheel of ezpyr carries: every template and static file, and every
directory of ezpyr as a package, so that setuptools warns about none."""
import subprocess
import sys
import zipfile

from tests.bin.checkout import fresh_checkout
from tests.conftest import ROOT


def test_the_wheel_carries_every_template_and_static_file(tmp_path):
    top = fresh_checkout(tmp_path / "ezpyr")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w",
         str(tmp_path / "dist"), str(top)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("ezpyr-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {str(p.relative_to(ROOT)) for folder in ("ezpyr/templates", "ezpyr/static")
              for p in (ROOT / folder).rglob("*") if p.is_file()}
    assert wanted and wanted <= names, sorted(wanted - names)
    assert "worker/daemon.py" in names
    assert not any(n.startswith(("tests/", "bench/")) for n in names)


def test_every_directory_of_ezpyr_is_a_package():
    """A directory of package data that is not a package is what setuptools
    warns about ("Package 'ezpyr.static' is absent from the `packages`
    configuration"), once per directory, on every install."""
    code = ("import setuptools, sys; captured = {}; "
            "setuptools.setup = lambda **kw: captured.update(kw); "
            "sys.argv = ['setup.py']; exec(open('setup.py').read()); "
            "print('\\n'.join(captured['packages']))")
    packages = set(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                                  text=True, check=True).stdout.split())
    folders = {".".join(p.relative_to(ROOT).parts) for p in (ROOT / "ezpyr").rglob("*")
               if p.is_dir() and p.name != "__pycache__" and any(f.is_file() for f in p.iterdir())}
    assert folders | {"ezpyr"} <= packages, sorted(folders - packages)
