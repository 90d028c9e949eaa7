"""The Python examples of docs/user_guide/scaling.rst.

An example preceded by the comment ``.. scaling-example: <name>`` is run for
real by a scaling test module (``page_example(name)`` gives its code):
``dask-search`` in test_scaling_dask.py, ``dask-fit`` and ``dask-classify`` in test_dask_fit.py,
``spark-udf`` in test_scaling_spark.py. The page's other Python blocks (starting a cluster)
do what those modules' fixtures do; here they must at least compile.
"""

import re
import textwrap
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "user_guide" / "scaling.rst"
BLOCK = re.compile(r"^(?:\.\. scaling-example: (?P<name>[\w-]+)\n\n)?\.\. code-block:: python\n\n(?P<code>(?:(?: {3}.*)?\n)+)", re.M)


def page_examples():
    """{name or None: [code, ...]} for the page's Python blocks."""
    found = {}
    for match in BLOCK.finditer(PAGE.read_text(encoding="utf-8")):
        found.setdefault(match["name"], []).append(textwrap.dedent(match["code"]))
    return found


def page_example(name):
    """The code of the example marked ``.. scaling-example: <name>``."""
    (code,) = page_examples()[name]
    return code


def test_the_page_marks_the_examples_the_tests_run_and_all_compile():
    examples = page_examples()
    assert set(examples) == {None, "dask-search", "spark-udf", "dask-fit", "dask-classify"}
    assert len(examples[None]) == 2  # starting a Dask cluster, starting Ray
    for name, codes in examples.items():
        for code in codes:
            compile(code, f"scaling.rst:{name}", "exec")
