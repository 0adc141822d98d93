"""`pip install .` (the image's build) installs every Python package of the product. The
package list in pyproject.toml is written by hand, so a new subpackage left out of it
would work from the source tree (make run, the suite) and be missing only in the image:
found here in a second instead of by the container test."""
import tomllib

from parley.config import REPO_ROOT

SETUPTOOLS = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_of_the_product_is_installed():
    listed = set(SETUPTOOLS["packages"])
    found = set()
    for top, folder in SETUPTOOLS["package-dir"].items():
        root = REPO_ROOT / folder
        for init in root.rglob("__init__.py"):
            parts = init.parent.relative_to(root).parts
            if "__pycache__" not in parts:
                found.add(".".join((top, *parts)))
    assert found - listed == set(), "packages missing from pyproject.toml's [tool.setuptools] packages"
    assert listed - found == set(), "listed packages with no folder"
