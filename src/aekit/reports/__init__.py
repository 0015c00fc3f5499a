"""What shows results, built on the estimators: report folders, one-file HTML pages, comparisons, the demo.

``pieces`` draws the figures and writes summary.json and index.html; ``page`` is ``aekit report``'s
self-contained HTML page on one model; ``compare`` sets an autoencoder against PCA (``aekit compare``);
``demo`` is ``aekit demo``. Nothing is imported here, so that importing one module never pulls in the
others' dependencies (torch, matplotlib).
"""
