"""The ``aekit`` command: one module per verb group, each calling only the public API.

``main.py`` builds the parser and turns every expected error into one line and exit status 2. Verb modules
import nothing heavy at module level, so ``aekit --help`` never loads torch, scikit-learn or pandas.
"""
