"""Tables for a paper from jaxcoh's results: LaTeX (booktabs) and plain text, each measurement rounded to its
uncertainty by the PDG rule.

    from jaxcoh.tables import measurement, write_tables
    measurement(1.2006e-10, 3.56e-13)     # '$(1.201 \\pm 0.004) \\times 10^{-10}$'
    write_tables("results/compare")       # results/compare/tables/models.tex and models.txt

``jaxcoh table RESULT_DIR`` does the same from the command line.
"""

from ._measurement import measurement, number, symbol
from ._resultdir import (FORMATS, fit_table, halos_table, models_table, posterior_table, result_tables, sweep_table,
                         write_tables)

__all__ = ["FORMATS", "fit_table", "halos_table", "measurement", "models_table", "number", "posterior_table",
           "result_tables", "sweep_table", "symbol", "write_tables"]
