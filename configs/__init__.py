"""The gin configs, shipped inside the package as ``mmlaws.configs`` (see setup.py).

``mmlaws --gin_file=quickstart.gin`` finds them by name from any folder
(:mod:`mmlaws.config_files`); this folder stays their one source.
"""
