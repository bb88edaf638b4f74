"""Generator of modelmon's Grafana dashboards.

The dashboards in ``grafana/dashboards/*.json`` are built by this package, so the
panels share one vocabulary (datasource variable, selectors, units, layout) and a
change is made once. ``python grafana/generate.py`` rewrites the JSON files;
``python grafana/generate.py --check`` fails when they differ from the generator,
which is what the unit tests run.
"""
