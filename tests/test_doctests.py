"""Docstring examples on public math functions run as tests."""

import doctest
import importlib

import pytest

MODULES = ["mmlaws.laws", "mmlaws.laws.forms", "mmlaws.laws.optimal", "mmlaws.laws.membership",
           "mmlaws.laws.spikes", "mmlaws.sweep", "mmlaws.laws.power", "mmlaws.plan",
           "mmlaws.laws.runfile"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
