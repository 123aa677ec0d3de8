"""What setup.cfg cannot say: the top-level ``configs/`` folder ships inside the package as
``mmlaws.configs`` (the gin files stay where the README shows them, and ``mmlaws
--gin_file=quickstart.gin`` finds them from any folder once installed)."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages("src"), "mmlaws.configs"],
    package_dir={"": "src", "mmlaws.configs": "configs"},
)
